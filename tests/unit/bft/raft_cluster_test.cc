// Raft engines wired together by hand (tests/unit/bft/raft_harness.h: Cluster): a seeded
// network that shuffles, holds back, drops and duplicates messages, partitions, crashes and
// power losses. After every step the cluster checks the paper's properties (Figure 3):
// Election Safety, Leader Append-Only, Log Matching, Leader Completeness, State Machine
// Safety; and, once healed, that the cluster makes progress again.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "tests/unit/bft/raft_harness.h"

namespace tally::bft::raft::testing {
namespace {

// Runs until a leader exists and a fresh request is executed by every replica.
bool converge(Cluster& c, int max_rounds = 400) {
    std::string probe = "probe-" + std::to_string(c.seed);
    int submitted_at = -100;
    for (int r = 0; r < max_rounds; ++r) {
        c.round(false, 0.0);
        auto l = c.leader();
        if (!l) continue;
        if (r - submitted_at >= 20) {  // a client's retry
            c.submit(*l, probe);
            submitted_at = r;
        }
        bool everywhere = true;
        for (const auto& node : c.nodes) {
            bool found = false;
            for (const auto& e : node.executed)
                for (const auto& req : e.requests) found = found || req == probe;
            everywhere = everywhere && found;
        }
        if (everywhere) return true;
    }
    return false;
}

struct Totals {
    uint64_t terms_led = 0, committed = 0, crashes = 0, reads_ok = 0, state_transfers = 0, early_power_losses = 0;
};

// The random schedules' faults: loss, duplication, delay, crashes, power losses, partitions.
Faults random_faults() {
    Faults f;
    f.drop = 0.1;
    f.duplicate = 0.02;
    f.delay = 0.4;
    f.crash = 0.01;
    f.power_loss = 0.01;
    f.restart = 0.1;
    f.partition = 0.05;
    f.heal = 0.05;
    f.early_power_loss = 0.03;
    return f;
}

void run_random_schedule(uint64_t seed, uint32_t n, int rounds, Totals& totals) {
    Faults f = random_faults();
    f.transfer = 0.01;
    // A quarter of the seeds run without pre-vote and check-quorum: then the real vote's
    // election restriction is all that stands between a stale log and leadership.
    // Another quarter sends one entry per append, so an old term's entries can reach a
    // majority before the new leader's no-op does (the Figure 8 schedule).
    // And another compacts its log every few entries, so lagging and restarted replicas
    // catch up by InstallSnapshot. Every seed cuts batches of two requests, so that full
    // batches form under the schedule's load and the leader keeps several entries in flight
    // (worth_waiting).
    const uint64_t quarter = seed % 4;
    const auto tweak = [quarter](Config& cfg) {
        cfg.batch_size_max = 2;
        if (quarter == 0) {
            cfg.pre_vote = false;
            cfg.check_quorum = false;
        }
        if (quarter == 2) cfg.max_entries_per_append = 1;
        if (quarter == 1) {
            cfg.snapshot_interval = 6;
            cfg.snapshot_trailing = 2;
        }
    };
    Cluster c(n, seed, f, tweak);
    for (int r = 0; r < rounds && !c.failed; ++r) {
        c.round(true);
        if (r % 10 == 0) c.check_log_matching();
    }
    c.heal();
    EXPECT_TRUE(converge(c)) << "seed " << seed << ": no progress after healing";
    c.check_log_matching();
    // After convergence every replica has executed the same entries (State Machine Safety is
    // checked on each one as it executes).
    for (ReplicaId i = 0; i < n; ++i) EXPECT_GT(c.nodes[i].executed.size(), 0u) << "seed " << seed;
    EXPECT_TRUE(c.detections.empty())
        << "seed " << seed << ": an honest cluster reported "
        << (c.detections.empty() ? "" : misbehaviour_name(c.detections[0].kind));
    EXPECT_FALSE(c.failed);
    totals.terms_led += c.leaders.size();
    totals.committed += c.committed.size();
    totals.crashes += c.crashes;
    totals.reads_ok += c.reads_ok;
    totals.state_transfers += c.state_transfers;
    totals.early_power_losses += c.early_power_losses;
}

// The paper's five properties, and linearizable ReadIndex reads, under random schedules:
// many seeds, 3 and 5 replicas.
TEST(RaftSafety, ElectionSafetyLeaderAppendOnlyLogMatchingLeaderCompletenessStateMachineSafetyReadIndex) {
    Totals totals;
    // TALLY_RAFT_SEEDS=N runs more (a deeper search than CI's; the first seed with TALLY_RAFT_SEED0).
    const uint64_t seeds = std::getenv("TALLY_RAFT_SEEDS") ? std::strtoull(std::getenv("TALLY_RAFT_SEEDS"), nullptr, 10) : 60;
    const uint64_t seed0 = std::getenv("TALLY_RAFT_SEED0") ? std::strtoull(std::getenv("TALLY_RAFT_SEED0"), nullptr, 10) : 1;
    for (uint64_t seed = seed0; seed < seed0 + seeds; ++seed) {
        run_random_schedule(seed, seed % 2 ? 3 : 5, 300, totals);
        if (::testing::Test::HasFailure()) break;
    }
    std::printf("%lu seeds: %lu terms with a leader, %lu entries committed, %lu crashes, %lu ReadIndex reads, "
                "%lu snapshots installed, %lu power losses between a leader's early sends and its write\n",
                static_cast<unsigned long>(seeds), static_cast<unsigned long>(totals.terms_led),
                static_cast<unsigned long>(totals.committed), static_cast<unsigned long>(totals.crashes),
                static_cast<unsigned long>(totals.reads_ok), static_cast<unsigned long>(totals.state_transfers),
                static_cast<unsigned long>(totals.early_power_losses));
    // The schedules did exercise elections, commits and crashes.
    EXPECT_GT(totals.terms_led, 3 * seeds);
    EXPECT_GT(totals.committed, 30 * seeds);
    EXPECT_GT(totals.crashes, seeds);
    EXPECT_GT(totals.reads_ok, 3 * seeds);
    EXPECT_GT(totals.state_transfers, seeds / 4);
    // Leaders lost power between sending new entries and writing them (engine.h, send_early).
    EXPECT_GT(totals.early_power_losses, seeds / 2);
}

// The harness catches what it claims to: two replicas executing different entries at one
// index fail the run.
TEST(RaftSafety, HarnessDetectsDivergentExecution) {
    Cluster c(3, 7, Faults{});
    c.report = false;
    Output a, b;
    a.commit.push_back(Committed{1, 1, {"x"}});
    b.commit.push_back(Committed{1, 1, {"y"}});
    c.apply(0, std::move(a));
    EXPECT_FALSE(c.failed);
    c.apply(1, std::move(b));
    EXPECT_TRUE(c.failed);
    EXPECT_NE(c.first_failure.find("State Machine Safety"), std::string::npos);
}

// Determinism: the engine takes its randomness from Config::seed only, so one seed replays the
// same run exactly (what lets a simulator replay a failing seed).
TEST(RaftSafety, SameSeedSameRun) {
    auto run = [](uint64_t seed) {
        Faults f;
        f.drop = 0.1;
        f.crash = 0.01;
        f.power_loss = 0.01;
        f.partition = 0.05;
        f.heal = 0.05;
        f.transfer = 0.01;
        Cluster c(5, seed, f);
        for (int r = 0; r < 200; ++r) c.round(true);
        std::vector<std::string> trace;
        for (const auto& [term, leader] : c.leaders) trace.push_back("L" + std::to_string(term) + "=" + std::to_string(leader));
        for (const auto& [seq, d] : c.committed) {
            trace.push_back("C" + std::to_string(seq) + "/" + std::to_string(d.term));
            for (const auto& r : d.requests) trace.push_back(r);
        }
        for (const auto& m : c.network) trace.push_back(m.raw);
        return trace;
    };
    auto a = run(77);
    EXPECT_GT(a.size(), 50u);
    EXPECT_EQ(a, run(77));
    EXPECT_NE(a, run(78));
}

uint64_t run_until_leader(Cluster& c, int max_rounds = 200) {
    for (int r = 0; r < max_rounds; ++r) {
        c.round(false, 0.0);
        if (c.leader()) return c.nodes[*c.leader()].engine->status().view;
    }
    return 0;
}

// Pre-vote: a follower cut off from the others never raises its term (it cannot win a
// pre-vote), so when it comes back the leader keeps leading in the same term. The control
// run without pre-vote and check-quorum shows the disruption it prevents.
TEST(RaftElection, PreVoteRejoiningNodeDoesNotDisruptLeader) {
    for (bool pre_vote : {true, false}) {
        auto tweak = pre_vote ? +[](Config&) {} : +[](Config& cfg) {
            cfg.pre_vote = false;
            cfg.check_quorum = false;
        };
        Cluster c(3, 11, Faults{}, tweak);
        uint64_t term = run_until_leader(c);
        ASSERT_GT(term, 0u);
        ReplicaId leader = *c.leader();
        ASSERT_TRUE(converge(c));
        ReplicaId lonely = (leader + 1) % 3;
        c.cut_off.insert(lonely);
        for (int r = 0; r < 200; ++r) c.round(false, 0.0);
        uint64_t lonely_term = c.nodes[lonely].engine->status().view;
        c.cut_off.clear();
        for (int r = 0; r < 100; ++r) c.round(false, 0.0);
        ASSERT_TRUE(converge(c));
        if (pre_vote) {
            EXPECT_EQ(lonely_term, term) << "a partitioned node raised its term";
            ASSERT_TRUE(c.leader().has_value());
            EXPECT_EQ(*c.leader(), leader) << "the rejoining node deposed the leader";
            EXPECT_EQ(c.nodes[leader].engine->status().view, term);
        } else {
            EXPECT_GT(lonely_term, term + 5) << "control: without pre-vote the term climbs";
            EXPECT_GT(c.nodes[*c.leader()].engine->status().view, term) << "control: the leader was deposed";
        }
        EXPECT_FALSE(c.failed);
    }
}

// Check-quorum: a leader cut off from the majority steps down within an election timeout or
// two, the majority elects another, and what the old leader appended alone never commits.
TEST(RaftElection, CheckQuorumPartitionedLeaderStepsDown) {
    Cluster c(5, 5, Faults{});
    uint64_t term = run_until_leader(c);
    ASSERT_GT(term, 0u);
    ASSERT_TRUE(converge(c));
    ReplicaId old = *c.leader();
    c.cut_off.insert(old);
    c.submit(old, "lost-in-minority");
    int rounds = 0;
    while (c.nodes[old].engine->status().role == "leader" && rounds < 100) {
        c.round(false, 0.0);
        ++rounds;
    }
    EXPECT_LE(rounds, 2 * 10) << "a leader without a majority kept leading";
    std::optional<ReplicaId> next;
    for (int r = 0; r < 200 && !next; ++r) {
        c.round(false, 0.0);
        next = c.leader();
    }
    ASSERT_TRUE(next.has_value());
    EXPECT_NE(*next, old);
    EXPECT_GT(c.nodes[*next].engine->status().view, term);
    c.cut_off.clear();
    ASSERT_TRUE(converge(c));
    c.check_log_matching();
    for (const auto& [seq, d] : c.committed)
        for (const auto& r : d.requests) EXPECT_NE(r, "lost-in-minority");
    EXPECT_FALSE(c.failed);
}

// ReadIndex on a deposed leader that does not know it (check-quorum off, so it keeps its
// role): the majority has elected another leader and committed a write; a read at the old
// leader must never be answered ok (its round gets no majority), while one at the new leader
// is, at an index that includes the write.
TEST(RaftReads, ReadIndexDeposedLeaderCannotServeStaleRead) {
    Cluster c(5, 9, Faults{}, +[](Config& cfg) { cfg.check_quorum = false; });
    ASSERT_GT(run_until_leader(c), 0u);
    ASSERT_TRUE(converge(c));
    ReplicaId old = *c.leader();
    c.cut_off.insert(old);
    std::optional<ReplicaId> next;
    for (int r = 0; r < 300 && !next; ++r) {
        c.round(false, 0.0);
        for (ReplicaId i = 0; i < c.n; ++i)
            if (i != old && c.nodes[i].engine->status().role == "leader") next = i;
    }
    ASSERT_TRUE(next.has_value());
    ASSERT_EQ(c.nodes[old].engine->status().role, "leader") << "without check-quorum it still thinks it leads";
    c.submit(*next, "write-after-partition");
    for (int r = 0; r < 20; ++r) c.round(false, 0.0);
    uint64_t write_index = 0;
    for (const auto& [seq, d] : c.committed)
        for (const auto& req : d.requests)
            if (req == "write-after-partition") write_index = seq;
    ASSERT_GT(write_index, 0u);
    uint64_t before = c.reads_ok;
    c.read(old);
    for (int r = 0; r < 50; ++r) c.round(false, 0.0);
    EXPECT_EQ(c.reads_ok, before) << "the deposed leader answered a read";
    c.read(*next);
    for (int r = 0; r < 10; ++r) c.round(false, 0.0);
    EXPECT_EQ(c.reads_ok, before + 1) << "the new leader did not answer";
    EXPECT_FALSE(c.failed);
}

// Leader transfer in a running cluster: the target leads the next term within a few rounds,
// long before an election timeout, and the cluster goes on.
TEST(RaftElection, LeaderTransferHandsOverQuickly) {
    Cluster c(5, 21, Faults{});
    uint64_t term = run_until_leader(c);
    ASSERT_GT(term, 0u);
    for (int r = 0; r < 30; ++r) c.round(false, 1.0);
    ReplicaId old = *c.leader();
    ReplicaId target = (old + 2) % 5;
    c.apply(old, c.nodes[old].engine->transfer_leadership(target));
    int rounds = 0;
    while (!(c.leader() && *c.leader() == target) && rounds < 50) {
        c.round(false, 0.0);
        ++rounds;
    }
    ASSERT_TRUE(c.leader().has_value());
    EXPECT_EQ(*c.leader(), target);
    EXPECT_LT(rounds, 6) << "a hand-over should take a few round trips, not an election timeout";
    EXPECT_EQ(c.nodes[target].engine->status().view, term + 1);
    ASSERT_TRUE(converge(c));
    c.check_log_matching();
    EXPECT_FALSE(c.failed);
}

// Figure 8 with real engines, scripted: S1 (leader, term a) stores X at index i with S2 only;
// S5 leads term b > a and stores Y at i alone; S1 (or S2) leads term c > b, appends its no-op Z
// at i+1 and gets X onto S3 but Z onto nobody (its appends carrying Z are lost). X is now on a
// majority but of an old term: it must not commit. Then S5, whose last term b beats theirs,
// is elected by S2, S3, S4 and overwrites i with Y. Had the term-c leader committed X by
// counting, it would have executed X at i while the others execute Y: State Machine Safety.
TEST(RaftSafety, Figure8ScheduleWithRealEngines) {
    Cluster c(5, 8, Faults{}, +[](Config& cfg) {
        cfg.pre_vote = false;
        cfg.check_quorum = false;
        cfg.max_entries_per_append = 1;
    });
    auto isolate_all_but = [&](std::set<ReplicaId> group) {
        c.cut_off.clear();
        c.cut_links.clear();
        for (ReplicaId x = 0; x < 5; ++x)
            if (!group.count(x)) c.cut_off.insert(x);
    };
    auto rounds_until = [&](auto pred, int max) {
        for (int r = 0; r < max; ++r) {
            if (pred()) return true;
            c.round(false, 0.0);
        }
        return pred();
    };
    ASSERT_GT(run_until_leader(c), 0u);
    ASSERT_TRUE(converge(c));
    const ReplicaId s1 = *c.leader();
    const ReplicaId s2 = (s1 + 1) % 5, s3 = (s1 + 2) % 5, s4 = (s1 + 3) % 5, s5 = (s1 + 4) % 5;
    const uint64_t i = c.nodes[s1].executed.size() + 1;

    // S1 stores X at i with S2 only, then S1 crashes.
    isolate_all_but({s1, s2});
    c.submit(s1, "X");
    ASSERT_TRUE(rounds_until([&] { return c.log_of(s2).size() >= i && c.log_of(s2).back().index >= i; }, 20));
    c.crash(s1, false);

    // S5 is elected by S3, S4 (S2 cut off) and stores its no-op Y at i alone.
    isolate_all_but({s3, s4, s5});
    c.drop_if = [&](ReplicaId, ReplicaId, const crypto::Envelope& env) {
        return env.type == crypto::MessageType::kRaftAppend;
    };
    ASSERT_TRUE(rounds_until([&] { return c.leader().has_value(); }, 200));
    // Any of S3, S4, S5 could win; the script needs S5.
    ASSERT_EQ(*c.leader(), s5) << "the script needs S5 elected here: if the engine's timing changed, pick another seed";
    ASSERT_TRUE(c.at(c.log_of(s5), i) != nullptr);
    c.crash(s5, false);

    // S1 restarts; S1 or S2 leads a later term; its appends carrying its own term's entries
    // are lost, the older ones get through: X reaches S3.
    c.drop_if = nullptr;
    c.start(s1);
    isolate_all_but({s1, s2, s3, s4});
    std::optional<ReplicaId> l;
    ASSERT_TRUE(rounds_until([&] {
        l = c.leader();
        return l.has_value();
    }, 200));
    ASSERT_TRUE(*l == s1 || *l == s2);  // only their logs (X, term a) are up to date enough
    const uint64_t term_c = c.nodes[*l].engine->status().view;
    // Lost: every append that would make a replica store an entry of term c or later (those
    // it would refuse get through, so the leader still backs up to X).
    c.drop_if = [&](ReplicaId, ReplicaId to, const crypto::Envelope& env) {
        if (env.type != crypto::MessageType::kRaftAppend) return false;
        pb::Append a;
        a.ParseFromString(env.body);
        bool new_term = false;
        for (const auto& e : a.entries()) new_term = new_term || e.term() >= term_c;
        const std::vector<LogEntry> log = c.log_of(to);  // (at() points into it: keep it alive)
        const LogEntry* prev = c.at(log, a.prev_index());
        return new_term && prev && prev->term == a.prev_term();
    };
    ASSERT_TRUE(rounds_until([&] {
        const std::vector<LogEntry> log = c.log_of(s3);
        const LogEntry* e = c.at(log, i);
        return e && e->requests == std::vector<std::string>{"X"};
    }, 100));
    for (int r = 0; r < 5; ++r) c.round(false, 0.0);
    ASSERT_EQ(c.leader(), std::optional<ReplicaId>(*l));
    EXPECT_EQ(c.committed.count(i), 0u) << "X (an old term's entry) was committed by counting replicas";
    // The term-c leader crashes; S5 returns and is elected by S2, S3, S4 (they cannot elect
    // each other without S5: cut pairwise), and overwrites i with Y.
    c.crash(*l, false);
    c.drop_if = nullptr;
    c.start(s5);
    c.cut_off.clear();
    c.cut_links.clear();
    std::vector<ReplicaId> voters;
    for (ReplicaId x : {s1, s2, s3, s4})
        if (x != *l) voters.push_back(x);
    for (ReplicaId a : voters)
        for (ReplicaId b : voters)
            if (a < b) c.cut_links.insert({a, b});
    ASSERT_TRUE(rounds_until([&] { return c.leader() == std::optional<ReplicaId>(s5); }, 300));
    for (int r = 0; r < 40; ++r) c.round(false, 0.0);
    ASSERT_EQ(c.committed.count(i), 1u);
    EXPECT_TRUE(c.committed.at(i).requests.empty()) << "S5's no-op Y is what index i holds";
    EXPECT_FALSE(c.failed);
}

// Restart: every replica loses power at once (only fsynced writes survive) and restarts;
// nothing committed is lost or changed, and the cluster goes on.
TEST(RaftRestart, PowerLossOfEveryReplicaKeepsCommittedEntries) {
    Cluster c(3, 3, Faults{});
    ASSERT_GT(run_until_leader(c), 0u);
    for (int r = 0; r < 100; ++r) c.round(false, 1.0);
    ASSERT_TRUE(converge(c));
    size_t before = c.committed.size();
    ASSERT_GT(before, 10u);
    for (ReplicaId i = 0; i < 3; ++i) c.crash(i, true);
    // The ledger keeps what it executed; the engines reload term, vote and log.
    c.heal();
    ASSERT_TRUE(converge(c));
    for (int r = 0; r < 50; ++r) c.round(false, 1.0);
    ASSERT_TRUE(converge(c));
    EXPECT_GT(c.committed.size(), before);
    c.check_log_matching();
    EXPECT_FALSE(c.failed);
}

// `tallyd --recover` under Raft: random schedules in which replicas also lose their whole
// consensus store (term, vote and log; the ledger stays) and rejoin. Returns the first broken
// property ("" if none) and whether the cluster made progress once healed.
struct StoreLossRun {
    std::string failure;
    bool progress = false;
    uint64_t store_losses = 0;
    uint64_t still_recovering = 0;  // replicas recovering at the end (should be none)
};
StoreLossRun run_store_loss_schedule(uint64_t seed, uint32_t n, bool recovery_rule) {
    Faults f = random_faults();
    f.store_loss = 0.01;
    Cluster c(n, seed, f);
    c.report = false;
    c.recovery_rule = recovery_rule;
    for (int r = 0; r < 300 && !c.failed; ++r) {
        c.round(true);
        if (r % 10 == 0) c.check_log_matching();
    }
    StoreLossRun run;
    if (!c.failed) {
        c.heal();
        run.progress = converge(c);
        // Recovery ends within a few election timeouts of healing (the peers' terms are asked
        // for again each timeout; a leader's entry of a high enough term arrives with a probe).
        for (int r = 0; r < 200 && c.any_recovering(); ++r) c.round(false, 0.5);
        c.check_log_matching();
    }
    run.failure = c.first_failure;
    run.store_losses = c.store_losses;
    for (const auto& node : c.nodes) run.still_recovering += node.recovering ? 1 : 0;
    return run;
}

// With the recovery rule (Config::recovering) a replica that lost its store neither votes nor
// campaigns until it knows every peer's term and holds a leader's entry of that term: no
// property breaks on any seed, and every such replica ends its recovery once healed.
TEST(RaftRecovery, AReplicaThatLostItsStoreRejoinsWithoutBreakingAnyProperty) {
    uint64_t losses = 0;
    // TALLY_RAFT_SEEDS=N runs more (a deeper search than CI's).
    const uint64_t seeds = std::getenv("TALLY_RAFT_SEEDS") ? std::strtoull(std::getenv("TALLY_RAFT_SEEDS"), nullptr, 10) : 40;
    for (uint64_t seed = 1; seed <= seeds; ++seed) {
        StoreLossRun run = run_store_loss_schedule(seed, seed % 2 ? 3 : 5, true);
        EXPECT_EQ(run.failure, "") << "seed " << seed;
        EXPECT_TRUE(run.progress) << "seed " << seed << ": no progress after healing";
        EXPECT_EQ(run.still_recovering, 0u) << "seed " << seed;
        losses += run.store_losses;
        if (::testing::Test::HasFailure()) break;
    }
    EXPECT_GT(losses, seeds);  // the schedules did lose stores
}

// The rule is what keeps Raft safe here: the same schedules with a replica rejoining as if its
// empty store were new (it votes again in terms it already voted in, and for logs that lack
// entries it had acknowledged) break a property of the paper on some seed.
TEST(RaftRecovery, WithoutTheRecoveryRuleALostStoreBreaksRaftOnSomeSeed) {
    std::string broken;
    uint64_t seed = 1;
    for (; seed <= 200 && broken.empty(); ++seed) broken = run_store_loss_schedule(seed, seed % 2 ? 3 : 5, false).failure;
    ASSERT_NE(broken, "") << "no seed of 200 broke a property without the rule";
    std::printf("seed %lu without the recovery rule: %s\n", static_cast<unsigned long>(seed - 1), broken.c_str());
}

// `scripts/simulate --raft`: the random schedules above, both kinds (every fault but lost
// stores; and with lost stores, rejoining under the recovery rule), seed after seed from
// TALLY_RAFT_SEED0 until TALLY_RAFT_SECONDS have passed; skipped without them. Prints one line
// per failing seed, with what broke, and a last line "searched N schedules from S: F failed".
// A failing seed replays exactly: TALLY_RAFT_SEED0=S TALLY_RAFT_SECONDS=1 runs it first.
TEST(RaftSearch, RandomSchedules) {
    const char* seconds = std::getenv("TALLY_RAFT_SECONDS");
    if (seconds == nullptr) GTEST_SKIP() << "scripts/simulate --raft runs this (TALLY_RAFT_SECONDS)";
    const uint64_t seed0 = std::getenv("TALLY_RAFT_SEED0") ? std::strtoull(std::getenv("TALLY_RAFT_SEED0"), nullptr, 10) : 1;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(std::strtoull(seconds, nullptr, 10));
    uint64_t runs = 0, failed = 0;
    for (uint64_t seed = seed0; runs == 0 || std::chrono::steady_clock::now() < until; ++seed, ++runs) {
        const uint32_t n = seed % 2 ? 3 : 5;
        std::string failure;
        if (seed % 3 == 0) {
            StoreLossRun run = run_store_loss_schedule(seed, n, true);
            failure = !run.failure.empty() ? run.failure
                      : !run.progress      ? "no progress after healing"
                      : run.still_recovering > 0 ? "a replica still recovering after healing"
                                                 : "";
        } else {
            Totals totals;
            const bool before = ::testing::Test::HasFailure();
            run_random_schedule(seed, n, 300, totals);
            if (!before && ::testing::Test::HasFailure()) failure = "a property broke (see above)";
        }
        if (!failure.empty()) {
            ++failed;
            std::printf("failed seed %lu (%s): %s\n", static_cast<unsigned long>(seed),
                        seed % 3 == 0 ? "lost stores" : "faults", failure.c_str());
            if (seed % 3 == 0) ADD_FAILURE() << "seed " << seed << ": " << failure;
        }
    }
    std::printf("searched %lu schedules from %lu: %lu failed\n", static_cast<unsigned long>(runs),
                static_cast<unsigned long>(seed0), static_cast<unsigned long>(failed));
}

}  // namespace
}  // namespace tally::bft::raft::testing

namespace tally::bft::raft::testing {
namespace {

// Not a test: how many requests per second three engines order and execute together in one
// thread (signing every message, no network, no disk), with 64 requests offered per round.
// Run by hand: test_bft --gtest_also_run_disabled_tests --gtest_filter=RaftBench.*
TEST(RaftBench, DISABLED_EngineThroughput) {
    Cluster c(3, 1, Faults{}, +[](Config& cfg) {
        cfg.batch_size_max = 256;
        cfg.max_entries_per_append = 16;
        cfg.pipeline_depth = 4;
        cfg.snapshot_interval = 0;
    });
    c.checks = false;
    ASSERT_GT(run_until_leader(c), 0u);
    std::string payload(200, 'x');
    uint64_t k = 0;
    auto start = std::chrono::steady_clock::now();
    size_t executed_before = 0;
    for (const auto& e : c.nodes[0].executed) executed_before += e.requests.size();
    for (int r = 0; r < 2000; ++r) {
        auto l = c.leader();
        for (int i = 0; i < 64 && l; ++i) c.submit(*l, payload + std::to_string(++k));
        c.round(false, 0.0);
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    size_t executed = 0;
    for (const auto& e : c.nodes[0].executed) executed += e.requests.size();
    std::printf("%zu requests executed by each of 3 engines in %.2f s: %.0f/s (%zu entries)\n",
                executed - executed_before, secs, static_cast<double>(executed - executed_before) / secs,
                c.nodes[0].executed.size());
    EXPECT_FALSE(c.failed);
}

}  // namespace
}  // namespace tally::bft::raft::testing
