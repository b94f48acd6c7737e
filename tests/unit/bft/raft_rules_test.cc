// Raft's rules, one engine at a time, fed by hand (tests/unit/bft/raft_harness.h: Direct).
// Named after the paper's properties (Figure 3) and the thesis's additions.
#include <gtest/gtest.h>

#include "bft/raft/block_record.h"
#include "bft/recent_clients.h"
#include "tests/unit/bft/raft_harness.h"

namespace tally::bft::raft::testing {
namespace {

using crypto::MessageType;

bool has_put(const Output& out, const std::string& key) {
    for (const auto& op : out.persist)
        if (auto* p = std::get_if<PersistPut>(&op); p && p->key == key) return true;
    return false;
}

// Election Safety: one vote per term, durable before the reply leaves; a restart keeps it.
TEST(RaftRules, ElectionSafetyOneVotePerTermSurvivesRestart) {
    Direct d(3, 0);
    Output out = d.vote(1, 5, 0, 0);
    auto replies = sent<pb::VoteReply>(out, MessageType::kRaftVoteReply);
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_TRUE(replies[0].second.granted());
    EXPECT_EQ(replies[0].second.term(), 5u);
    EXPECT_TRUE(out.sync) << "a vote must be fsynced before it leaves";
    EXPECT_TRUE(has_put(out, "h"));

    // Another candidate, same term: refused.
    out = d.vote(2, 5, 0, 0);
    replies = sent<pb::VoteReply>(out, MessageType::kRaftVoteReply);
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_FALSE(replies[0].second.granted());

    // After a restart, still refused (the vote was durable), and the term is kept.
    d.restart();
    EXPECT_EQ(d.term(), 5u);
    out = d.vote(2, 5, 0, 0);
    replies = sent<pb::VoteReply>(out, MessageType::kRaftVoteReply);
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_FALSE(replies[0].second.granted());
    // The same candidate asking again gets the same answer (its reply may have been lost).
    out = d.vote(1, 5, 0, 0);
    replies = sent<pb::VoteReply>(out, MessageType::kRaftVoteReply);
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_TRUE(replies[0].second.granted());
}

// Only the leader orders client requests (5.1): a follower keeps nothing of one and redirects
// its client to the leader it heard from in this term; before it has heard from any, to nobody
// (the client asks again). The leader takes it, and the status names who leads.
TEST(RaftRules, AFollowerRedirectsAClientToTheLeaderItBelievesIn) {
    Direct d(3, 0);
    EXPECT_FALSE(d.engine->takes_client_requests());
    Output out = d.request("early");
    ASSERT_EQ(out.redirects.size(), 1u);
    EXPECT_FALSE(out.redirects[0].leader.has_value());
    EXPECT_TRUE(out.persist.empty());
    EXPECT_TRUE(out.send.empty());

    d.append(2, 3, 0, 0, 0);  // replica 2 leads term 3
    ASSERT_EQ(d.engine->status().leader, std::optional<ReplicaId>(2));
    out = d.request("tx");
    ASSERT_EQ(out.redirects.size(), 1u);
    EXPECT_EQ(out.redirects[0].payload, "tx");
    EXPECT_EQ(out.redirects[0].leader, std::optional<ReplicaId>(2));
    EXPECT_EQ(out.redirects[0].view, 3u);
    EXPECT_TRUE(out.persist.empty()) << "a follower stores nothing of a client's request";
    EXPECT_TRUE(out.send.empty());

    Direct leader(3, 1);
    leader.elect();
    EXPECT_TRUE(leader.engine->takes_client_requests());
    out = leader.request("tx");
    EXPECT_TRUE(out.redirects.empty());
    EXPECT_EQ(leader.engine->status().leader, std::optional<ReplicaId>(1));
    EXPECT_EQ(leader.engine->status().last_log_index, 2u);  // the term's no-op, then "tx"
}

// A candidate needs a majority: with 5 replicas, two grants (itself and one) are not enough.
TEST(RaftRules, ElectionSafetyLeaderNeedsMajority) {
    Direct d(5, 0);
    d.config.pre_vote = false;
    d.restart();
    while (d.role() == "follower") d.tick();
    ASSERT_EQ(d.role(), "candidate");
    uint64_t t = d.term();
    d.vote_reply(1, t, true);
    EXPECT_EQ(d.role(), "candidate");
    d.vote_reply(1, t, true);  // a duplicate counts once
    EXPECT_EQ(d.role(), "candidate");
    d.vote_reply(2, t, true);
    EXPECT_EQ(d.role(), "leader");
}

// Leader Completeness rests on the election restriction (5.4.1): no vote for a candidate whose
// log is less up-to-date, by last term first, then length.
TEST(RaftRules, LeaderCompletenessNoVoteForStaleLog) {
    Direct d(3, 0);
    d.append(1, 2, 0, 0, 0, {{1, {"a"}}, {2, {"b"}}});
    ASSERT_EQ(d.durable().log.size(), 2u);
    d.tick(static_cast<int>(d.config.election_timeout_ticks));  // leader 1 is silent: votes count again
    auto granted = [&](ReplicaId from, uint64_t term, uint64_t idx, uint64_t lterm) {
        auto r = sent<pb::VoteReply>(d.vote(from, term, idx, lterm), MessageType::kRaftVoteReply);
        return r.size() == 1 && r[0].second.granted();
    };
    EXPECT_FALSE(granted(2, 3, 5, 1)) << "longer log, older last term";
    EXPECT_FALSE(granted(2, 4, 1, 2)) << "same last term, shorter";
    EXPECT_TRUE(granted(2, 5, 2, 2)) << "same last term, same length";
}

// Log Matching: an append is accepted only where (prev_index, prev_term) matches; a
// conflicting suffix is truncated, durably, and replaced.
TEST(RaftRules, LogMatchingConsistencyCheckAndTruncation) {
    Direct d(3, 0);
    d.append(1, 2, 0, 0, 0, {{1, {"a"}}, {2, {"b"}}, {2, {"c"}}});
    // prev (3, 3) does not match: refused, with a hint (our last index whose term <= 3).
    auto r = sent<pb::AppendReply>(d.append(2, 3, 3, 3, 0), MessageType::kRaftAppendReply);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_FALSE(r[0].second.success());
    EXPECT_EQ(r[0].second.reject_index(), 3u);
    EXPECT_EQ(r[0].second.hint_index(), 3u);
    EXPECT_EQ(r[0].second.hint_term(), 2u);
    // The leader of term 3 had (1,a) then (3,x): entries 2 and 3 go, durably.
    Output out = d.append(2, 3, 1, 1, 0, {{3, {"x"}}});
    EXPECT_TRUE(out.sync) << "an acknowledgement leaves after its entries are fsynced";
    r = sent<pb::AppendReply>(out, MessageType::kRaftAppendReply);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_TRUE(r[0].second.success());
    EXPECT_EQ(r[0].second.match_index(), 2u);
    auto log = d.durable().log;
    ASSERT_EQ(log.size(), 2u);
    EXPECT_EQ(log[1].term, 3u);
    EXPECT_EQ(log[1].requests, std::vector<std::string>{"x"});
    // A stale, reordered append of the old entries from term 3's leader with prev (1,1) and
    // an entry that matches changes nothing beyond what matches.
    d.append(2, 3, 1, 1, 0, {{3, {"x"}}});
    EXPECT_EQ(d.durable().log.size(), 2u);
}

// Fast back-tracking: the hint lets a leader skip a whole conflicting term per round trip.
TEST(RaftRules, FastBacktrackingSkipsConflictingTerm) {
    Direct d(3, 0);
    // Our log: terms 1,1,1,1 (a leader of term 1 wrote it); then we lead term 2 and append
    // our no-op at index 5.
    d.append(1, 1, 0, 0, 0, {{1, {"a"}}, {1, {"b"}}, {1, {"c"}}, {1, {"d"}}});
    Output out = d.elect();
    ASSERT_EQ(d.role(), "leader");
    uint64_t t = d.term();
    // Follower 1's log diverged from ours after index 1: it refuses the probe at prev 4 with
    // hint (1, 1), its largest index <= 4 whose term <= 1, and the leader's next probe goes
    // straight to prev 1 instead of stepping back one entry per round trip.
    auto appends = sent<pb::Append>(out, MessageType::kRaftAppend);
    ASSERT_FALSE(appends.empty());
    uint64_t prev = 0;
    for (auto& [to, a] : appends)
        if (to == 1) prev = a.prev_index();
    EXPECT_EQ(prev, 4u);
    out = d.append_reply(1, t, false, 0, /*reject*/ 4, /*hint index*/ 1, /*hint term*/ 1);
    appends = sent<pb::Append>(out, MessageType::kRaftAppend);
    ASSERT_EQ(appends.size(), 1u);
    EXPECT_EQ(appends[0].first, 1u);
    EXPECT_EQ(appends[0].second.prev_index(), 1u);
    EXPECT_EQ(appends[0].second.entries_size(), 4);  // b, c, d, no-op
    // A stale refusal (for a probe no longer out) is ignored.
    out = d.append_reply(1, t, false, 0, 4, 1, 1);
    EXPECT_TRUE(sent<pb::Append>(out, MessageType::kRaftAppend).empty());
}

// Figure 8: a leader must not commit an entry of an earlier term by counting replicas; it
// commits with the first entry of its own term.
TEST(RaftRules, Figure8OldTermEntryNotCommittedByCount) {
    Direct d(5, 0);
    // S1 (us) was leader of term 2 and wrote index 2 (term 2) to itself; index 1 is term 1.
    d.append(1, 1, 0, 0, 0, {{1, {"a"}}});
    d.append(2, 2, 1, 1, 1, {{2, {"b"}}});
    ASSERT_EQ(d.executed, 1u);
    // We are elected in a later term t (S2's term-2 leadership is over).
    d.elect();
    ASSERT_EQ(d.role(), "leader");
    uint64_t t = d.term();
    ASSERT_GT(t, 2u);
    // Our no-op of term t is index 3. S2, S3 now hold index 2 (term 2): a majority of five
    // (us, S2, S3) stores it, yet it is of an earlier term: no commit.
    Output out = d.append_reply(1, t, true, 2);
    out.append(d.append_reply(2, t, true, 2));
    EXPECT_TRUE(out.commit.empty()) << "index 2 (term 2) committed by counting replicas";
    EXPECT_EQ(d.executed, 1u);
    // Once a majority stores the no-op of term t, index 2 and 3 commit together, in order.
    out = d.append_reply(1, t, true, 3);
    EXPECT_TRUE(out.commit.empty());
    out = d.append_reply(2, t, true, 3);
    ASSERT_EQ(out.commit.size(), 2u);
    EXPECT_EQ(out.commit[0].seq, 2u);
    EXPECT_EQ(out.commit[0].view, 2u);
    EXPECT_EQ(out.commit[1].seq, 3u);
    EXPECT_TRUE(out.commit[1].requests.empty());
}

// Leader Append-Only: a leader never overwrites or truncates its own log, whatever a
// follower replies.
TEST(RaftRules, LeaderAppendOnly) {
    Direct d(3, 0);
    d.elect();
    uint64_t t = d.term();
    d.request("r1");
    d.request("r2");
    auto before = d.durable().log;
    ASSERT_GE(before.size(), 2u);
    // Appends at the same term from another replica (only a broken peer sends them).
    d.append(1, t, 0, 0, 0, {{t, {"evil"}}});
    d.append_reply(1, t, false, 0, 1, 0, 0);
    auto after = d.durable().log;
    ASSERT_GE(after.size(), before.size());
    for (size_t i = 0; i < before.size(); ++i) {
        EXPECT_EQ(after[i].term, before[i].term);
        EXPECT_EQ(after[i].requests, before[i].requests);
    }
    EXPECT_EQ(d.role(), "leader");
}

// Batching and the pipeline: requests beyond pipeline_depth uncommitted entries wait and
// leave in fuller entries; a retry of a queued request is not ordered twice.
TEST(RaftRules, BatchingAndPipelineDepth) {
    Direct d(3, 0);
    d.config.pipeline_depth = 2;
    d.config.batch_size_max = 3;
    d.restart();
    d.elect();  // index 1: the no-op (uncommitted)
    uint64_t t = d.term();
    for (int i = 0; i < 8; ++i) d.request("r" + std::to_string(i));
    d.request("r5");  // a retry
    auto log = d.durable().log;
    ASSERT_EQ(log.size(), 2u) << "no-op + one entry in flight (depth 2)";
    EXPECT_EQ(log[1].requests.size(), 1u);
    // Both commit: the queue (7 requests) goes out in entries of 3.
    Output out = d.append_reply(1, t, true, 2);
    EXPECT_EQ(out.commit.size(), 2u);
    log = d.durable().log;
    ASSERT_EQ(log.size(), 4u);
    EXPECT_EQ(log[2].requests.size(), 3u);
    EXPECT_EQ(log[3].requests.size(), 3u);
    out = d.append_reply(1, t, true, 4);
    log = d.durable().log;
    ASSERT_EQ(log.size(), 5u);
    EXPECT_EQ(log[4].requests, std::vector<std::string>{"r7"});
    size_t total = 0;
    for (const auto& e : log) total += e.requests.size();
    EXPECT_EQ(total, 8u) << "the retry of r5 was ordered twice";
}

// A retry that reaches the leader after its request committed but before the node executed
// it is still a retry: the node's reply cache cannot answer it yet (a nonce_too_high execution
// leaves nothing there), so the engine must not order it again. Once executed, the node
// answers retries itself.
TEST(RaftRules, ARetryBetweenCommitAndExecutionIsNotOrderedTwice) {
    Direct d(3, 0);
    d.elect();  // index 1: the no-op
    const uint64_t t = d.term();
    d.append_reply(1, t, true, 1);
    d.execute_at_once = false;
    d.request("r");
    Output out = d.append_reply(1, t, true, 2);
    ASSERT_EQ(out.commit.size(), 1u);
    EXPECT_EQ(out.commit[0].requests, std::vector<std::string>{"r"});
    d.request("r");  // the client's retransmission, before the node executed index 2
    d.execute_delivered();
    d.tick(3);
    const auto log = d.durable().log;
    ASSERT_EQ(log.size(), 2u) << "the retry of r was appended again";
    EXPECT_EQ(log[1].requests, std::vector<std::string>{"r"});
}

// Pipelining: in replicate state the leader keeps up to max_inflight appends out to a
// follower before any reply.
TEST(RaftRules, PipelinedAppendsUpToWindow) {
    Direct d(3, 0);
    d.config.max_inflight = 3;
    d.config.max_entries_per_append = 1;
    d.config.pipeline_depth = 10;
    d.config.batch_size_max = 1;
    d.restart();
    d.elect();
    uint64_t t = d.term();
    d.append_reply(1, t, true, 1);  // probe answered: follower 1 is replicating
    Output out;
    for (int i = 0; i < 6; ++i) out.append(d.request("r" + std::to_string(i)));
    size_t to1 = 0;
    for (auto& [to, a] : sent<pb::Append>(out, MessageType::kRaftAppend))
        if (to == 1 && a.entries_size() > 0) ++to1;
    EXPECT_EQ(to1, 3u) << "window of 3 appends in flight";
    size_t to2 = 0;
    for (auto& [to, a] : sent<pb::Append>(out, MessageType::kRaftAppend))
        if (to == 2) ++to2;
    EXPECT_EQ(to2, 0u) << "follower 2 still probing: one append out, no more";
}

// Restart keeps term, vote and log; what the ledger executed is not delivered again, the rest
// is once the leader says it is committed.
TEST(RaftRules, RestartKeepsTermVoteAndLog) {
    Direct d(3, 0);
    d.vote(1, 7, 0, 0);
    d.append(1, 7, 0, 0, 1, {{7, {"a"}}, {7, {"b"}}});
    ASSERT_EQ(d.executed, 1u);
    d.restart();
    EXPECT_EQ(d.term(), 7u);
    auto st = d.durable();
    EXPECT_EQ(st.term, 7u);
    ASSERT_TRUE(st.voted_for.has_value());
    EXPECT_EQ(*st.voted_for, 1u);
    ASSERT_EQ(st.log.size(), 2u);
    Output out = d.append(1, 7, 2, 7, 2);
    ASSERT_EQ(out.commit.size(), 1u);
    EXPECT_EQ(out.commit[0].seq, 2u);
    EXPECT_EQ(out.commit[0].requests, std::vector<std::string>{"b"});
}

// Pre-vote (9.6): a replica that cannot win does not raise its term; pre-votes change no term
// and are refused while the voter hears from a leader.
TEST(RaftRules, PreVoteChangesNoTerm) {
    Direct d(3, 0);
    d.tick(100);
    EXPECT_EQ(d.role(), "pre-candidate");
    EXPECT_EQ(d.term(), 0u) << "unanswered pre-votes must not raise the term";
    // A voter grants a pre-vote without moving to its term.
    Direct v(3, 1);
    auto r = sent<pb::VoteReply>(v.vote(0, 1, 0, 0, true), MessageType::kRaftVoteReply);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_TRUE(r[0].second.granted());
    EXPECT_EQ(v.term(), 0u);
    // With a live leader, it ignores pre-votes and votes of higher terms.
    v.append(2, 1, 0, 0, 0);
    EXPECT_TRUE(sent<pb::VoteReply>(v.vote(0, 2, 5, 5, true), MessageType::kRaftVoteReply).empty());
    EXPECT_TRUE(sent<pb::VoteReply>(v.vote(0, 2, 5, 5, false), MessageType::kRaftVoteReply).empty());
    EXPECT_EQ(v.term(), 1u);
}

// Check-quorum: a leader that hears from no majority for an election timeout steps down.
TEST(RaftRules, CheckQuorumLeaderStepsDown) {
    Direct d(3, 0);
    d.elect();
    uint64_t t = d.term();
    d.tick(static_cast<int>(d.config.election_timeout_ticks) - 1);
    d.append_reply(1, t, true, 1);  // one follower answered: with us, a majority
    d.tick(static_cast<int>(d.config.election_timeout_ticks));
    EXPECT_EQ(d.role(), "leader");
    // Nobody answers any more: within one more election timeout it steps down (in its term).
    int ticks = 0;
    while (d.role() == "leader" && ticks < 100) {
        d.tick();
        ++ticks;
    }
    EXPECT_LE(ticks, static_cast<int>(d.config.election_timeout_ticks));
    EXPECT_EQ(d.role(), "follower");
    EXPECT_EQ(d.term(), t);
}

// Cheap checks first: a wrong sender, an oversized or malformed message is dropped and
// reported, and changes nothing.
TEST(RaftRules, BadMessagesDroppedAndReported) {
    Direct d(3, 0);
    auto raw = crypto::seal(d.keys[1], MessageType::kRaftVote, "\xff\xff garbage");
    d.deliver(raw, 1);
    auto good = crypto::seal(d.keys[1], MessageType::kRaftAppend, "");
    d.deliver(good, 2);  // envelope from 1, claimed from 2
    d.deliver(good, 0);  // from itself
    auto det = d.engine->take_detected();
    ASSERT_EQ(det.size(), 3u);
    EXPECT_EQ(det[0].kind, Misbehaviour::kMalformed);
    EXPECT_EQ(det[1].kind, Misbehaviour::kBadSender);
    EXPECT_EQ(det[2].kind, Misbehaviour::kBadSender);
    // An entry bigger than a batch may be is refused before anything is stored.
    d.append(1, 1, 0, 0, 0, {{1, {"a", "b", "c", "d", "e"}}});
    EXPECT_TRUE(d.durable().log.empty());
    det = d.engine->take_detected();
    ASSERT_EQ(det.size(), 1u);
    EXPECT_EQ(det[0].kind, Misbehaviour::kBadEntry);
    EXPECT_EQ(d.term(), 0u) << "a refused append must not move the term";
}

// A follower holds at most max_uncommitted_entries beyond its commit index.
TEST(RaftRules, FollowerBoundsUncommittedEntries) {
    Direct d(3, 0);
    d.config.max_uncommitted_entries = 3;
    d.restart();
    auto r = sent<pb::AppendReply>(d.append(1, 1, 0, 0, 0, {{1, {"a"}}, {1, {"b"}}, {1, {"c"}}, {1, {"d"}}}),
                                   MessageType::kRaftAppendReply);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].second.match_index(), 3u);
    EXPECT_EQ(d.durable().log.size(), 3u);

    Direct b(3, 0);
    b.config.max_uncommitted_bytes = 10;
    b.restart();
    r = sent<pb::AppendReply>(b.append(1, 1, 0, 0, 0, {{1, {"aaaa"}}, {1, {"bbbb"}}, {1, {"cccc"}}}),
                              MessageType::kRaftAppendReply);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].second.match_index(), 2u) << "8 bytes held, 4 more would pass 10";
    // Once the first commits (a heartbeat says so), the third fits.
    b.append(1, 1, 2, 1, 1);
    EXPECT_EQ(b.executed, 1u);
    r = sent<pb::AppendReply>(b.append(1, 1, 2, 1, 1, {{1, {"cccc"}}}), MessageType::kRaftAppendReply);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].second.match_index(), 3u);
}

// ReadIndex (thesis 6.4): a read is answered only after an entry of the leader's term has
// committed and a majority answered a heartbeat round that began after the read arrived, and
// only once the ledger executed through the read's index.
TEST(RaftRules, ReadIndexWaitsForTermCommitAndMajorityRound) {
    Direct d(3, 0);
    d.elect();
    uint64_t t = d.term();
    // The no-op of this term has not committed: the read waits (no round yet).
    Output out = d.apply(d.engine->read_index(1));
    EXPECT_TRUE(d.engine->take_reads().empty());
    uint64_t ctx_before = 0;
    for (auto& [to, a] : sent<pb::Append>(out, MessageType::kRaftAppend)) ctx_before = std::max(ctx_before, a.read_ctx());
    EXPECT_EQ(ctx_before, 0u);
    // The no-op commits: the round starts, carried by heartbeats to every follower.
    out = d.append_reply(1, t, true, 1);
    ASSERT_EQ(d.executed, 1u);
    uint64_t ctx = 0;
    for (auto& [to, a] : sent<pb::Append>(out, MessageType::kRaftAppend)) ctx = std::max(ctx, a.read_ctx());
    ASSERT_GT(ctx, 0u);
    EXPECT_TRUE(d.engine->take_reads().empty());
    // A reply to an older round does not confirm it; one echoing the round does.
    d.append_reply(2, t, true, 1);
    EXPECT_TRUE(d.engine->take_reads().empty());
    pb::AppendReply r;
    r.set_term(t);
    r.set_success(true);
    r.set_match_index(1);
    r.set_read_ctx(ctx);
    d.deliver(crypto::seal(d.keys[2], MessageType::kRaftAppendReply, r.SerializeAsString()), 2);
    auto reads = d.engine->take_reads();
    ASSERT_EQ(reads.size(), 1u);
    EXPECT_TRUE(reads[0].ok);
    EXPECT_EQ(reads[0].read_id, 1u);
    EXPECT_EQ(reads[0].index, 1u);
}

TEST(RaftRules, ReadIndexRefusedOffLeaderAndOnStepDown) {
    Direct d(3, 0);
    d.append(1, 1, 0, 0, 0);
    d.engine->read_index(7);
    auto reads = d.engine->take_reads();
    ASSERT_EQ(reads.size(), 1u);
    EXPECT_FALSE(reads[0].ok);
    ASSERT_TRUE(reads[0].leader.has_value());
    EXPECT_EQ(*reads[0].leader, 1u) << "a follower names the leader it believes in";

    d.tick(100);
    d.elect();
    uint64_t t = d.term();
    d.append_reply(1, t, true, 1);  // the no-op commits
    d.apply(d.engine->read_index(8));
    // Before a majority confirms, a higher term appears: the leader steps down and refuses.
    d.append(2, t + 1, 0, 0, 0);
    reads = d.engine->take_reads();
    ASSERT_EQ(reads.size(), 1u);
    EXPECT_FALSE(reads[0].ok);
    EXPECT_EQ(reads[0].read_id, 8u);
}

// Log compaction: once the ledger executed snapshot_interval entries past the last snapshot,
// the log up to executed - trailing is erased, after the ledger is made durable through what
// it executed; a restart comes back with the snapshot and the rest of the log.
TEST(RaftRules, CompactionErasesExecutedLogAfterLedgerSync) {
    Direct d(3, 0);
    d.config.snapshot_interval = 3;
    d.config.snapshot_trailing = 1;
    d.restart();
    Output out = d.append(1, 1, 0, 0, 0, {{1, {"a"}}, {1, {"b"}}, {1, {"c"}}, {1, {"d"}}, {1, {"e"}}});
    EXPECT_EQ(out.ledger_sync_through, 0u);
    out = d.append(1, 1, 5, 1, 5);
    ASSERT_EQ(d.executed, 5u);
    EXPECT_GE(out.ledger_sync_through, 3u) << "the ledger must be durable before the log is erased";
    auto st = d.durable();
    EXPECT_EQ(st.snapshot_index, 3u) << "compacted through executed (4) - trailing (1)";
    EXPECT_EQ(st.snapshot_term, 1u);
    EXPECT_EQ(st.snapshot_digest, Direct::digest_of(3));
    ASSERT_EQ(st.log.size(), 2u);
    EXPECT_EQ(st.log[0].index, 4u);
    d.restart();
    EXPECT_EQ(d.engine->status().low_water_mark, 3u);
    // The log continues where it was: an append after index 5 matches.
    auto r = sent<pb::AppendReply>(d.append(1, 1, 5, 1, 5, {{1, {"f"}}}), MessageType::kRaftAppendReply);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_TRUE(r[0].second.success());
    EXPECT_EQ(r[0].second.match_index(), 6u);
}

// InstallSnapshot: a leader sends a follower behind its compacted log a snapshot; the follower
// fetches the ledger state (Output::fetch_snapshot), replaces its log, and acknowledges.
TEST(RaftRules, InstallSnapshotLeaderSendsFollowerFetchesAndAcknowledges) {
    Direct l(3, 0);
    l.config.snapshot_interval = 2;
    l.config.snapshot_trailing = 0;
    l.config.batch_size_max = 1;
    l.restart();
    l.elect();
    uint64_t t = l.term();
    for (int i = 0; i < 4; ++i) l.request("r" + std::to_string(i));
    l.append_reply(1, t, true, 4);  // with follower 1, a majority: 1..4 commit (depth 4)
    l.append_reply(1, t, true, 5);  // then r3, queued meanwhile, at 5
    ASSERT_EQ(l.executed, 5u);
    uint64_t snap = l.durable().snapshot_index;
    ASSERT_GE(snap, 2u);
    // Follower 2 never answered: its probe (from index 1) is resent at the next heartbeat,
    // and what it needs is compacted now: a snapshot goes instead.
    Output out = l.tick(static_cast<int>(l.config.heartbeat_ticks));
    auto snaps = sent<pb::Snapshot>(out, MessageType::kRaftSnapshot);
    ASSERT_EQ(snaps.size(), 1u);
    EXPECT_EQ(snaps[0].first, 2u);
    // The newest state executed (at or past the compaction): what peers still serve.
    const uint64_t offered = snaps[0].second.index();
    EXPECT_EQ(offered, l.executed);
    EXPECT_GE(offered, snap);
    EXPECT_EQ(snaps[0].second.snap_term(), t);

    // The follower's side.
    Direct f(3, 2);
    f.append(1, 1, 0, 0, 0, {{1, {"stale"}}});  // an uncommitted entry the snapshot replaces
    pb::Snapshot m = snaps[0].second;
    out = f.deliver(crypto::seal(f.keys[0], MessageType::kRaftSnapshot, m.SerializeAsString()), 0);
    ASSERT_TRUE(out.fetch_snapshot.has_value());
    EXPECT_EQ(out.fetch_snapshot->seq, offered);
    EXPECT_EQ(out.fetch_snapshot->peers, std::vector<ReplicaId>{0});
    EXPECT_TRUE(sent<pb::AppendReply>(out, MessageType::kRaftAppendReply).empty()) << "no ack before the state";
    // A resent snapshot while fetching asks for nothing more.
    out = f.deliver(crypto::seal(f.keys[0], MessageType::kRaftSnapshot, m.SerializeAsString()), 0);
    EXPECT_FALSE(out.fetch_snapshot.has_value());
    f.executed = offered;  // the node installed the ledger state
    out = f.apply(f.engine->on_state_restored(offered, Direct::digest_of(offered)));
    EXPECT_TRUE(out.sync);
    EXPECT_EQ(out.ledger_sync_through, offered);
    auto r = sent<pb::AppendReply>(out, MessageType::kRaftAppendReply);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_TRUE(r[0].second.success());
    EXPECT_EQ(r[0].second.match_index(), offered);
    auto st = f.durable();
    EXPECT_EQ(st.snapshot_index, offered);
    EXPECT_TRUE(st.log.empty());
    // The leader resumes appending after the snapshot: the follower matches through the
    // leader's last entry, so the next request goes to it right after the offered index.
    out = l.apply(l.engine->on_message(2, open_unchecked(crypto::seal(f.keys[2], MessageType::kRaftAppendReply,
                                                                     r[0].second.SerializeAsString())),
                                       crypto::seal(f.keys[2], MessageType::kRaftAppendReply,
                                                    r[0].second.SerializeAsString())));
    EXPECT_TRUE(sent<pb::Snapshot>(out, MessageType::kRaftSnapshot).empty());
    out = l.request("after");
    std::vector<pb::Append> to_follower;
    for (auto& [to, a] : sent<pb::Append>(out, MessageType::kRaftAppend))
        if (to == 2) to_follower.push_back(a);
    ASSERT_EQ(to_follower.size(), 1u);
    EXPECT_EQ(to_follower[0].prev_index(), offered);
}

// The node keeps ledger states only at multiples of its checkpoint interval (snapshot_every):
// the log is compacted only at such an index, and a follower behind the compacted log is
// offered the newest such state executed, which its peers still serve, not the older state the
// log was compacted at (which they may have let go).
TEST(RaftRules, CompactionAndInstallSnapshotUseOnlyStatesAPeerCanFetch) {
    Direct l(3, 0);
    l.config.snapshot_interval = 2;
    l.config.snapshot_trailing = 3;
    l.config.snapshot_every = 3;
    l.config.batch_size_max = 1;
    l.restart();
    l.elect();
    const uint64_t t = l.term();
    for (int i = 0; i < 9; ++i) l.request("r" + std::to_string(i));
    l.append_reply(1, t, true, 4);  // 1..4 commit (depth 4); 5..8 go out
    l.append_reply(1, t, true, 8);  // then 9
    l.append_reply(1, t, true, 9);
    ASSERT_EQ(l.executed, 9u);
    // Without the alignment it would have compacted at 2 and then 4 (executed - trailing).
    EXPECT_EQ(l.durable().snapshot_index, 6u);
    EXPECT_EQ(l.engine->status().low_water_mark, 6u);

    Output out = l.tick(static_cast<int>(l.config.heartbeat_ticks));
    auto snaps = sent<pb::Snapshot>(out, MessageType::kRaftSnapshot);
    ASSERT_EQ(snaps.size(), 1u);
    EXPECT_EQ(snaps[0].first, 2u);
    EXPECT_EQ(snaps[0].second.index(), 9u) << "the newest state a peer serves, past the compaction";
    EXPECT_EQ(snaps[0].second.snap_term(), t);
    crypto::Hash digest{};
    std::copy(snaps[0].second.digest().begin(), snaps[0].second.digest().end(), digest.begin());
    EXPECT_EQ(digest, Direct::digest_of(9));

    Direct f(3, 2);
    out = f.deliver(crypto::seal(f.keys[0], MessageType::kRaftSnapshot, snaps[0].second.SerializeAsString()), 0);
    ASSERT_TRUE(out.fetch_snapshot.has_value());
    EXPECT_EQ(out.fetch_snapshot->seq, 9u);
}

// The node may only be able to fetch a peer's current state, past the snapshot's index: that
// state was executed by a peer, so committed; the follower installs it, and the leader's next
// append after it is accepted although the term there is unknown.
TEST(RaftRules, InstallSnapshotAcceptsStateBeyondTarget) {
    Direct f(3, 2);
    pb::Snapshot m;
    m.set_term(3);
    m.set_index(10);
    m.set_snap_term(2);
    m.set_digest(std::string(32, '\x01'));
    Output out = f.deliver(crypto::seal(f.keys[0], MessageType::kRaftSnapshot, m.SerializeAsString()), 0);
    ASSERT_TRUE(out.fetch_snapshot.has_value());
    EXPECT_TRUE(f.engine->status().recovering);
    // A state below the target is refused; one beyond it is installed.
    EXPECT_TRUE(f.engine->on_state_restored(9, Direct::digest_of(9)).empty());
    f.executed = 14;
    out = f.apply(f.engine->on_state_restored(14, Direct::digest_of(14)));
    auto r = sent<pb::AppendReply>(out, MessageType::kRaftAppendReply);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].second.match_index(), 14u);
    EXPECT_FALSE(f.engine->status().recovering);
    r = sent<pb::AppendReply>(f.append(0, 3, 14, 3, 15, {{3, {"next"}}}), MessageType::kRaftAppendReply);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_TRUE(r[0].second.success());
    EXPECT_EQ(r[0].second.match_index(), 15u);
    EXPECT_EQ(f.executed, 15u);
}

// Leader transfer (thesis 3.10): the leader stops taking requests, brings the target up to
// date, and tells it to campaign at once; the target's vote request carries the transfer flag
// and is granted by voters that would ignore an ordinary one while their leader is live.
TEST(RaftRules, LeaderTransferTimeoutNowAndTransferVote) {
    Direct l(3, 0);
    l.elect();
    uint64_t t = l.term();
    l.request("r1");  // index 2; follower 1 has only the no-op
    l.append_reply(1, t, true, 1);
    Output out = l.apply(l.engine->transfer_leadership(1));
    for (auto& [to, a] : sent<pb::Append>(out, MessageType::kRaftAppend)) EXPECT_FALSE(a.timeout_now());
    l.request("r2");  // refused while handing over
    EXPECT_EQ(l.durable().log.size(), 2u);
    out = l.append_reply(1, t, true, 2);  // caught up: TimeoutNow goes to 1
    bool timeout_now = false;
    for (auto& [to, a] : sent<pb::Append>(out, MessageType::kRaftAppend))
        if (to == 1 && a.timeout_now()) timeout_now = true;
    EXPECT_TRUE(timeout_now);

    // The target campaigns at once, without pre-vote, with the transfer flag.
    Direct f(3, 1);
    f.append(0, t, 0, 0, 1, {{t, {}}, {t, {"r1"}}});
    pb::Append a;
    a.set_term(t);
    a.set_prev_index(2);
    a.set_prev_term(t);
    a.set_commit(1);
    a.set_timeout_now(true);
    out = f.deliver(crypto::seal(f.keys[0], MessageType::kRaftAppend, a.SerializeAsString()), 0);
    EXPECT_EQ(f.role(), "candidate");
    EXPECT_EQ(f.term(), t + 1);
    auto votes = sent<pb::Vote>(out, MessageType::kRaftVote);
    ASSERT_EQ(votes.size(), 2u);  // one to each peer
    for (const auto& [to, vote] : votes) {
        EXPECT_TRUE(vote.transfer());
        EXPECT_FALSE(vote.pre_vote());
    }

    // A voter that just heard from the leader ignores an ordinary vote but grants this one.
    Direct v(3, 2);
    v.append(0, t, 0, 0, 1, {{t, {}}, {t, {"r1"}}});
    EXPECT_TRUE(sent<pb::VoteReply>(v.vote(1, t + 1, 2, t), MessageType::kRaftVoteReply).empty());
    pb::Vote tv = votes[0].second;
    auto r = sent<pb::VoteReply>(v.deliver(crypto::seal(v.keys[1], MessageType::kRaftVote, tv.SerializeAsString()), 1),
                                 MessageType::kRaftVoteReply);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_TRUE(r[0].second.granted());
}

// Config::recovering (`tallyd --recover`): a replica that lost its term, vote and log asks
// every peer its term, never campaigns or votes meanwhile, and ends its recovery only when it
// knows every peer's term M and has committed a leader's entry of a term >= M; it then counts
// as having voted for that leader and votes only in later terms.
TEST(RaftRules, ARecoveringReplicaVotesAgainOnlyOnceItKnowsEveryTermAndHoldsALeadersEntry) {
    Direct d(3, 0);
    d.config.recovering = true;
    Output start = d.restart();
    auto queries = sent<pb::Vote>(start, MessageType::kRaftVote);
    ASSERT_EQ(queries.size(), 2u);  // one term query to each peer: a pre-vote of term 0
    for (const auto& [to, q] : queries) {
        EXPECT_TRUE(q.pre_vote());
        EXPECT_EQ(q.term(), 0u);
    }
    const uint64_t nonce = queries[0].second.recovery_nonce();  // this start's, echoed in answers
    ASSERT_NE(nonce, 0u);
    EXPECT_TRUE(d.engine->status().recovering);

    // Never a candidate, however long no leader speaks.
    Output idle = d.tick(100);
    for (const auto& [to, v] : sent<pb::Vote>(idle, MessageType::kRaftVote)) EXPECT_EQ(v.term(), 0u) << "campaigned";
    EXPECT_EQ(d.role(), "follower");

    // No vote, pre-vote or real, for a candidate with a perfect log.
    auto refused = sent<pb::VoteReply>(d.vote(1, 5, 100, 5, true), MessageType::kRaftVoteReply);
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_FALSE(refused[0].second.granted());
    refused = sent<pb::VoteReply>(d.vote(1, 5, 100, 5), MessageType::kRaftVoteReply);
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_FALSE(refused[0].second.granted());

    // Replica 2 answers that it is in term 7 (it may have been a candidate of term 7 we voted
    // for before the loss); replica 1 leads term 7 and answers too. The queries' answers echo
    // this start's nonce, and so do the leader's appends made since (our answers carry it).
    d.vote_reply(2, 7, false, true, nonce);
    auto answer = sent<pb::AppendReply>(d.append(1, 7, 0, 0, 0, {}), MessageType::kRaftAppendReply);
    ASSERT_EQ(answer.size(), 1u);
    ASSERT_EQ(answer[0].second.recovery_nonce(), nonce);
    d.vote_reply(1, 7, false, true, nonce);
    // The leader's commit index at an entry of term 6: not enough, only one of the leader's
    // own term shows our log holds all that committed.
    d.append(1, 7, 0, 0, 1, {{6, {"a"}}}, nonce);
    EXPECT_TRUE(d.engine->status().recovering) << "an entry of term 6 < 7 cannot end recovery";
    // One of term 7, but in an append that echoes no nonce: it may have been made before the
    // loss, its commit index older than what committed since.
    d.append(1, 7, 1, 6, 2, {{7, {"b"}}});
    EXPECT_TRUE(d.engine->status().recovering) << "an append from before this start cannot end recovery";
    // The same commit index, echoed: recovery ends; voted for the leader in term 7.
    d.append(1, 7, 2, 7, 2, {}, nonce);
    EXPECT_FALSE(d.engine->status().recovering);
    EXPECT_EQ(d.durable().term, 7u);
    ASSERT_TRUE(d.durable().voted_for.has_value());
    EXPECT_EQ(*d.durable().voted_for, 1u);

    // No second vote in term 7; a vote in term 8 for an up-to-date log.
    auto in_7 = sent<pb::VoteReply>(d.vote(2, 7, 2, 7), MessageType::kRaftVoteReply);
    ASSERT_EQ(in_7.size(), 1u);
    EXPECT_FALSE(in_7[0].second.granted());
    d.tick(50);  // the leader's lease over: a vote request of a later term is heard
    auto in_8 = sent<pb::VoteReply>(d.vote(2, 8, 2, 7), MessageType::kRaftVoteReply);
    ASSERT_EQ(in_8.size(), 1u);
    EXPECT_TRUE(in_8[0].second.granted());
}

// A recovering replica takes a peer's term only from the answer to this start's query (it
// echoes the query's nonce); an answer to a pre-vote it sent before the loss may still arrive.
// A refusal of that time carries the peer's term then, which may be below a term this replica
// voted in since: M too low, and it would vote again in that term (found in review). A grant
// carries the term its pre-vote proposed, which nobody may ever have been in: M too high, and
// the replica stayed recovering, never voting, while the leader lived (`scripts/simulate
// --raft`, seed 7687771407, 3 replicas, lost stores).
TEST(RaftRules, ARecoveringReplicaTakesAPeersTermOnlyFromItsAnswerToThisStartsQuery) {
    Direct d(3, 0);
    d.config.recovering = true;
    auto queries = sent<pb::Vote>(d.restart(), MessageType::kRaftVote);
    ASSERT_EQ(queries.size(), 2u);
    const uint64_t nonce = queries[0].second.recovery_nonce();
    ASSERT_NE(nonce, 0u);
    auto answer = sent<pb::AppendReply>(d.append(1, 5, 0, 0, 0, {}), MessageType::kRaftAppendReply);
    ASSERT_EQ(answer.size(), 1u);
    ASSERT_EQ(answer[0].second.recovery_nonce(), nonce);

    // Replica 2 refused an old pre-vote in term 5 (since then we voted for it in term 6): that
    // refusal, and one echoing another start's nonce, tell nothing. Replica 1 leads term 5.
    d.vote_reply(2, 5, false, true);
    d.vote_reply(2, 5, false, true, nonce + 2);
    d.vote_reply(1, 5, false, true, nonce);
    d.append(1, 5, 0, 0, 1, {{5, {"a"}}}, nonce);
    EXPECT_TRUE(d.engine->status().recovering) << "ended on a stale answer: M = 5 below the term 6 it voted in";
    // Still asked: replica 2's term is not known.
    auto asked = sent<pb::Vote>(d.tick(100), MessageType::kRaftVote);
    EXPECT_TRUE(std::any_of(asked.begin(), asked.end(), [&](const auto& q) {
        return q.first == 2u && q.second.term() == 0u && q.second.recovery_nonce() == nonce;
    })) << "replica 2 is not asked again";
    d.vote_reply(2, 6, false, true, nonce);  // its answer: term 6 (M = 6)
    d.append(1, 5, 1, 5, 1, {}, nonce);
    EXPECT_TRUE(d.engine->status().recovering) << "a leader of term 5 < M ended it";

    // A stale grant (for a term its pre-vote proposed) does not raise M either.
    d.vote_reply(1, 9, true, true);
    // Replica 2 leads term 6 now; its entry of term 6 at its commit index ends the recovery.
    answer = sent<pb::AppendReply>(d.append(2, 6, 1, 5, 2, {{6, {}}}, nonce), MessageType::kRaftAppendReply);
    ASSERT_EQ(answer.size(), 1u);
    EXPECT_TRUE(answer[0].second.success());
    d.vote_reply(1, 6, false, true, nonce);
    d.append(2, 6, 2, 6, 2, {}, nonce);
    EXPECT_FALSE(d.engine->status().recovering) << "waits for a term nobody was in";
    EXPECT_EQ(d.durable().term, 6u);
}

// A leader learns that a follower lost what it acknowledged (its refusals say so) and sends
// it everything again, where an ordinary refusal below the match would be ignored as stale.
TEST(RaftRules, ALeaderResendsWhatAFollowerThatLostItsStoreOnceAcknowledged) {
    Direct d(3, 0);
    d.elect();
    d.request("x");
    d.append_reply(1, d.term(), true, 2);
    d.append_reply(2, d.term(), true, 2);
    ASSERT_EQ(d.engine->status().commit_index, 2u);
    pb::AppendReply r;
    r.set_term(d.term());
    r.set_success(false);
    r.set_reject_index(2);
    r.set_lost_store(true);
    Output out = d.deliver(crypto::seal(d.keys[1], MessageType::kRaftAppendReply, r.SerializeAsString()), 1);
    auto resent = sent<pb::Append>(out, MessageType::kRaftAppend);
    ASSERT_EQ(resent.size(), 1u);
    EXPECT_EQ(resent[0].first, 1u);
    EXPECT_EQ(resent[0].second.prev_index(), 0u);
    EXPECT_EQ(resent[0].second.entries_size(), 2);
    // The same refusal without the mark is stale (below the match) and changes nothing.
    r.set_lost_store(false);
    out = d.deliver(crypto::seal(d.keys[2], MessageType::kRaftAppendReply, r.SerializeAsString()), 2);
    EXPECT_TRUE(sent<pb::Append>(out, MessageType::kRaftAppend).empty());
}

// A clean stop (Engine::hand_over): a leader hands over to the follower holding the most of
// its log; a follower has nothing to hand over.
TEST(RaftRules, AStoppingLeaderHandsOverToItsMostUpToDateFollower) {
    Direct f(3, 1);
    EXPECT_FALSE(f.engine->hand_over().has_value());

    Direct l(3, 0);
    l.elect();
    uint64_t t = l.term();
    l.request("r1");  // index 2
    l.append_reply(1, t, true, 1);
    l.append_reply(2, t, true, 2);  // 2 holds it all: TimeoutNow goes to 2 at once
    auto out = l.engine->hand_over();
    ASSERT_TRUE(out.has_value());
    bool timeout_now_to_2 = false;
    for (auto& [to, a] : sent<pb::Append>(*out, MessageType::kRaftAppend))
        timeout_now_to_2 = timeout_now_to_2 || (to == 2 && a.timeout_now());
    EXPECT_TRUE(timeout_now_to_2);
    EXPECT_FALSE(l.engine->takes_client_requests());
}

// What Raft keeps with each block in place of a commit certificate: the executed entry, which
// `tally audit` replays (bft/raft/block_record.h). It names its index: kept with another block,
// it is refused.
TEST(RaftRules, EachCommittedEntryCarriesABlockRecordOfItsIndexAndRequests) {
    Direct f(3, 1);
    Output out = f.append(0, 1, 0, 0, 2, {{1, {}}, {1, {"a", "b"}}});
    ASSERT_EQ(out.commit.size(), 2u);
    auto second = block_record_requests(2, out.commit[1].certificate);
    ASSERT_TRUE(second.ok()) << second.error().message;
    EXPECT_EQ(*second, (std::vector<std::string>{"a", "b"}));
    auto first = block_record_requests(1, out.commit[0].certificate);
    ASSERT_TRUE(first.ok());
    EXPECT_TRUE(first->empty());  // the leader's no-op
    auto misplaced = block_record_requests(3, out.commit[1].certificate);
    ASSERT_FALSE(misplaced.ok());
    EXPECT_EQ(misplaced.error().code, "bad_record");
    EXPECT_FALSE(block_record_requests(2, "not a record \xff\xff").ok());
}

// A follower records its view of an election (for net status, explain and the live view): the
// leader it follows, once per leader and term, not on every append.
TEST(RaftRules, AFollowerRecordsWhomItFollowsOncePerLeaderAndTerm) {
    Direct f(3, 1);
    auto follows = [](const Output& out) {
        std::vector<Step> found;
        for (const auto& s : out.steps)
            if (s.phase == "follows") found.push_back(s);
        return found;
    };
    auto first = follows(f.append(0, 3, 0, 0, 0, {{3, {}}}));
    ASSERT_EQ(first.size(), 1u);
    EXPECT_EQ(first[0].view, 3u);
    EXPECT_EQ(first[0].votes, std::vector<ReplicaId>{0});
    EXPECT_TRUE(follows(f.append(0, 3, 1, 3, 1)).empty());
    auto next = follows(f.append(2, 4, 1, 3, 1));
    ASSERT_EQ(next.size(), 1u);
    EXPECT_EQ(next[0].view, 4u);
    EXPECT_EQ(next[0].votes, std::vector<ReplicaId>{2});
}

// Thesis 10.2.1: a leader sends its new entries while it writes them (Output::send_early), so
// its fsync and its followers' overlap; the entry is written and synced in the same output,
// and the leader counts itself toward the commit only once a follower answers (read after the
// sync), never in the output that appends.
TEST(RaftRules, ALeaderSendsNewEntriesWhileItWritesThemAndCommitsOnlyOnAnAnswer) {
    Direct l(3, 0);
    l.elect();
    const uint64_t t = l.term();
    l.append_reply(1, t, true, 1);
    l.append_reply(2, t, true, 1);
    Output out = l.request("x");
    size_t early_appends = 0;
    for (const auto& o : out.send_early)
        if (open_unchecked(o.envelope).type == MessageType::kRaftAppend) ++early_appends;
    EXPECT_EQ(early_appends, 2u);
    for (const auto& o : out.send) EXPECT_NE(open_unchecked(o.envelope).type, MessageType::kRaftAppend);
    EXPECT_TRUE(out.sync);
    EXPECT_FALSE(out.persist.empty());
    EXPECT_TRUE(out.commit.empty());
    EXPECT_EQ(l.engine->status().commit_index, 1u);
    Output answered = l.append_reply(1, t, true, 2);
    ASSERT_EQ(answered.commit.size(), 1u);
    EXPECT_EQ(answered.commit[0].seq, 2u);
}

// Batching under load: with entries in flight, a new entry waits until a full batch waits
// (batch_size_max requests or batch_bytes_max bytes); with nothing in flight (or only the
// no-op) it goes at once.
TEST(RaftRules, WithEntriesInFlightANewOneWaitsForAFullBatch) {
    Direct d(3, 0);
    d.config.pipeline_depth = 3;
    d.config.batch_size_max = 3;
    d.restart();
    d.elect();  // the no-op, in flight: it holds no request, so nothing waits for it
    const uint64_t t = d.term();
    d.request("r0");
    ASSERT_EQ(d.durable().log.size(), 2u);
    d.request("r1");
    d.request("r2");
    EXPECT_EQ(d.durable().log.size(), 2u) << "two queued, fewer than a full batch: they wait";
    d.request("r3");  // a full batch: the pipeline takes it
    ASSERT_EQ(d.durable().log.size(), 3u);
    EXPECT_EQ(d.durable().log[2].requests, (std::vector<std::string>{"r1", "r2", "r3"}));
    d.request("r4");
    d.request("r5");
    EXPECT_EQ(d.durable().log.size(), 3u);
    d.append_reply(1, t, true, 3);  // everything in flight commits: r4 and r5 go out together
    ASSERT_EQ(d.durable().log.size(), 4u);
    EXPECT_EQ(d.durable().log[3].requests, (std::vector<std::string>{"r4", "r5"}));
}

// With nothing in flight, the leader waits until a request is queued from every prompt client it
// heard from lately (its latest request within kPromptTicks of the one before), or the oldest has
// waited a whole tick (bft/recent_clients.h): clients that fell into cohorts share one entry; one
// client, clients gone quiet, and clients that send only now and then wait for nothing.
TEST(RaftRules, WithNothingInFlightTheLeaderWaitsForEveryPromptClientOrOneTick) {
    Direct d(3, 0);
    d.config.pipeline_depth = 3;
    d.config.batch_size_max = 8;
    d.config.check_quorum = false;  // the ticks below pass without followers' answers
    d.restart();
    d.elect();
    const uint64_t t = d.term();
    const auto commit_all = [&] { d.append_reply(1, t, true, d.durable().log.size()); };  // log[i] is index i + 1
    const auto entries = [&] { return d.durable().log.size(); };
    using Requests = std::vector<std::string>;

    // First requests: nobody is known to be prompt yet, so nothing waits for company.
    d.request("a0", 1);
    ASSERT_EQ(entries(), 2u);
    d.request("b0", 2);
    d.request("c0", 3);
    commit_all();
    ASSERT_EQ(entries(), 3u) << "clients heard once were waited for";
    EXPECT_EQ(d.durable().log[2].requests, (Requests{"b0", "c0"}));
    commit_all();

    // Each sends again at once: now all three are prompt, and the two that come while the
    // first is in flight wait for its client's next request.
    d.request("a1", 1);
    ASSERT_EQ(entries(), 4u);
    d.request("b1", 2);
    d.request("c1", 3);
    commit_all();
    EXPECT_EQ(entries(), 4u) << "two queued wait for three prompt clients";
    d.request("a2", 1);
    ASSERT_EQ(entries(), 5u);
    EXPECT_EQ(d.durable().log[4].requests, (Requests{"b1", "c1", "a2"}));
    commit_all();

    // A client that does not come back holds an entry back a whole tick, no longer.
    d.request("a3", 1);
    d.request("b2", 2);
    d.tick();
    EXPECT_EQ(entries(), 5u) << "appended at the first tick boundary";
    d.tick();
    ASSERT_EQ(entries(), 6u);
    EXPECT_EQ(d.durable().log[5].requests, (Requests{"a3", "b2"}));
    commit_all();

    // Clients taking turns two ticks apart each send every six ticks: recent, not prompt (an
    // open loop's users). Nothing waits for them.
    static_assert(RecentClients::kPromptTicks < 6 && 6 <= RecentClients::kQuietTicks);
    d.tick(12);
    for (int round = 0; round < 3; ++round) {
        for (uint8_t c = 1; c <= 3; ++c) {
            const size_t before = entries();
            d.tick(2);
            d.request("turn" + std::to_string(round) + "-" + std::to_string(c), c);
            ASSERT_EQ(entries(), before + 1) << "a client that is not prompt was waited for (round " << round << ")";
            commit_all();
        }
    }

    // Once the others have been quiet a while, client 1 alone waits for nothing, prompt or not.
    d.tick(12);
    d.request("z0", 1);
    ASSERT_EQ(entries(), 16u);
    commit_all();
    d.tick();
    d.request("z1", 1);
    ASSERT_EQ(entries(), 17u);
}

// A request larger than batch_bytes_max alone is a full batch: it does not wait behind the
// entries in flight for company that could not join it.
TEST(RaftRules, ABatchFullByItsBytesDoesNotWait) {
    Direct d(3, 0);
    d.config.pipeline_depth = 3;
    d.config.batch_bytes_max = 16;
    d.restart();
    d.elect();
    d.request("r0");
    ASSERT_EQ(d.durable().log.size(), 2u);
    d.request(std::string(16, 'b'));
    ASSERT_EQ(d.durable().log.size(), 3u);
    EXPECT_EQ(d.durable().log[2].requests, (std::vector<std::string>{std::string(16, 'b')}));
}

// Raft keeps no certificates, so nothing it sends a peer is ever shown to a third party: each
// message is authenticated for its one receiver by a MAC under the key the two share
// (crypto/keys.h, PairwiseKey), not signed. A vote request goes to each peer under its own key.
TEST(RaftRules, WhatAReplicaSendsAPeerCarriesAMacOnlyThatPeerCanCheck) {
    Direct d(3, 0);
    const auto check = [&](ReplicaId from, const Output& out, MessageType type, size_t want) {
        std::vector<Outgoing> all = out.send_early;
        all.insert(all.end(), out.send.begin(), out.send.end());
        std::set<ReplicaId> to;
        for (const auto& o : all) {
            if (open_unchecked(o.envelope).type != type) continue;
            ASSERT_NE(o.to, kAllReplicas);
            to.insert(o.to);
            for (ReplicaId r = 0; r < 3; ++r) {
                if (r == from) continue;
                const auto key = crypto::PairwiseKey::derive(d.keys[r], d.keys[from].public_key()).value();
                crypto::OpenOptions options;
                options.pairwise_key = &key;
                auto env = crypto::open(o.envelope, options);
                EXPECT_EQ(env.ok(), r == o.to) << "to " << o.to << ", opened by " << r;
                if (env.ok()) {
                    EXPECT_TRUE(env->pairwise);
                }
            }
        }
        EXPECT_EQ(to.size(), want);
    };
    Output votes;
    for (int i = 0; i < 100 && votes.send.empty(); ++i) votes = d.tick();
    check(0, votes, MessageType::kRaftVote, 2);
    check(0, d.elect(), MessageType::kRaftAppend, 2);  // the new term's first entry
    Direct follower(3, 1);
    check(1, follower.append(0, 1, 0, 0, 0, {{1, {"r1"}}}), MessageType::kRaftAppendReply, 1);
}

}  // namespace
}  // namespace tally::bft::raft::testing
