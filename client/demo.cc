// `tally demo traitor` (demo.h).
#include "client/demo.h"

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "bft/behaviours.h"
#include "client/cli.h"
#include "client/client.h"
#include "client/net.h"

namespace tally::client {
namespace {

using namespace std::chrono_literals;

struct Side {
    Side(std::string n, std::string d, uint32_t replicas) : name(std::move(n)), dir(std::move(d)), nodes(replicas) {}
    std::string name;  // "PBFT", "Raft"
    std::string dir;
    uint32_t nodes = 0;
    Client client;
    node::api::NetworkConfig config;
    uint64_t nonce = 0;  // alice's, in this network
    uint64_t committed = 0;
};

std::string hex_prefix(const std::string& bytes) {
    std::string hex;
    char b[3];
    for (size_t i = 0; i < bytes.size() && i < 4; ++i) {
        std::snprintf(b, sizeof(b), "%02x", static_cast<unsigned char>(bytes[i]));
        hex += b;
    }
    return hex;
}

Status start(Side& side, const std::string& protocol, const std::string& traitor, const DemoOptions& options,
             std::ostream& out) {
    NetUpOptions up;
    up.dir = side.dir;
    up.protocol = protocol;
    up.nodes = side.nodes;
    up.traitors = {traitor};
    up.tallyd = options.tallyd;
    std::ostringstream quiet;
    if (auto s = net_up(up, quiet, quiet); !s) return s.error();
    auto config = load_network(side.dir);
    if (!config) return config.error();
    side.config = *config;
    if (auto s = side.client.connect(side.config); !s) return s.error();
    out << "  " << side.name << ": " << side.nodes << " replicas (f = 1), replica 0 plays '"
        << traitor.substr(2) << "'   (" << side.dir << ")\n";
    return Ok{};
}

// One transfer of 1 from alice to bob; its outcome as a few words.
std::string transfer(Side& side, const crypto::KeyPair& alice, const crypto::PublicKey& bob) {
    auto r = side.client.transfer(alice, bob, 1, ++side.nonce, 15s);
    if (!r) {
        --side.nonce;
        return r.error().code;
    }
    if (!r->ok()) return result_text(r->result);
    ++side.committed;
    return "ok at seq " + std::to_string(r->seq);
}

// Every replica: executed, digest, bob's balance by its own word, and detections. Returns how
// many distinct states the replicas that answered hold at the highest seq they share.
size_t report(Side& side, const crypto::PublicKey& bob, std::ostream& out) {
    // Let the last transfer reach every replica first (a deadline, not a promise).
    std::vector<ReplicaStatus> status;
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (true) {
        auto s = side.client.status(1000ms);
        if (s) status = *s;
        std::set<uint64_t> executed;
        for (const auto& r : status)
            if (r.up) executed.insert(r.reply.executed());
        if (executed.size() <= 1 || std::chrono::steady_clock::now() >= until) break;
    }
    std::map<std::string, std::vector<uint32_t>> states;
    out << "\n" << side.name << "\n";
    for (const auto& r : status) {
        char line[256];
        if (!r.up) {
            std::snprintf(line, sizeof(line), "  replica %u  down\n", r.id);
            out << line;
            continue;
        }
        auto balance = side.client.balance(bob, Consistency::kLocal, 5s, r.id);
        std::string detected;
        for (const auto& d : r.reply.detected())
            detected += (detected.empty() ? "" : ", ") + d.kind() + " " + std::to_string(d.count());
        std::snprintf(line, sizeof(line), "  replica %u  %-8s executed %4llu  state %s  bob %s%s%s\n", r.id,
                      r.reply.role().c_str(), static_cast<unsigned long long>(r.reply.executed()),
                      hex_prefix(r.reply.state_digest()).c_str(),
                      balance ? std::to_string(balance->balance).c_str() : "?",
                      r.reply.traitor_size() > 0 ? "  [traitor]" : "",
                      detected.empty() ? "" : ("  detected: " + detected).c_str());
        out << line;
        if (r.reply.traitor_size() == 0)
            states[std::to_string(r.reply.executed()) + "/" + r.reply.state_digest()].push_back(r.id);
    }
    // Honest replicas at one seq with different digests: a fork.
    std::map<uint64_t, std::set<std::string>> digests_at;
    for (const auto& r : status)
        if (r.up && r.reply.traitor_size() == 0) digests_at[r.reply.executed()].insert(r.reply.state_digest());
    size_t worst = 0;
    for (const auto& [seq, digests] : digests_at) worst = std::max(worst, digests.size());
    return worst;
}

}  // namespace

Status demo_traitor(const DemoOptions& options, std::ostream& out) {
    auto behaviours = bft::parse_behaviours(options.behaviour);
    if (!behaviours) return make_error("usage", behaviours.error().message);
    for (const auto b : *behaviours)
        if (!bft::raft_plays(b))
            return make_error("usage", "Raft has no '" + std::string(bft::behaviour_name(b)) + "' traitor; the demo "
                                       "needs one both protocols play: " + bft::raft_behaviour_names());
    std::string root = options.dir;
    if (root.empty()) {
        char pattern[] = "/tmp/tally-demo-XXXXXX";
        if (::mkdtemp(pattern) == nullptr) return make_error("io", "cannot make a folder under /tmp");
        root = pattern;
    }
    Side pbft{"PBFT", root + "/pbft", 4};
    Side raft{"Raft", root + "/raft", 3};
    const std::string traitor = "0:" + options.behaviour;
    out << "Two networks, one traitor each:\n";
    auto stop = [&] {
        if (options.keep) {
            out << "\nBoth networks keep running: tally net status --dir " << pbft.dir << " (or " << raft.dir
                << "); stop them with tally net down --dir ...\n";
            return;
        }
        std::ostringstream quiet;
        (void)net_down(pbft.dir, quiet);
        (void)net_down(raft.dir, quiet);
        std::error_code ec;
        if (options.dir.empty()) std::filesystem::remove_all(root, ec);
    };
    if (auto s = start(pbft, "pbft", traitor, options, out); !s) {
        stop();
        return s;
    }
    if (auto s = start(raft, "raft", traitor, options, out); !s) {
        stop();
        return s;
    }
    auto alice = resolve_key("alice", pbft.dir);
    auto bob = resolve_account("bob", pbft.dir);
    auto raft_alice = resolve_key("alice", raft.dir);
    auto raft_bob = resolve_account("bob", raft.dir);
    if (!alice || !bob || !raft_alice || !raft_bob) {
        stop();
        return make_error("io", "the networks' account keys are missing");
    }

    out << "\nThe same " << options.transfers << " transfers into both (1 from alice to bob each), as each completes:\n";
    for (uint32_t i = 1; i <= options.transfers; ++i) {
        const std::string p = transfer(pbft, *alice, *bob);
        const std::string r = transfer(raft, *raft_alice, *raft_bob);
        char line[256];
        std::snprintf(line, sizeof(line), "  transfer %2u   PBFT: %-18s Raft: %s\n", i, p.c_str(), r.c_str());
        out << line << std::flush;
    }

    const size_t pbft_states = report(pbft, *bob, out);
    const size_t raft_states = report(raft, *raft_bob, out);
    out << "\nWhat happened:\n";
    out << "  PBFT: the honest replicas hold " << (pbft_states <= 1 ? "one state" : "DIFFERENT states")
        << "; every client was told " << pbft.committed << " transfers committed, and they are in every honest "
        << "ledger.\n";
    out << "  Raft: the honest replicas hold "
        << (raft_states <= 1 ? "one state" : std::to_string(raft_states) + " different states at one height")
        << (raft_states <= 1 ? "" : " — a fork that no replica detected; every client was told " +
                                        std::to_string(raft.committed) + " transfers committed")
        << ".\n";
    out << "\nWhy: PBFT commits a batch at a sequence number only when 2f+1 = 3 of its 4 replicas prepared\n"
           "the same digest there, and any two such quorums share f+1 = 2 replicas, at least one of them\n"
           "honest, which never prepares two digests for one seq: the traitor's two stories cannot both\n"
           "gather a quorum, its conflicting signed messages are evidence (\"detected\"), and its peers\n"
           "replace it by a view change. Raft's majority of 2 of 3 trusts its members: followers append\n"
           "whatever the leader sends (the consistency check compares terms, never contents), so a\n"
           "traitor leader tells each follower its own story, each is acknowledged and committed, and\n"
           "the states part for good. Raft tolerates f crashes among 2f+1; PBFT tolerates f traitors\n"
           "among 3f+1.\n";
    stop();
    return Ok{};
}

}  // namespace tally::client
