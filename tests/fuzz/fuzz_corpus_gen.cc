// Writes the seed corpus of every fuzz target (tests/fuzz/corpus/<target>/) from real traffic:
// in-process PBFT and Raft clusters (the real engines, driven as engine_driver.h drives one,
// over a perfect network with a crash and a lagging replica), real transactions, replies,
// snapshots, certified blocks, network.json and key files. Deterministic: the keys come from
// fixed seeds and Ed25519 signatures are deterministic, so a run writes the same bytes.
//
//   build-fuzz/bin/fuzz_corpus_gen tests/fuzz/corpus     (scripts/fuzz --regenerate-corpus)
#include <sys/stat.h>

#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bft/pbft/pbft.h"
#include "bft/pbft/pbft.pb.h"
#include "bft/pbft/stored_records.h"
#include "bft/raft/raft.h"
#include "crypto/envelope.h"
#include "crypto/key_file.h"
#include "crypto/reply_batch.h"
#include "ledger/state.h"
#include "ledger/tx.h"
#include "node/api/client.pb.h"
#include "node/api/network_config.h"
#include "tests/fuzz/engine_driver.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/fuzz/fuzz_ledger.h"

namespace fs = std::filesystem;
using namespace tally;

namespace {

fs::path g_out;
size_t g_bytes = 0;

void write_file(const std::string& target, const std::string& name, std::string_view bytes) {
    fs::create_directories(g_out / target);
    std::ofstream out(g_out / target / name, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
        std::fprintf(stderr, "cannot write %s/%s\n", target.c_str(), name.c_str());
        std::exit(1);
    }
    g_bytes += bytes.size();
}

// A trace cut at a record boundary below `max_bytes` (the fuzzer mutates the whole input).
std::string capped(const std::string& trace, size_t max_bytes) {
    if (trace.size() <= max_bytes) return trace;
    size_t at = 1;  // after the replica byte
    while (at + 3 <= trace.size()) {
        const size_t len = (static_cast<size_t>(static_cast<uint8_t>(trace[at + 1])) << 8) |
                           static_cast<uint8_t>(trace[at + 2]);
        if (at + 3 + len > max_bytes) break;
        at += 3 + len;
    }
    return trace.substr(0, at);
}

// A fuzz_store input: the protocol (0 PBFT, 1 Raft), the executed seq, then each stored record
// as one length-prefixed key and its value.
std::string store_input(char protocol, uint64_t executed, const fuzz::Store& records) {
    std::string input = {protocol, static_cast<char>(executed & 0xff)};
    for (const auto& [k, v] : records) {
        std::string body(1, static_cast<char>(k.size()));
        body += k;
        body += v;
        if (body.size() <= 0xffff) fuzz::append_record(input, 0, body);
    }
    return input;
}

std::string client_transfer(uint32_t client, uint32_t to, uint64_t amount, uint64_t nonce) {
    return ledger::make_transfer(fuzz::key_of(100 + client), fuzz::key_of(100 + to).public_key(),
                                 amount, nonce);
}

// ---- Engine clusters -----------------------------------------------------------------------

// A cluster of engines on a perfect network; each replica's inputs are recorded as a script
// (fuzz_common.h) that fuzz_pbft / fuzz_raft replay on the same engine.
struct Cluster {
    struct Message {
        bft::ReplicaId from;
        bft::ReplicaId to;
        std::string raw;
    };
    std::vector<std::unique_ptr<fuzz::EngineDriver>> drivers;
    std::vector<std::string> traces;
    std::vector<bool> down;  // crashed: neither sends nor receives
    std::deque<Message> network;
    std::vector<std::string> certificates;
    std::map<bft::ReplicaId, std::map<uint64_t, std::string>> ledger_certificates;

    void add(std::unique_ptr<fuzz::EngineDriver> d) {
        const bft::ReplicaId id = d->id;
        const size_t n = d->replicas.size();
        d->on_send = [this, id, n](const bft::Outgoing& o) {
            if (down[id]) return;
            for (bft::ReplicaId to = 0; to < n; ++to)
                if (to != id && (o.to == bft::kAllReplicas || o.to == to))
                    network.push_back(Message{id, to, o.envelope});
        };
        d->on_commit = [this, id](const bft::Committed& c) {
            if (!c.certificate.empty() && certificates.size() < 4) certificates.push_back(c.certificate);
            if (!c.certificate.empty()) ledger_certificates[id][c.seq] = c.certificate;
        };
        traces.push_back(std::string(1, static_cast<char>(id)));
        down.push_back(false);
        drivers.push_back(std::move(d));
    }

    void run(bft::ReplicaId at, const fuzz::Record& r) {
        if (down[at]) return;
        fuzz::append_record(traces[at], r.op, r.body);
        drivers[at]->run(r);
        if (drivers[at]->fetch) {
            fuzz::append_record(traces[at], fuzz::kOpRestored, {});
            drivers[at]->run(fuzz::Record{fuzz::kOpRestored, {}});
        }
    }

    void deliver_all(size_t max_messages = 100000) {
        for (size_t i = 0; i < max_messages && !network.empty(); ++i) {
            Message m = std::move(network.front());
            network.pop_front();
            if (down[m.to] || down[m.from]) continue;
            // The header only: Raft's frames carry a MAC for their receiver (envelope.h), and
            // the record keeps just the type and body, which the driver seals again.
            crypto::OpenOptions header_only;
            header_only.verify_signature = false;
            auto env = crypto::open(m.raw, header_only);
            if (!env) std::abort();
            std::string body(1, static_cast<char>(m.from));
            body.push_back(static_cast<char>(env->type));
            body.append(env->body);
            run(m.to, fuzz::Record{fuzz::kOpMessage, body});
        }
    }

    void tick_all(int ticks) {
        for (int t = 0; t < ticks; ++t) {
            for (bft::ReplicaId i = 0; i < drivers.size(); ++i) run(i, fuzz::Record{fuzz::kOpTick, {}});
            deliver_all();
        }
    }

    void request(bft::ReplicaId at, const std::string& tx) {
        run(at, fuzz::Record{fuzz::kOpClient, tx});
        deliver_all();
    }
};

std::vector<std::string> pbft_cluster_corpus(std::vector<std::string>& stores,
                                             std::vector<std::string>& certificates) {
    std::vector<std::string> files;
    // Normal case, then the primary crashes (a view change), then a replica that was away
    // catches up (fetches state).
    Cluster c;
    for (bft::ReplicaId i = 0; i < 4; ++i) {
        auto d = std::make_unique<fuzz::EngineDriver>();
        d->id = i;
        d->replicas = fuzz::replica_public_keys();
        d->engine = bft::pbft::make_engine(fuzz::pbft_fuzz_config(i), fuzz::replica_keys()[i], d->auth);
        c.add(std::move(d));
    }
    for (auto& d : c.drivers) d->start();
    std::vector<uint64_t> nonce(4, 0);
    for (int round = 0; round < 6; ++round) {
        c.request(0, client_transfer(round % 4, (round + 1) % 4, 10, ++nonce[round % 4]));
        c.request(static_cast<bft::ReplicaId>(1 + round % 3),
                  client_transfer((round + 2) % 4, round % 4, 7, ++nonce[(round + 2) % 4]));
        c.tick_all(2);
    }
    std::vector<std::string> normal = c.traces;
    // Replica 3 goes away; the primary crashes; the rest change view and go on.
    c.down[3] = true;
    c.tick_all(1);
    c.down[0] = true;
    for (int round = 0; round < 3; ++round) c.request(1, client_transfer(1, 2, 3, ++nonce[1]));
    c.tick_all(40);
    for (int round = 0; round < 10; ++round) {
        c.request(1, client_transfer(2, 3, 4, ++nonce[2]));
        c.request(2, client_transfer(3, 1, 4, ++nonce[3]));
        c.tick_all(2);
    }
    // Replica 3 returns and catches up.
    c.down[3] = false;
    c.tick_all(30);
    for (const auto& d : c.drivers)
        std::printf("pbft replica %u: executed %llu, view %llu\n", d->id,
                    static_cast<unsigned long long>(d->executed),
                    static_cast<unsigned long long>(d->engine->status().view));
    for (bft::ReplicaId i = 0; i < 4; ++i) {
        files.push_back(capped(normal[i], 16 << 10));
        files.push_back(capped(c.traces[i], 28 << 10));
    }
    for (auto& d : c.drivers) {
        // What a real engine wrote must pass the node's check of a store.
        auto checked = bft::pbft::check_stored_records(fuzz::records_of(d->store),
                                                      fuzz::pbft_fuzz_config(d->id).watermark_window);
        if (!checked) {
            std::fprintf(stderr, "replica %u's store fails its check: %s\n", d->id,
                         checked.error().message.c_str());
            std::exit(1);
        }
        stores.push_back(capped(store_input(0, d->executed, d->store), 24 << 10));
        // The same store with the ledger's certificates of the last blocks (what a restart reads
        // where the store lost its commit records), and without the store (tallyd --recover).
        std::string with_ledger = {static_cast<char>(0), static_cast<char>(d->executed & 0xff)};
        const auto& held = c.ledger_certificates[d->id];
        for (auto it = held.lower_bound(d->executed > 6 ? d->executed - 6 : 0); it != held.end(); ++it) {
            if (it->first > 0xff) break;
            std::string body(1, static_cast<char>(it->first));
            body += it->second;
            fuzz::append_record(with_ledger, 1, body);
        }
        stores.push_back(capped(with_ledger, 24 << 10));
    }
    certificates = c.certificates;
    return files;
}

std::vector<std::string> raft_cluster_corpus(std::vector<std::string>& stores) {
    Cluster c;
    for (bft::ReplicaId i = 0; i < 3; ++i) {
        auto d = std::make_unique<fuzz::EngineDriver>();
        d->id = i;
        auto config = fuzz::raft_fuzz_config(i);
        d->replicas = config.replicas;
        d->engine = bft::raft::make_raft_engine(config, fuzz::replica_keys()[i]);
        c.add(std::move(d));
    }
    for (auto& d : c.drivers) d->start();
    c.tick_all(30);  // an election
    auto leader = [&]() -> std::optional<bft::ReplicaId> {
        for (bft::ReplicaId i = 0; i < 3; ++i)
            if (!c.down[i] && c.drivers[i]->engine->status().role == "leader") return i;
        return std::nullopt;
    };
    std::vector<uint64_t> nonce(4, 0);
    for (int round = 0; round < 12; ++round) {
        auto l = leader();
        c.request(l ? *l : 0, client_transfer(round % 4, (round + 1) % 4, 5, ++nonce[round % 4]));
        c.tick_all(2);
    }
    std::vector<std::string> first = c.traces;
    // The leader crashes: another is elected and goes on; the old one returns.
    auto old = leader();
    if (old) c.down[*old] = true;
    c.tick_all(40);
    for (int round = 0; round < 6; ++round) {
        auto l = leader();
        if (l) c.request(*l, client_transfer(round % 4, (round + 2) % 4, 3, ++nonce[round % 4]));
        c.tick_all(2);
    }
    if (old) c.down[*old] = false;
    c.tick_all(20);
    for (const auto& d : c.drivers)
        std::printf("raft replica %u: executed %llu, term %llu, %s\n", d->id,
                    static_cast<unsigned long long>(d->executed),
                    static_cast<unsigned long long>(d->engine->status().view),
                    d->engine->status().role.c_str());
    std::vector<std::string> files;
    for (bft::ReplicaId i = 0; i < 3; ++i) {
        files.push_back(capped(first[i], 16 << 10));
        files.push_back(capped(c.traces[i], 28 << 10));
    }
    for (auto& d : c.drivers) {
        stores.push_back(capped(store_input(1, d->executed, d->store), 24 << 10));
    }
    return files;
}

// ---- Decoders ------------------------------------------------------------------------------

std::string body_of(const std::string& frame) {
    crypto::OpenOptions unchecked;
    unchecked.verify_signature = false;
    auto env = crypto::open(frame, unchecked);
    if (!env) std::abort();
    return env->body;
}

node::api::pb::Reply reply_for(uint32_t replica, const crypto::Hash& tx_id, uint64_t seq) {
    node::api::pb::Reply r;
    r.set_tx_id(std::string(crypto::as_bytes(tx_id)));
    r.set_client(std::string(crypto::as_bytes(fuzz::key_of(100).public_key())));
    r.set_nonce(1);
    r.set_result(0);
    r.set_seq(seq);
    r.set_view(0);
    r.set_replica(replica);
    return r;
}

void client_reply_corpus() {
    const std::string tx = client_transfer(0, 1, 25, 1);
    const crypto::Hash id = ledger::tx_id(tx);
    const auto& keys = fuzz::replica_keys();
    // Ordered: single signed replies from every replica.
    std::string ordered(1, '\0');
    for (uint32_t i = 0; i < 4; ++i)
        fuzz::append_record(ordered, static_cast<uint8_t>(i),
                            crypto::seal(keys[i], crypto::MessageType::kReply,
                                         reply_for(i, id, 7).SerializeAsString()));
    write_file("client_reply", "ordered", ordered);
    // Ordered: batched replies (the request is leaf 1 of 3 in each replica's batch).
    std::string batched(1, '\0');
    for (uint32_t i = 0; i < 4; ++i) {
        std::vector<std::string> leaves = {reply_for(i, crypto::sha256("other"), 7).SerializeAsString(),
                                           reply_for(i, id, 7).SerializeAsString(),
                                           reply_for(i, crypto::sha256("third"), 7).SerializeAsString()};
        auto frames = crypto::seal_reply_batch(keys[i], 7, leaves);
        fuzz::append_record(batched, static_cast<uint8_t>(i), frames[1]);
        if (i == 0) {
            write_file("reply_batch", "body", body_of(frames[1]));
            write_file("reply_batch", "frame", frames[1]);
            write_file("envelope", "batch_reply", frames[1]);
        }
    }
    write_file("client_reply", "batched", batched);
    // Fast reads: 2f+1 alike, one liar.
    std::string reads(1, '\1');
    for (uint32_t i = 0; i < 4; ++i) {
        node::api::pb::ReadReply rr;
        *rr.mutable_reply() = reply_for(i, id, 9);
        rr.mutable_reply()->set_value(i == 3 ? 1 : 500);
        rr.set_state_digest(std::string(crypto::as_bytes(crypto::sha256("state at 9"))));
        fuzz::append_record(reads, static_cast<uint8_t>(i),
                            crypto::seal(keys[i], crypto::MessageType::kReadReply, rr.SerializeAsString()));
    }
    write_file("client_reply", "read", reads);
}

void tx_and_envelope_corpus() {
    const std::string transfer = client_transfer(0, 1, 25, 1);
    write_file("tx", "transfer", transfer);
    write_file("tx", "balance_query",
               ledger::make_balance_query(fuzz::key_of(101), fuzz::key_of(102).public_key(), 3));
    write_file("tx", "tx_query", ledger::make_tx_query(fuzz::key_of(102), ledger::tx_id(transfer), 4));
    write_file("envelope", "request", transfer);
    // A block: transfers among the funded accounts, one overdrawing, a query, a repeat.
    std::string block;
    fuzz::append_record(block, 0, transfer);
    fuzz::append_record(block, 0, client_transfer(1, 2, 30, 1));
    fuzz::append_record(block, 0, client_transfer(2, 3, 999999, 1));
    fuzz::append_record(block, 0, ledger::make_balance_query(fuzz::key_of(103), fuzz::key_of(100).public_key(), 1));
    fuzz::append_record(block, 0, transfer);
    write_file("ledger_block", "transfers", block);
    bft::pbft::pb::Vote v;
    v.set_view(1);
    v.set_seq(5);
    v.set_digest(std::string(crypto::as_bytes(crypto::sha256("batch"))));
    write_file("envelope", "prepare",
               crypto::seal(fuzz::replica_keys()[2], crypto::MessageType::kPrepare, v.SerializeAsString()));
    // Raft's replicas MAC what they send each other: replica 1's append to replica 0.
    const auto& keys = fuzz::replica_keys();
    write_file("envelope", "raft_append_maced",
               crypto::seal_for_peer(keys[1], crypto::PairwiseKey::derive(keys[1], keys[0].public_key()).value(),
                                     crypto::MessageType::kRaftAppend, "entries"));
}

void merkle_corpus() {
    write_file("merkle", "three", std::string("\x01\x03leaf-a\0leaf-b\0leaf-c", 21));
    std::string many = "\x05\x09";
    for (int i = 0; i < 9; ++i) many += "leaf" + std::to_string(i) + '\0';
    write_file("merkle", "nine", many);
}

void snapshot_corpus() {
    auto source = fuzz::snapshot_source();
    const auto point = source->snapshot_point();
    for (int since = 0; since < 2; ++since) {
        auto scratch = fuzz::open_or_die(fuzz::snapshot_genesis());
        ledger::SnapshotImport import(*scratch, point.last_block.seq, point.last_block.hash(),
                                      since == 0 ? ledger::SnapshotImport::Since::kWhatItHolds
                                                 : ledger::SnapshotImport::Since::kGenesis);
        std::string script(1, static_cast<char>(since));
        while (!import.complete()) {
            auto chunk = source->snapshot_chunk(point, import.next_cursor(), fuzz::kSnapshotChunkBytes);
            if (!chunk || !import.add(*chunk)) std::abort();
            fuzz::append_record(script, 0, *chunk);
        }
        write_file("snapshot", since == 0 ? "since_held" : "since_genesis", script);
    }
}

void certified_block_corpus(const std::vector<std::string>& certificates) {
    int i = 0;
    for (const auto& cert : certificates) {
        ledger::CertifiedBlock block;
        block.header.height = block.header.seq = static_cast<uint64_t>(i + 1);
        block.header.tx_root = crypto::sha256("root");
        block.header.state_digest = crypto::sha256("state");
        block.header.tx_count = 1;
        block.certificate = cert;
        write_file("certified_block", "block" + std::to_string(i++), ledger::encode_certified_block(block));
    }
}

void network_config_corpus() {
    for (int raft = 0; raft < 2; ++raft) {
        node::api::NetworkConfig config;
        config.protocol = raft ? bft::Protocol::kRaft : bft::Protocol::kPbft;
        config.f = 1;
        config.dir = "/tmp";
        const uint32_t n = raft ? 3 : 4;
        for (uint32_t i = 0; i < n; ++i) {
            node::api::ReplicaConfig r;
            r.id = i;
            r.port = static_cast<uint16_t>(7100 + i);
            r.client_port = static_cast<uint16_t>(7200 + i);
            r.public_key = fuzz::key_of(i).public_key();
            r.key_file = "/tmp/keys/replica-" + std::to_string(i) + ".key";
            r.data_dir = "/tmp/data/" + std::to_string(i);
            if (i == 1 && !raft) r.traitor = "silent";
            config.replicas.push_back(r);
        }
        for (uint32_t c = 0; c < 2; ++c)
            config.genesis.accounts.push_back({fuzz::key_of(100 + c).public_key(), 1000000, 0});
        const fs::path path = g_out / "network_config" / (raft ? "raft.json" : "pbft.json");
        fs::create_directories(path.parent_path());
        auto saved = node::api::save_network_config(config, path.string());
        if (!saved) {
            std::fprintf(stderr, "%s\n", saved.error().message.c_str());
            std::exit(1);
        }
        g_bytes += fs::file_size(path);
    }
}

void key_file_corpus() {
    const fs::path path = g_out / "key_file" / "replica-0.key";
    fs::create_directories(path.parent_path());
    fs::remove(path);
    if (!crypto::write_key_file(path.string(), fuzz::key_of(0))) std::exit(1);
    ::chmod(path.c_str(), 0644);  // a test key, public in the repository anyway
    std::ifstream in(path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    g_bytes += text.size();
    for (char& ch : text) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    // The header must stay lower case; only the hex digits may be upper.
    text.replace(0, 24, "tally-ed25519-v1\npublic ");
    const size_t seed_at = text.find("\nSEED ");
    if (seed_at != std::string::npos) text.replace(seed_at, 6, "\nseed ");
    write_file("key_file", "upper_hex.key", text);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s CORPUS_DIR (tests/fuzz/corpus)\n", argv[0]);
        return 2;
    }
    g_out = argv[1];

    // Commit certificates under Ed25519, as a ledger keeps them (fuzz_certified_block)...
    std::vector<std::string> certificates;
    {
        std::vector<std::string> unused;
        pbft_cluster_corpus(unused, certificates);
    }
    // ... and the engines' traffic under the engine targets' signatures (fuzz_common.h).
    fuzz::use_engine_signatures();
    std::vector<std::string> pbft_stores;
    std::vector<std::string> raft_stores;
    std::vector<std::string> ignored;
    int i = 0;
    for (const auto& f : pbft_cluster_corpus(pbft_stores, ignored))
        write_file("pbft", "trace" + std::to_string(i++), f);
    i = 0;
    for (const auto& f : raft_cluster_corpus(raft_stores)) write_file("raft", "trace" + std::to_string(i++), f);
    i = 0;
    for (const auto& s : pbft_stores) write_file("store", "pbft" + std::to_string(i++), s);
    i = 0;
    for (const auto& s : raft_stores) write_file("store", "raft" + std::to_string(i++), s);
    crypto::simulator_only::use_mac_signatures(false);
    certified_block_corpus(certificates);
    client_reply_corpus();
    tx_and_envelope_corpus();
    merkle_corpus();
    snapshot_corpus();
    network_config_corpus();
    key_file_corpus();
    std::printf("fuzz_corpus_gen: wrote %zu bytes under %s\n", g_bytes, g_out.c_str());
    return 0;
}
