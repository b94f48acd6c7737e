// Helpers for Raft tests: replicas' keys, messages sealed as any of them, a direct line into
// one engine (Direct), and a deterministic multi-engine cluster (Cluster): engines wired by
// hand through a seeded shuffling network with drops, duplicates, partitions, crashes and
// power losses, that checks Raft's safety properties after every step. No time but ticks.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bft/raft/raft.h"
#include "bft/raft/traitor.h"
#include "bft/raft/raft.pb.h"
#include "crypto/envelope.h"

namespace tally::bft::raft::testing {

inline crypto::KeyPair key_of(uint32_t i) {
    crypto::Seed seed{};
    seed[0] = static_cast<uint8_t>(i + 1);
    seed[1] = 0x7a;
    return crypto::KeyPair::from_seed(seed);
}

class NoAuthenticator : public RequestAuthenticator {
public:
    Result<RequestInfo> authenticate(std::string_view) override { return RequestInfo{}; }
};

inline Config base_config(uint32_t n, ReplicaId id, uint64_t seed = 1) {
    Config c;
    c.id = id;
    for (uint32_t i = 0; i < n; ++i) c.replicas.push_back(key_of(i).public_key());
    c.seed = seed;
    c.election_timeout_ticks = 10;
    c.heartbeat_ticks = 2;
    c.batch_size_max = 4;
    c.pipeline_depth = 4;
    c.max_inflight = 4;
    c.max_entries_per_append = 4;
    return c;
}

inline crypto::Envelope open_unchecked(const std::string& raw) {
    crypto::OpenOptions o;
    o.verify_signature = false;
    auto env = crypto::open(raw, o);
    EXPECT_TRUE(env.ok());
    return env.ok() ? *env : crypto::Envelope{};
}

// The messages of one type an output sends (decoded), with their destination.
template <typename M>
std::vector<std::pair<ReplicaId, M>> sent(const Output& out, crypto::MessageType type) {
    std::vector<std::pair<ReplicaId, M>> result;
    std::vector<Outgoing> all = out.send_early;  // (sent first: engine.h)
    all.insert(all.end(), out.send.begin(), out.send.end());
    for (const auto& o : all) {
        auto env = open_unchecked(o.envelope);
        if (env.type != type) continue;
        M m;
        EXPECT_TRUE(m.ParseFromString(env.body));
        result.emplace_back(o.to, m);
    }
    return result;
}

inline std::vector<std::pair<std::string, std::string>> records_of(const std::map<std::string, std::string>& store) {
    return {store.begin(), store.end()};
}

inline void apply_persist(std::map<std::string, std::string>& store, const Output& out) {
    for (const auto& op : out.persist) {
        if (auto* put = std::get_if<PersistPut>(&op)) {
            store[put->key] = put->value;
        } else {
            const auto& erase = std::get<PersistErase>(op);
            store.erase(store.lower_bound(erase.from), store.lower_bound(erase.to));
        }
    }
}

// One engine under test, fed by hand; its persisted records are kept in `store`.
struct Direct {
    uint32_t n;
    ReplicaId id;
    Config config;
    NoAuthenticator auth;
    std::vector<crypto::KeyPair> keys;
    std::unique_ptr<RaftEngine> engine;
    std::map<std::string, std::string> store;
    uint64_t executed = 0;
    // When false, committed batches wait in `delivered` until execute_delivered(): the node
    // executes off the engine's thread, so a message may reach the engine in between.
    bool execute_at_once = true;
    std::vector<uint64_t> delivered;

    explicit Direct(uint32_t replicas = 3, ReplicaId under_test = 0) : n(replicas), id(under_test) {
        config = base_config(n, id);
        for (uint32_t i = 0; i < n; ++i) keys.push_back(key_of(i));
        restart();
    }

    Output restart() {
        engine = make_raft_engine(config, keys[id]);
        return apply(engine->on_start(records_of(store), executed, crypto::Hash{}, {}));
    }

    // Applies an output as the node would; what executing its batches outputs is appended.
    Output apply(Output out) {
        apply_persist(store, out);
        Output after;
        if (!execute_at_once) {
            for (const auto& c : out.commit) delivered.push_back(c.seq);
            return out;
        }
        for (const auto& c : out.commit) after.append(apply(execute(c.seq)));
        out.append(std::move(after));
        return out;
    }
    Output execute_delivered() {
        Output out;
        for (uint64_t seq : std::exchange(delivered, {})) out.append(execute(seq));
        execute_at_once = true;
        return apply(std::move(out));
    }
    // Executes `seq`, which must follow the last executed; returns the engine's answer.
    Output execute(uint64_t seq) {
        EXPECT_EQ(seq, executed + 1);
        executed = seq;
        return engine->on_executed(seq, digest_of(seq));
    }
    static crypto::Hash digest_of(uint64_t seq) {
        crypto::Hash h{};
        h[0] = static_cast<uint8_t>(seq);
        h[1] = 0xd1;
        return h;
    }

    Output deliver(const std::string& raw, ReplicaId from) {
        return apply(engine->on_message(from, open_unchecked(raw), raw));
    }
    Output tick(int times = 1) {
        Output all;
        for (int i = 0; i < times; ++i) all.append(apply(engine->on_tick()));
        return all;
    }
    // A request from the client whose public key starts with byte `client` (the rest zero).
    Output request(const std::string& payload, uint8_t client = 0) {
        RequestInfo info;
        info.client[0] = client;
        return apply(engine->on_client_request(ClientRequest{info, payload}));
    }

    Output vote(ReplicaId from, uint64_t term, uint64_t last_index, uint64_t last_term, bool pre = false) {
        pb::Vote v;
        v.set_term(term);
        v.set_last_log_index(last_index);
        v.set_last_log_term(last_term);
        v.set_pre_vote(pre);
        return deliver(crypto::seal(keys[from], crypto::MessageType::kRaftVote, v.SerializeAsString()), from);
    }
    // `recovery_echo`: the nonce of the recovering replica's term query it answers.
    Output vote_reply(ReplicaId from, uint64_t term, bool granted, bool pre = false, uint64_t recovery_echo = 0) {
        pb::VoteReply r;
        r.set_term(term);
        r.set_granted(granted);
        r.set_pre_vote(pre);
        r.set_recovery_echo(recovery_echo);
        return deliver(crypto::seal(keys[from], crypto::MessageType::kRaftVoteReply, r.SerializeAsString()), from);
    }
    // entries: (term, requests) for prev_index + 1, + 2, ...
    // `recovery_echo`: the nonce a recovering replica sent (Config::recovering); the leader's
    // own commit index is `commit`.
    Output append(ReplicaId from, uint64_t term, uint64_t prev_index, uint64_t prev_term, uint64_t commit,
                  const std::vector<std::pair<uint64_t, std::vector<std::string>>>& entries = {},
                  uint64_t recovery_echo = 0) {
        pb::Append a;
        a.set_term(term);
        a.set_prev_index(prev_index);
        a.set_prev_term(prev_term);
        a.set_commit(commit);
        a.set_leader_commit(commit);
        a.set_recovery_echo(recovery_echo);
        for (const auto& [t, reqs] : entries) {
            auto* e = a.add_entries();
            e->set_term(t);
            for (const auto& r : reqs) e->add_requests(r);
        }
        return deliver(crypto::seal(keys[from], crypto::MessageType::kRaftAppend, a.SerializeAsString()), from);
    }
    Output append_reply(ReplicaId from, uint64_t term, bool success, uint64_t match, uint64_t reject = 0,
                        uint64_t hint_index = 0, uint64_t hint_term = 0) {
        pb::AppendReply r;
        r.set_term(term);
        r.set_success(success);
        r.set_match_index(match);
        r.set_reject_index(reject);
        r.set_hint_index(hint_index);
        r.set_hint_term(hint_term);
        return deliver(crypto::seal(keys[from], crypto::MessageType::kRaftAppendReply, r.SerializeAsString()), from);
    }

    DurableState durable() const {
        DurableState d;
        EXPECT_TRUE(read_durable(records_of(store), d));
        return d;
    }
    std::string role() const { return engine->status().role; }
    uint64_t term() const { return engine->status().view; }

    // Ticks until the engine sends a (pre-)vote request; then grants it from enough peers to
    // make it leader of term `current + 1`. Returns the output of becoming leader.
    Output elect() {
        for (int i = 0; i < 100 && role() == "follower"; ++i) tick();
        uint64_t t = term() + 1;
        Output out;
        if (role() == "pre-candidate")
            for (ReplicaId p = 0; p < n && role() == "pre-candidate"; ++p)
                if (p != id) out = vote_reply(p, t, true, true);
        for (ReplicaId p = 0; p < n && role() == "candidate"; ++p)
            if (p != id) out = vote_reply(p, t, true, false);
        EXPECT_EQ(role(), "leader");
        return out;
    }
};

// --- The cluster ----------------------------------------------------------------------------

struct Faults {
    double drop = 0.0;       // per message
    double duplicate = 0.0;  // per message
    double delay = 0.3;      // per message and round: stays queued for a later round
    double crash = 0.0;      // per node and round: process crash (keeps what it wrote)
    double power_loss = 0.0; // per node and round: loses what it wrote without sync
    double store_loss = 0.0; // per node and round: loses its whole consensus store (term, vote,
                             // log; the ledger stays) and rejoins as `tallyd --recover` does
    double restart = 0.05;   // per down node and round
    double partition = 0.0;  // per round: cut a random node off (for a while)
    double heal = 0.1;       // per round: heal every partition
    double transfer = 0.0;   // per round: the leader hands over to a random replica
    double early_power_loss = 0.0;  // per output with early sends: the power fails right after them
};

class Cluster {
public:
    struct Node {
        std::unique_ptr<RaftEngine> engine;
        std::map<std::string, std::string> store;   // written: survives a process crash
        std::map<std::string, std::string> synced;  // fsynced: survives a power loss
        Output unsynced;                            // written since the last fsync
        std::vector<Committed> executed;            // the ledger (durable)
        bool up = true;
        uint64_t leader_term = 0;                   // term it last led (0: none)
        std::vector<LogEntry> leader_log;           // its log when last seen leading
        std::optional<SnapshotTarget> fetching;        // a state transfer it asked for
        bool recovering = false;                    // lost its store; not yet told it caught up
    };

    uint32_t n;
    uint64_t seed;
    std::mt19937_64 rng;
    std::vector<Node> nodes;
    std::vector<crypto::KeyPair> keys;
    std::vector<Config> configs;
    NoAuthenticator auth;
    // false: a replica that lost its store rejoins without Config::recovering, as if its empty
    // store were a fresh one (what the recovery rule exists to prevent).
    bool recovery_rule = true;
    // Replicas that run a traitor around their honest engine (bft/raft/traitor.h).
    std::map<ReplicaId, std::vector<Behaviour>> traitors;
    Faults faults;
    std::set<ReplicaId> cut_off;  // partitioned from everyone else
    struct Message {
        ReplicaId from, to;
        std::string raw;
    };
    std::vector<Message> network;

    // What the properties need.
    std::map<uint64_t, ReplicaId> leaders;  // term -> leader (Election Safety)
    struct Decided {
        uint64_t term;
        std::vector<std::string> requests;
        uint64_t decided_in_term;  // the smallest term any replica was in when it delivered it
    };
    std::map<uint64_t, Decided> committed;  // seq -> what was committed (State Machine Safety)
    std::vector<Detected> detections;
    uint64_t next_request = 0;
    uint64_t crashes = 0;  // process crashes and power losses injected
    uint64_t transfers = 0;  // leader transfers asked for
    // ReadIndex: read id -> the highest index committed anywhere when it was issued. A read
    // answered ok at a lower index would miss a write a client may have seen: not linearizable.
    std::map<uint64_t, uint64_t> reads;
    uint64_t next_read = 0;
    uint64_t reads_ok = 0;
    std::vector<std::string> submitted;
    bool failed = false;

    Cluster(uint32_t replicas, uint64_t s, const Faults& f, const std::function<void(Config&)>& tweak = nullptr)
        : n(replicas), seed(s), rng(s), faults(f) {
        nodes.resize(n);
        for (uint32_t i = 0; i < n; ++i) {
            keys.push_back(key_of(i));
            configs.push_back(base_config(n, i, seed));
            if (tweak) tweak(configs.back());
        }
        for (uint32_t i = 0; i < n; ++i) start(i);
    }

    bool chance(double p) { return p > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < p; }

    void start(ReplicaId id) {
        Node& node = nodes[id];
        node.up = true;
        Config config = configs[id];
        config.recovering = node.recovering && recovery_rule;
        // A seed of its own for each recovering start, as tallyd draws one at each start: the
        // recovery nonce comes from it (Config::recovering).
        if (config.recovering) config.seed ^= 0x9e3779b97f4a7c15ULL * ++recovering_starts;
        node.engine = make_raft_engine(config, keys[id]);
        if (auto t = traitors.find(id); t != traitors.end())
            node.engine = std::make_unique<TraitorEngine>(std::move(node.engine), t->second);
        apply(id, node.engine->on_start(records_of(node.store), node.executed.size(), crypto::Hash{}, {}));
    }
    void crash(ReplicaId id, bool power_loss) {
        Node& node = nodes[id];
        node.up = false;
        node.engine.reset();
        node.fetching.reset();
        ++crashes;
        if (power_loss) node.store = node.synced;
        node.unsynced = Output{};
    }
    void lose_store(ReplicaId id) {
        crash(id, true);
        nodes[id].store.clear();
        nodes[id].synced.clear();
        nodes[id].recovering = true;
        ++store_losses;
    }
    uint64_t store_losses = 0;
    uint64_t recovering_starts = 0;
    uint64_t early_power_losses = 0;
    // One store lost at a time: two replicas of three without their stores are more faults
    // than Raft tolerates (what they acknowledged may be gone), and recovering ones do not vote.
    bool any_recovering() const {
        for (const auto& node : nodes)
            if (node.recovering) return true;
        return false;
    }

    bool report = true;         // false: record the first failure without failing the test
    std::string first_failure;

    void fail(const std::string& what) {
        if (!failed) {
            first_failure = what;
            if (report) ADD_FAILURE() << "seed " << seed << ": " << what;
        }
        failed = true;
    }

    void queue(ReplicaId from, Outgoing o) {
        if (o.to == kAllReplicas) {
            for (ReplicaId to = 0; to < n; ++to)
                if (to != from) network.push_back(Message{from, to, o.envelope});
        } else {
            network.push_back(Message{from, o.to, std::move(o.envelope)});
        }
    }

    void apply(ReplicaId id, Output out) {
        Node& node = nodes[id];
        // The power fails after the early messages left and before this output's writes were
        // made (engine.h, send_early): they are out, the writes (and every unsynced one) gone.
        if (in_faulty_round && !out.send_early.empty() && chance(faults.early_power_loss)) {
            for (auto& o : out.send_early) queue(id, std::move(o));
            ++early_power_losses;
            crash(id, true);
            return;
        }
        apply_persist(node.store, out);
        node.unsynced.persist.insert(node.unsynced.persist.end(), out.persist.begin(), out.persist.end());
        if (out.sync) {
            apply_persist(node.synced, node.unsynced);
            node.unsynced.persist.clear();
        }
        for (auto& o : out.send_early) queue(id, std::move(o));
        for (auto& o : out.send) queue(id, std::move(o));
        for (auto& d : node.engine->take_detected()) detections.push_back(d);
        // As the node clears its store's recovering mark once the engine says it caught up.
        if (node.recovering && !node.engine->status().recovering) node.recovering = false;
        check_reads(id);
        check_leader(id);
        uint64_t term_now = node.engine->status().view;
        for (auto& c : out.commit) {
            if (c.seq != node.executed.size() + 1) fail("commit out of order at replica " + std::to_string(id));
            auto [it, fresh] = committed.try_emplace(c.seq, Decided{c.view, c.requests, term_now});
            // State Machine Safety: every replica executes the same entry at each index.
            if (!fresh && (it->second.term != c.view || it->second.requests != c.requests))
                fail("State Machine Safety: replicas executed different entries at " + std::to_string(c.seq));
            it->second.decided_in_term = std::min(it->second.decided_in_term, term_now);
            node.executed.push_back(c);
            Output more = node.engine->on_executed(c.seq, crypto::Hash{});
            if (!more.empty()) apply(id, std::move(more));
        }
        if (out.fetch_snapshot) {
            node.fetching = out.fetch_snapshot;
            try_fetch(id);
        }
    }

    // State transfer, as the node does it for InstallSnapshot: copy a peer's ledger through
    // the target index (the harness's ledger is the list of executed batches).
    uint64_t state_transfers = 0;
    void try_fetch(ReplicaId id) {
        Node& node = nodes[id];
        if (!node.fetching) return;
        SnapshotTarget t = *node.fetching;
        for (ReplicaId p : t.peers) {
            if (!nodes[p].up || nodes[p].executed.size() < t.seq || !linked(id, p)) continue;
            if (node.executed.size() >= t.seq) break;
            for (size_t i = 0; i < node.executed.size(); ++i)
                if (node.executed[i].requests != nodes[p].executed[i].requests)
                    fail("state transfer: ledgers differ at " + std::to_string(i + 1));
            // Half the time the peer serves its current state, past the target (as a node that
            // keeps no old states would).
            uint64_t seq = chance(0.5) ? nodes[p].executed.size() : t.seq;
            node.executed.assign(nodes[p].executed.begin(), nodes[p].executed.begin() + static_cast<std::ptrdiff_t>(seq));
            node.fetching.reset();
            ++state_transfers;
            apply(id, node.engine->on_state_restored(seq, crypto::Hash{}));
            return;
        }
    }

    void check_reads(ReplicaId id) {
        for (const auto& r : nodes[id].engine->take_reads()) {
            auto it = reads.find(r.read_id);
            if (it == reads.end()) continue;
            if (r.ok) {
                ++reads_ok;
                if (r.index < it->second)
                    fail("ReadIndex: read " + std::to_string(r.read_id) + " at " + std::to_string(r.index) +
                         " misses committed " + std::to_string(it->second));
                if (r.index > nodes[id].executed.size()) fail("ReadIndex: answered before executing");
            }
            reads.erase(it);
        }
    }

    void read(ReplicaId at) {
        if (!nodes[at].up) return;
        uint64_t id = ++next_read;
        reads[id] = committed.empty() ? 0 : committed.rbegin()->first;
        apply(at, nodes[at].engine->read_index(id));
    }

    DurableState durable_of(ReplicaId id) {
        DurableState d;
        if (!read_durable(records_of(nodes[id].store), d)) fail("bad records at " + std::to_string(id));
        return d;
    }
    std::vector<LogEntry> log_of(ReplicaId id) { return durable_of(id).log; }
    static const LogEntry* at(const std::vector<LogEntry>& log, uint64_t index) {
        if (log.empty() || index < log.front().index || index > log.back().index) return nullptr;
        return &log[index - log.front().index];
    }

    // Election Safety, Leader Append-Only and Leader Completeness, checked whenever a replica
    // is seen leading.
    bool checks = true;  // false: no per-step log checks (they re-read the whole log)
    void check_leader(ReplicaId id) {
        if (!checks) return;
        Node& node = nodes[id];
        EngineStatus s = node.engine->status();
        if (s.role != "leader") return;
        auto [it, fresh] = leaders.try_emplace(s.view, id);
        if (it->second != id) fail("Election Safety: two leaders in term " + std::to_string(s.view));
        DurableState st = durable_of(id);
        auto& log = st.log;
        if (node.leader_term == s.view) {
            // Leader Append-Only: what it held as leader of this term is still there (or
            // compacted into its ledger).
            for (const auto& old : node.leader_log) {
                if (old.index <= st.snapshot_index) continue;
                const LogEntry* e = at(log, old.index);
                if (!e || e->term != old.term || e->requests != old.requests)
                    fail("Leader Append-Only: entry " + std::to_string(old.index) + " changed");
            }
        } else {
            // Leader Completeness: a leader of term t holds every entry committed before t.
            for (const auto& [seq, d] : committed) {
                if (d.decided_in_term >= s.view || seq <= st.snapshot_index) continue;
                const LogEntry* e = at(log, seq);
                if (!e || e->term != d.term || e->requests != d.requests)
                    fail("Leader Completeness: leader of term " + std::to_string(s.view) + " lacks " +
                         std::to_string(seq));
            }
        }
        node.leader_term = s.view;
        node.leader_log = std::move(log);
    }

    // Log Matching: two logs with an entry of the same index and term agree up to there.
    void check_log_matching() {
        std::vector<std::vector<LogEntry>> logs;
        for (ReplicaId i = 0; i < n; ++i) logs.push_back(log_of(i));
        for (ReplicaId a = 0; a < n; ++a)
            for (ReplicaId b = a + 1; b < n; ++b) {
                if (logs[a].empty() || logs[b].empty()) continue;
                uint64_t lo = std::max(logs[a].front().index, logs[b].front().index);
                uint64_t hi = std::min(logs[a].back().index, logs[b].back().index);
                uint64_t last_same = 0;
                for (uint64_t i = hi; i >= lo && i > 0; --i)
                    if (at(logs[a], i)->term == at(logs[b], i)->term) {
                        last_same = i;
                        break;
                    }
                for (uint64_t i = lo; last_same > 0 && i <= last_same; ++i) {
                    const LogEntry* x = at(logs[a], i);
                    const LogEntry* y = at(logs[b], i);
                    if (x->term != y->term || x->requests != y->requests)
                        fail("Log Matching: replicas " + std::to_string(a) + " and " + std::to_string(b) +
                             " differ at " + std::to_string(i));
                }
            }
    }

    std::optional<ReplicaId> leader() {
        for (ReplicaId i = 0; i < n; ++i)
            if (nodes[i].up && nodes[i].engine->status().role == "leader") return i;
        return std::nullopt;
    }

    void submit(ReplicaId to, const std::string& payload) {
        if (!nodes[to].up) return;
        apply(to, nodes[to].engine->on_client_request(ClientRequest{RequestInfo{}, payload}));
    }

    std::set<std::pair<ReplicaId, ReplicaId>> cut_links;  // (a, b), a < b: no messages between them
    std::function<bool(ReplicaId from, ReplicaId to, const crypto::Envelope&)> drop_if;  // scripted loss
    bool linked(ReplicaId a, ReplicaId b) const {
        return !cut_off.count(a) && !cut_off.count(b) && !cut_links.count({std::min(a, b), std::max(a, b)});
    }

    // One round: deliver the queued messages in a shuffled order (some held back, dropped or
    // duplicated), then faults, then a tick on every live replica.
    bool in_faulty_round = false;  // faults strike only inside round(true, ...)
    void round(bool with_faults, double request_rate = 0.5) {
        in_faulty_round = with_faults;
        std::vector<Message> batch;
        batch.swap(network);
        std::shuffle(batch.begin(), batch.end(), rng);
        for (auto& m : batch) {
            if (with_faults && chance(faults.delay)) {
                network.push_back(std::move(m));
                continue;
            }
            if (with_faults && chance(faults.drop)) continue;
            if (!nodes[m.to].up || !linked(m.from, m.to)) continue;
            if (with_faults && chance(faults.duplicate)) network.push_back(m);
            auto env = open_unchecked(m.raw);
            if (drop_if && drop_if(m.from, m.to, env)) continue;
            apply(m.to, nodes[m.to].engine->on_message(m.from, env, m.raw));
        }
        if (with_faults) {
            for (ReplicaId i = 0; i < n; ++i) {
                if (nodes[i].up && chance(faults.crash)) crash(i, false);
                else if (nodes[i].up && chance(faults.power_loss)) crash(i, true);
                else if (nodes[i].up && chance(faults.store_loss) && !any_recovering()) lose_store(i);
                else if (!nodes[i].up && chance(faults.restart)) start(i);
            }
            if (chance(faults.partition)) cut_off.insert(static_cast<ReplicaId>(rng() % n));
            if (chance(faults.transfer))
                if (auto l = leader()) {
                    ++transfers;
                    apply(*l, nodes[*l].engine->transfer_leadership(static_cast<ReplicaId>(rng() % n)));
                }
            if (chance(faults.heal)) cut_off.clear();
        }
        for (ReplicaId i = 0; i < n; ++i) try_fetch(i);
        for (ReplicaId i = 0; i < n; ++i)
            if (nodes[i].up) apply(i, nodes[i].engine->on_tick());
        if (chance(request_rate)) {
            std::string payload = "req-" + std::to_string(++next_request);
            submitted.push_back(payload);
            // To the believed leader if any (a redirect), else to anyone.
            ReplicaId to = static_cast<ReplicaId>(rng() % n);
            if (auto l = leader()) to = *l;
            submit(to, payload);
        }
        if (chance(request_rate * 0.5)) read(static_cast<ReplicaId>(rng() % n));
        in_faulty_round = false;
    }

    // Heals everything: all replicas up, no partition, no loss.
    void heal() {
        cut_off.clear();
        for (ReplicaId i = 0; i < n; ++i)
            if (!nodes[i].up) start(i);
    }

    size_t min_executed() const {
        size_t m = SIZE_MAX;
        for (const auto& node : nodes) m = std::min(m, node.executed.size());
        return m;
    }
};

}  // namespace tally::bft::raft::testing
