// Lease reads (thesis 6.4.1; Config::lease_reads): a leader a majority answered within the
// last election timeout, less a drift margin, answers a read from its commit index with no
// heartbeat round; a follower refuses votes for an election timeout after it heard from a
// leader, so no other leader is elected while the lease holds. Ticks are the only time.
#include <gtest/gtest.h>

#include "tests/unit/bft/raft_harness.h"

namespace tally::bft::raft::testing {
namespace {

using crypto::MessageType;

constexpr uint64_t kTimeout = 10;  // base_config's election_timeout_ticks
constexpr uint64_t kMargin = 1;    // max(10 / 8, 1)

Config with_lease(Config c) {
    c.lease_reads = true;
    return c;
}

// A follower's answer echoing round `ctx` (an append it received carried it).
Output ack(Direct& d, ReplicaId from, uint64_t match, uint64_t ctx) {
    pb::AppendReply r;
    r.set_term(d.term());
    r.set_success(true);
    r.set_match_index(match);
    r.set_read_ctx(ctx);
    return d.deliver(crypto::seal(d.keys[from], MessageType::kRaftAppendReply, r.SerializeAsString()), from);
}

// The newest round an output's appends carry (0: none).
uint64_t round_of(const Output& out) {
    uint64_t ctx = 0;
    for (auto& [to, a] : sent<pb::Append>(out, MessageType::kRaftAppend)) ctx = std::max(ctx, a.read_ctx());
    return ctx;
}

// A leader (replica 0 of 3) whose no-op committed, follower 1 having answered its first round.
struct LeaseLeader {
    Direct d{3, 0};
    explicit LeaseLeader(bool lease_reads = true) {
        d.config.lease_reads = lease_reads;
        d.restart();
        uint64_t ctx = round_of(d.elect());
        ack(d, 1, 1, ctx);
        EXPECT_EQ(d.executed, 1u) << "the no-op committed";
    }
    // The read's answer, if read_index gave it at once; `out` gets what the read sent.
    std::optional<ReadResult> read(uint64_t id, Output* out = nullptr) {
        Output o = d.apply(d.engine->read_index(id));
        if (out) *out = o;
        auto reads = d.engine->take_reads();
        if (reads.empty()) return std::nullopt;
        EXPECT_EQ(reads.size(), 1u);
        return reads[0];
    }
};

TEST(RaftLease, ALeaseReadIsAnsweredAtOnceWithoutAHeartbeatRound) {
    LeaseLeader l;
    Output out;
    auto r = l.read(1, &out);
    ASSERT_TRUE(r.has_value()) << "a leader holding a lease answers at once";
    EXPECT_TRUE(r->ok);
    EXPECT_EQ(r->index, 1u);
    EXPECT_TRUE(sent<pb::Append>(out, MessageType::kRaftAppend).empty()) << "no heartbeat round";
}

// Before an entry of its term commits, a leader's commit index may lag what earlier leaders
// committed: a lease does not make such a read safe.
TEST(RaftLease, ALeaseReadWaitsForAnEntryOfTheLeadersTerm) {
    Direct d(3, 0);
    d.config = with_lease(d.config);
    d.restart();
    uint64_t ctx = round_of(d.elect());
    ack(d, 1, 0, ctx);  // answers the round, does not hold the no-op yet: lease, no commit
    d.apply(d.engine->read_index(1));
    EXPECT_TRUE(d.engine->take_reads().empty());
    ack(d, 1, 1, ctx);  // the no-op commits: the waiting read takes a round
    EXPECT_TRUE(d.engine->take_reads().empty());
}

// The lease lasts election_timeout - margin ticks from the round a majority answered; after,
// a read takes ReadIndex's round, and an answer to that round renews the lease.
TEST(RaftLease, AfterTheLeaseExpiresAReadWaitsForARound) {
    LeaseLeader l;
    l.d.tick(static_cast<int>(kTimeout - kMargin - 1));  // heartbeats go out; nobody answers
    auto r = l.read(1);
    ASSERT_TRUE(r.has_value() && r->ok) << "the last tick of the lease";
    l.d.tick();
    Output out;
    EXPECT_FALSE(l.read(2, &out).has_value()) << "the lease is over: the read waits for a round";
    uint64_t ctx = round_of(out);
    ASSERT_GT(ctx, 0u) << "ReadIndex's round went out";
    ack(l.d, 2, 1, ctx);
    auto reads = l.d.engine->take_reads();
    ASSERT_EQ(reads.size(), 1u);
    EXPECT_TRUE(reads[0].ok);
    EXPECT_EQ(reads[0].read_id, 2u);
    r = l.read(3, &out);
    ASSERT_TRUE(r.has_value() && r->ok) << "the round's answer renewed the lease";
    EXPECT_TRUE(sent<pb::Append>(out, MessageType::kRaftAppend).empty());
}

// Heartbeats renew the lease: answered each time, it never lapses.
TEST(RaftLease, AnsweredHeartbeatsKeepTheLease) {
    LeaseLeader l;
    for (int i = 0; i < 5 * static_cast<int>(kTimeout); ++i) {
        Output out = l.d.tick();
        if (uint64_t ctx = round_of(out)) ack(l.d, 1, 1, ctx);
        auto r = l.read(100 + static_cast<uint64_t>(i));
        ASSERT_TRUE(r.has_value() && r->ok) << "tick " << i;
    }
}

// A leader transfer lets the target win votes at once (TimeoutNow): from then on, for the
// rest of the term, reads take a round, even once the transfer is abandoned.
TEST(RaftLease, NoLeaseReadDuringOrAfterALeaderTransfer) {
    LeaseLeader l;
    ASSERT_TRUE(l.read(1).has_value());
    l.d.apply(l.d.engine->transfer_leadership(2));
    Output out;
    EXPECT_FALSE(l.read(2, &out).has_value()) << "a lease read during a transfer";
    ack(l.d, 1, 1, round_of(out));
    auto reads = l.d.engine->take_reads();
    ASSERT_EQ(reads.size(), 1u);
    EXPECT_TRUE(reads[0].ok) << "ReadIndex still serves";
    // The transfer is abandoned after an election timeout (replica 2 never answered); the
    // majority keeps answering, but a TimeoutNow may still be in flight: no lease.
    for (uint64_t i = 0; i <= kTimeout; ++i)
        if (uint64_t ctx = round_of(l.d.tick())) ack(l.d, 1, 1, ctx);
    ASSERT_EQ(l.d.role(), "leader");
    ASSERT_TRUE(l.d.engine->takes_client_requests()) << "the transfer was abandoned";
    EXPECT_FALSE(l.read(3).has_value()) << "a lease read after a transfer";
}

// With lease reads off (the default), every read takes a heartbeat round, however recently
// a majority answered.
TEST(RaftLease, LeaseReadsOffEveryReadTakesARound) {
    LeaseLeader l(false);
    for (uint64_t id = 1; id <= 3; ++id) {
        Output out;
        EXPECT_FALSE(l.read(id, &out).has_value());
        uint64_t ctx = round_of(out);
        ASSERT_GT(ctx, 0u) << "a round per read";
        ack(l.d, 1, 1, ctx);
        auto reads = l.d.engine->take_reads();
        ASSERT_EQ(reads.size(), 1u);
        EXPECT_TRUE(reads[0].ok);
    }
}

bool granted(const Output& out) {
    auto r = sent<pb::VoteReply>(out, MessageType::kRaftVoteReply);
    return r.size() == 1 && r[0].second.granted();
}

// The follower's half (thesis 4.2.3): for an election timeout after it heard from a leader,
// and after it starts (it may have answered one just before), a replica grants no vote nor
// pre-vote, whatever term it has been moved to meanwhile (here by a stale answer of a higher
// term, which forgets the leader). Check-quorum is off: this is the lease's own rule.
TEST(RaftLease, AFollowerRefusesVotesWhileItsLeaderIsFresh) {
    Direct d(3, 0);
    d.config = with_lease(d.config);
    d.config.check_quorum = false;
    d.restart();
    EXPECT_FALSE(granted(d.vote(2, 1, 0, 0))) << "just started";
    EXPECT_FALSE(granted(d.vote(2, 1, 0, 0, true))) << "just started (pre-vote)";
    d.tick(static_cast<int>(kTimeout));
    d.append(1, 1, 0, 0, 0);  // replica 1 leads term 1
    d.tick(static_cast<int>(kTimeout - 1));
    d.append_reply(2, 2, false, 0);  // an old answer of term 2 moves us to term 2, no leader
    ASSERT_EQ(d.term(), 2u);
    EXPECT_FALSE(granted(d.vote(2, 2, 0, 0))) << "heard from the leader 9 ticks ago";
    EXPECT_FALSE(granted(d.vote(2, 3, 0, 0, true)));
    d.tick();
    EXPECT_TRUE(granted(d.vote(2, 2, 0, 0))) << "an election timeout since";

    // Without lease reads (and check-quorum off) the same vote is granted at once.
    Direct off(3, 0);
    off.config.check_quorum = false;
    off.restart();
    off.append(1, 1, 0, 0, 0);
    off.append_reply(2, 2, false, 0);
    EXPECT_TRUE(granted(off.vote(2, 2, 0, 0)));
}

// A leader cut off from the majority stops serving lease reads before any other replica can
// be elected: without check-quorum (it never steps down) and without pre-vote (the others
// campaign as early as they may). Every read answered is checked against what had committed
// anywhere when it was asked (the harness's linearizability check).
TEST(RaftLease, ALeaderCutOffStopsServingLeaseReadsBeforeAnotherIsElected) {
    for (uint64_t seed : {3u, 7u, 11u}) {
        Cluster c(5, seed, Faults{}, +[](Config& cfg) {
            cfg.lease_reads = true;
            cfg.check_quorum = false;
            cfg.pre_vote = false;
        });
        std::optional<ReplicaId> old;
        for (int r = 0; r < 300 && !old; ++r) {
            c.round(false, 0.0);
            old = c.leader();
        }
        ASSERT_TRUE(old.has_value());
        c.submit(*old, "w");
        for (int r = 0; r < 10; ++r) c.round(false, 0.0);
        c.cut_off.insert(*old);
        int last_read = -1, elected = -1;
        for (int r = 0; r < 300 && elected < 0; ++r) {
            uint64_t before = c.reads_ok;
            c.read(*old);
            if (c.reads_ok > before) last_read = r;  // answered at once: a lease read
            c.round(false, 0.0);
            for (ReplicaId i = 0; i < c.n; ++i)
                if (i != *old && c.nodes[i].engine->status().role == "leader") elected = r;
        }
        ASSERT_GE(last_read, 0) << "seed " << seed << ": the lease served no read after the cut";
        ASSERT_GE(elected, 0) << "seed " << seed;
        EXPECT_LT(last_read, elected) << "seed " << seed;
        EXPECT_EQ(c.nodes[*old].engine->status().role, "leader") << "it still thinks it leads";
        // The new leader commits; the old one, still cut off, answers nothing.
        ReplicaId next = *old;
        for (ReplicaId i = 0; i < c.n; ++i)
            if (i != *old && c.nodes[i].engine->status().role == "leader") next = i;
        c.submit(next, "after");
        for (int r = 0; r < 20; ++r) c.round(false, 0.0);
        uint64_t before = c.reads_ok;
        for (int r = 0; r < 20; ++r) {
            c.read(*old);
            c.round(false, 0.0);
        }
        EXPECT_EQ(c.reads_ok, before) << "seed " << seed << ": the deposed leader answered a read";
        EXPECT_FALSE(c.failed);
    }
}

}  // namespace
}  // namespace tally::bft::raft::testing
