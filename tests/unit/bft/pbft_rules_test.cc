// PBFT's rules, one test each, named after the rule (../shared/PBFT.md). Each drives one
// engine directly with messages sealed by the other replicas' keys.
#include <gtest/gtest.h>

#include <map>

#include "bft/recent_clients.h"
#include "tests/unit/bft/pbft_harness.h"

namespace tally::bft::pbft::testing {
namespace {

using crypto::MessageType;

TEST(PbftNormalCase, ABackupAcceptsAPrePrepareOnlyIfSignedByThePrimaryOfItsView) {
    Harness h(1);
    Output out = h.deliver(h.pre_prepare(2, 0, 1, {h.request()}));
    EXPECT_TRUE(sent(out, MessageType::kPrepare).empty());
    EXPECT_TRUE(h.detected(Misbehaviour::kNotPrimary));
}

TEST(PbftNormalCase, ABackupAcceptsAPrePrepareOnlyIfItsDigestIsTheBatchDigest) {
    Harness h(1);
    crypto::Hash wrong{};
    wrong[0] = 1;
    Output out = h.deliver(h.pre_prepare(0, 0, 1, {h.request()}, wrong));
    EXPECT_TRUE(sent(out, MessageType::kPrepare).empty());
    // Detected, but not as the primary's proven doing: its header names the digest, and any
    // replica may put a genuine header around another batch.
    auto detected = h.engine->take_detected();
    ASSERT_EQ(detected.size(), 1u);
    EXPECT_EQ(detected[0].kind, Misbehaviour::kBadDigest);
    EXPECT_EQ(detected[0].from, 0u);
    EXPECT_FALSE(detected[0].proven);
    // A batch the header does bind, but with a forged request, is the primary's doing.
    std::string forged = h.request();
    forged[forged.size() - 1] ^= 0x01;
    h.deliver(h.pre_prepare(0, 0, 2, {forged}));
    detected = h.engine->take_detected();
    ASSERT_EQ(detected.size(), 1u);
    EXPECT_EQ(detected[0].kind, Misbehaviour::kForgedRequest);
    EXPECT_TRUE(detected[0].proven);
}

TEST(PbftNormalCase, ABackupAcceptsAPrePrepareOnlyIfEveryRequestHasAValidClientSignature) {
    Harness h(1);
    std::string forged = h.request();
    forged[forged.size() - 1] ^= 0x01;  // the client's signature no longer verifies
    Output out = h.deliver(h.pre_prepare(0, 0, 1, {h.request(), forged}));
    EXPECT_TRUE(sent(out, MessageType::kPrepare).empty());
    EXPECT_TRUE(h.detected(Misbehaviour::kForgedRequest));
}

TEST(PbftNormalCase, ABackupAcceptsAPrePrepareOnlyIfItHasNotAcceptedADifferentDigestForTheSlot) {
    Harness h(1);
    EXPECT_EQ(sent(h.deliver(h.pre_prepare(0, 0, 1, {h.request()})), MessageType::kPrepare).size(), 1u);
    Output second = h.deliver(h.pre_prepare(0, 0, 1, {h.request()}));
    EXPECT_TRUE(sent(second, MessageType::kPrepare).empty());
    EXPECT_TRUE(h.detected(Misbehaviour::kEquivocation));
}

TEST(PbftNormalCase, ABackupAcceptsAPrePrepareOnlyBetweenTheWaterMarks) {
    Harness h(1);
    uint64_t beyond = h.config.watermark_window + 1;
    EXPECT_TRUE(sent(h.deliver(h.pre_prepare(0, 0, beyond, {h.request()})), MessageType::kPrepare).empty());
    EXPECT_TRUE(sent(h.deliver(h.pre_prepare(0, 0, 0, {h.request()})), MessageType::kPrepare).empty());
    EXPECT_EQ(sent(h.deliver(h.pre_prepare(0, 0, beyond - 1, {h.request()})), MessageType::kPrepare).size(), 1u);
}

// The keys an output writes, in order.
std::vector<std::string> put_keys(const Output& out) {
    std::vector<std::string> keys;
    for (const auto& op : out.persist)
        if (const auto* put = std::get_if<PersistPut>(&op)) keys.push_back(put->key);
    return keys;
}

bool writes(const Output& out, const std::string& key) {
    auto keys = put_keys(out);
    return std::find(keys.begin(), keys.end(), key) != keys.end();
}

// A slot record's key reads back as what made it; anything else is no slot key.
TEST(PbftRecords, ASlotKeyReadsBackAndAnythingElseIsNone) {
    for (char kind : {kSlotAccepted, kSlotPrepared, kSlotCommitted}) {
        auto key = parse_slot_key(slot_key(0x0102030405060708ull, 77, kind));
        ASSERT_TRUE(key.has_value());
        EXPECT_EQ(key->seq, 0x0102030405060708ull);
        EXPECT_EQ(key->view, 77u);
        EXPECT_EQ(key->kind, kind);
    }
    EXPECT_FALSE(parse_slot_key(slot_key(1, 0, 'z')).has_value());
    EXPECT_FALSE(parse_slot_key(slot_key_bound(1)).has_value());
    EXPECT_FALSE(parse_slot_key(kKeyView).has_value());
    EXPECT_FALSE(parse_slot_key(slot_key(1, 0, kSlotAccepted) + "x").has_value());
}

// The view record reads back as what made it; one without its ninth byte (8 bytes) is a
// replica that was in its view, and one of 9 bytes a replica that had not rejoined a lower view.
TEST(PbftRecords, AViewRecordReadsBackAndWithoutItsLastByteIsActive) {
    for (bool active : {true, false}) {
        const ViewRecord record = parse_view_record(view_record(ViewRecord{7, active}));
        EXPECT_EQ(record.view, 7u);
        EXPECT_EQ(record.active, active);
    }
    EXPECT_EQ(view_record(ViewRecord{7, false}).size(), 9u);
    EXPECT_EQ(view_record(ViewRecord{7, true, 7}).size(), 9u) << "rejoined below its own view: nothing to keep";
    const ViewRecord rejoined = parse_view_record(view_record(ViewRecord{1, true, 3}));
    EXPECT_EQ(rejoined.view, 1u);
    EXPECT_TRUE(rejoined.active);
    EXPECT_EQ(rejoined.rejoined_below, 3u);
    const ViewRecord old = parse_view_record(be64(5));
    EXPECT_EQ(old.view, 5u);
    EXPECT_TRUE(old.active);
    EXPECT_EQ(old.rejoined_below, 0u);
}

TEST(PbftNormalCase, ABackupRecordsWhatItSignsAndItsPrepareLeavesWhileTheRecordIsWritten) {
    Harness h(1);
    h.deliver(h.pre_prepare(0, 0, 1, {h.request()}));  // its first vote in the view
    Output out = h.deliver(h.pre_prepare(0, 0, 2, {h.request()}));
    ASSERT_EQ(out.send_early.size(), 1u) << "the restart rule, not the record, stands behind it";
    EXPECT_EQ(sent(out, MessageType::kPrepare).size(), 1u);
    EXPECT_TRUE(writes(out, slot_key(2, 0, kSlotAccepted)));
}

TEST(PbftNormalCase, ThePrimarysPrePrepareLeavesWhileItsRecordIsWritten) {
    Harness h(0);
    h.engine->on_client_request(ClientRequest{{h.client.public_key(), 1}, h.request()});  // first vote
    // With seq 1 in flight, the next pre-prepare waits for a full batch (batch_size_max 4).
    for (uint64_t nonce = 2; nonce < 5; ++nonce)
        ASSERT_TRUE(h.engine->on_client_request(ClientRequest{{h.client.public_key(), nonce}, h.request()}).send_early.empty());
    Output out = h.engine->on_client_request(ClientRequest{{h.client.public_key(), 5}, h.request()});
    ASSERT_EQ(out.send_early.size(), 1u);
    EXPECT_TRUE(out.send.empty());
    EXPECT_EQ(crypto::open(out.send_early[0].envelope)->type, MessageType::kPrePrepare);
    EXPECT_FALSE(out.sync);
}

TEST(PbftNormalCase, AReplicaSyncsItsViewBeforeItsFirstVoteInTheViewAndNotForLaterPrepares) {
    Harness h(1);
    Output first = h.deliver(h.pre_prepare(0, 0, 1, {h.request()}));
    ASSERT_EQ(sent(first, MessageType::kPrepare).size(), 1u);
    EXPECT_TRUE(writes(first, std::string(kKeyView)));
    EXPECT_TRUE(first.sync) << "the view record must be on disk before the first vote leaves";
    EXPECT_TRUE(first.send_early.empty()) << "so the first vote is not sent early";
    Output second = h.deliver(h.pre_prepare(0, 0, 2, {h.request()}));
    ASSERT_EQ(sent(second, MessageType::kPrepare).size(), 1u);
    EXPECT_TRUE(writes(second, slot_key(2, 0, kSlotAccepted)));
    EXPECT_FALSE(writes(second, std::string(kKeyView)));
    EXPECT_FALSE(second.sync) << "a prepare is written, not synced (the restart rule covers it)";
}

// The node drains a loop turn's outputs as one (Output::append): a prepare sent early must not
// overtake the synced view record of the first vote an earlier input in the same turn made.
TEST(PbftNormalCase, OutputsDrainedAsOneSendNothingEarlyAheadOfAPendingSync) {
    Harness h(1);
    Output turn = h.deliver(h.pre_prepare(0, 0, 1, {h.request()}));  // the view record, synced
    turn.append(h.deliver(h.pre_prepare(0, 0, 2, {h.request()})));   // a later prepare: early alone
    EXPECT_TRUE(turn.sync);
    EXPECT_TRUE(turn.send_early.empty());
    EXPECT_EQ(sent(turn, MessageType::kPrepare).size(), 2u);
}

TEST(PbftNormalCase, APreparedCertificateIsSyncedBeforeTheCommitLeaves) {
    Harness h(1);
    std::vector<std::string> batch{h.request()};
    crypto::Hash d = batch_digest(batch);
    h.deliver(h.pre_prepare(0, 0, 1, batch));
    Output out = h.deliver(h.vote(MessageType::kPrepare, 2, 0, 1, d));
    ASSERT_EQ(sent(out, MessageType::kCommit).size(), 1u);
    EXPECT_TRUE(writes(out, slot_key(1, 0, kSlotPrepared)));
    EXPECT_TRUE(out.sync);
}

TEST(PbftNormalCase, PreparedNeedsTwoFMatchingPreparesFromDistinctBackups) {
    Harness h(1);
    std::vector<std::string> batch{h.request()};
    crypto::Hash d = batch_digest(batch);
    h.deliver(h.pre_prepare(0, 0, 1, batch));
    // The primary's prepare does not count (it is refused), nor does a second copy of one.
    EXPECT_TRUE(sent(h.deliver(h.vote(MessageType::kPrepare, 0, 0, 1, d)), MessageType::kCommit).empty());
    EXPECT_TRUE(h.detected(Misbehaviour::kPrepareFromPrimary));
    crypto::Hash other{};
    EXPECT_TRUE(sent(h.deliver(h.vote(MessageType::kPrepare, 2, 0, 1, other)), MessageType::kCommit).empty());
    // Own prepare + replica 3's = 2f matching: prepared, so it commits.
    EXPECT_EQ(sent(h.deliver(h.vote(MessageType::kPrepare, 3, 0, 1, d)), MessageType::kCommit).size(), 1u);
}

TEST(PbftNormalCase, CommittedLocalNeedsTwoFPlusOneCommitsAndExecutionIsInSequenceOrder) {
    Harness h(1);
    std::vector<std::string> b1{h.request()}, b2{h.request()};
    crypto::Hash d1 = batch_digest(b1), d2 = batch_digest(b2);
    h.deliver(h.pre_prepare(0, 0, 1, b1));
    h.deliver(h.pre_prepare(0, 0, 2, b2));
    // Slot 2 prepares and commits first.
    h.deliver(h.vote(MessageType::kPrepare, 2, 0, 2, d2));
    h.deliver(h.vote(MessageType::kCommit, 0, 0, 2, d2));
    Output out = h.deliver(h.vote(MessageType::kCommit, 2, 0, 2, d2));
    EXPECT_TRUE(out.commit.empty()) << "seq 2 must wait for seq 1";
    h.deliver(h.vote(MessageType::kPrepare, 2, 0, 1, d1));
    EXPECT_TRUE(h.deliver(h.vote(MessageType::kCommit, 0, 0, 1, d1)).commit.empty()) << "2 of 3 commits";
    out = h.deliver(h.vote(MessageType::kCommit, 3, 0, 1, d1));
    ASSERT_EQ(out.commit.size(), 2u);
    EXPECT_EQ(out.commit[0].seq, 1u);
    EXPECT_EQ(out.commit[1].seq, 2u);
    EXPECT_EQ(out.commit[0].requests, b1);
}

// The node asks before it checks a vote's signature (Engine::worth_unverified): only a vote
// that comes after the certificate it would count toward, for that very batch, may be dropped
// unchecked; any other (another digest: equivocation evidence; another view or slot) is wanted.
TEST(PbftNormalCase, AVoteIsWantedUntilTheCertificateItWouldCountTowardIsMade) {
    Harness h(1);
    std::vector<std::string> batch{h.request()};
    crypto::Hash d = batch_digest(batch);
    crypto::Hash other{};
    other[0] = 7;
    auto body = [&](MessageType type, ReplicaId from, uint64_t view, uint64_t seq, const crypto::Hash& digest) {
        return crypto::open(h.vote(type, from, view, seq, digest))->body;
    };
    auto wants = [&](MessageType type, ReplicaId from, uint64_t view, uint64_t seq, const crypto::Hash& digest) {
        return h.engine->worth_unverified(type, body(type, from, view, seq, digest), from).wanted;
    };
    EXPECT_TRUE(wants(MessageType::kPrepare, 2, 0, 1, d)) << "no pre-prepare yet";
    h.deliver(h.pre_prepare(0, 0, 1, batch));
    EXPECT_TRUE(wants(MessageType::kPrepare, 2, 0, 1, d)) << "not prepared yet";
    h.deliver(h.vote(MessageType::kPrepare, 2, 0, 1, d));  // prepared: own prepare and replica 2's
    EXPECT_FALSE(wants(MessageType::kPrepare, 3, 0, 1, d)) << "a prepare after the prepared certificate";
    EXPECT_TRUE(wants(MessageType::kPrepare, 3, 0, 1, other)) << "another digest is evidence";
    EXPECT_TRUE(wants(MessageType::kPrepare, 3, 1, 1, d)) << "another view";
    EXPECT_TRUE(wants(MessageType::kPrepare, 3, 0, 2, d)) << "another slot";
    EXPECT_TRUE(wants(MessageType::kCommit, 2, 0, 1, d)) << "not committed yet";
    h.deliver(h.vote(MessageType::kCommit, 2, 0, 1, d));
    Output out = h.deliver(h.vote(MessageType::kCommit, 3, 0, 1, d));
    ASSERT_EQ(out.commit.size(), 1u);
    EXPECT_FALSE(wants(MessageType::kCommit, 0, 0, 1, d)) << "a commit after committed-local";
    EXPECT_TRUE(wants(MessageType::kCommit, 0, 0, 1, other));
    EXPECT_TRUE(h.engine->worth_unverified(MessageType::kCommit, "not a vote", 0).wanted)
        << "the checked path refuses it";
    EXPECT_TRUE(wants(MessageType::kCheckpoint, 0, 0, 1, d)) << "only votes are ever dropped";
}

// A wanted vote toward a certificate not made yet says how many more distinct replicas' votes
// the certificate lacks (Engine::worth_unverified), so that the node checks no more of one
// turn's votes than can count; a vote with no certificate in sight says nothing (no limit).
TEST(PbftNormalCase, AVoteTowardACertificateSaysHowManyMoreVotesItLacks) {
    Harness h(1);  // a backup of view 0, n = 4: 2 prepares (its own among them), 3 commits
    std::vector<std::string> batch{h.request()};
    crypto::Hash d = batch_digest(batch);
    auto worth = [&](MessageType type, ReplicaId from, uint64_t seq) {
        return h.engine->worth_unverified(type, crypto::open(h.vote(type, from, 0, seq, d))->body, from);
    };
    auto before = worth(MessageType::kPrepare, 2, 1);
    EXPECT_TRUE(before.wanted);
    EXPECT_TRUE(before.toward.empty()) << "no pre-prepare yet: nothing to count toward";
    h.deliver(h.pre_prepare(0, 0, 1, batch));  // accepted, and its own prepare counted
    auto prepare = worth(MessageType::kPrepare, 2, 1);
    EXPECT_TRUE(prepare.wanted);
    EXPECT_EQ(prepare.lacking, 1u) << "its own prepare and one other backup's";
    EXPECT_TRUE(worth(MessageType::kPrepare, 0, 1).toward.empty())
        << "a prepare from the primary counts toward nothing (on_vote refuses it): checked, not held";
    auto commit = worth(MessageType::kCommit, 2, 1);
    EXPECT_EQ(commit.lacking, 3u) << "not prepared: no commit of its own yet";
    EXPECT_NE(commit.toward, prepare.toward) << "two certificates, two names";
    EXPECT_NE(worth(MessageType::kPrepare, 2, 2).toward, prepare.toward) << "no slot 2 yet";
    h.deliver(h.vote(MessageType::kPrepare, 2, 0, 1, d));  // prepared: its commit sent and counted
    EXPECT_FALSE(worth(MessageType::kPrepare, 3, 1).wanted);
    commit = worth(MessageType::kCommit, 2, 1);
    EXPECT_EQ(commit.lacking, 2u);
    h.deliver(h.vote(MessageType::kCommit, 2, 0, 1, d));
    EXPECT_EQ(worth(MessageType::kCommit, 3, 1).lacking, 1u);
    EXPECT_FALSE(worth(MessageType::kCommit, 2, 1).wanted) << "replica 2's commit again adds nothing";
    EXPECT_TRUE(h.engine->worth_unverified(MessageType::kCommit,
                                           crypto::open(h.vote(MessageType::kCommit, 2, 0, 1, d))->body,
                                           std::nullopt)
                    .wanted)
        << "no sender named: no repeat known";
    EXPECT_EQ(h.deliver(h.vote(MessageType::kCommit, 3, 0, 1, d)).commit.size(), 1u);
    EXPECT_FALSE(worth(MessageType::kCommit, 0, 1).wanted) << "committed-local";
}

TEST(PbftNormalCase, ThePrimaryBatchesRequestsAndKeepsAtMostPipelineDepthInFlight) {
    Harness h(0);
    size_t pre_prepares = 0;
    for (int i = 0; i < 40; ++i) {
        ClientRequest r{{h.client.public_key(), 0}, h.request()};
        pre_prepares += sent(h.engine->on_client_request(r), MessageType::kPrePrepare).size();
    }
    EXPECT_EQ(pre_prepares, h.config.pipeline_depth) << "nothing executed yet, so the pipeline is full";
}

// What the primary of view 0 proposes, collected from its outputs; the backups' votes that
// commit a batch of it, and its execution.
struct Proposals {
    Harness& h;
    std::vector<pb::PrePrepare> proposed;

    void collect(const Output& out) {
        for (const auto& env : sent(out, MessageType::kPrePrepare)) {
            pb::PrePrepare pp;
            ASSERT_TRUE(pp.ParseFromString(env.body));
            proposed.push_back(pp);
        }
    }
    // Prepares and commits from backups 1 and 2 commit `seq`; then the caller executes it, and at
    // a checkpoint the backups' checkpoints make it stable (so that the window moves on).
    void commit_and_execute(uint64_t seq) {
        const crypto::Hash d = hash_from_bytes(proposed.at(seq - 1).digest());
        for (ReplicaId from : {1u, 2u}) collect(h.deliver(h.vote(MessageType::kPrepare, from, 0, seq, d)));
        Output out;
        for (ReplicaId from : {1u, 2u}) {
            out = h.deliver(h.vote(MessageType::kCommit, from, 0, seq, d));
            collect(out);
        }
        ASSERT_EQ(out.commit.size(), 1u);
        collect(h.engine->on_executed(seq, crypto::Hash{}));
        if (seq % h.config.checkpoint_interval != 0) return;
        for (ReplicaId from : {1u, 2u}) collect(h.deliver(h.checkpoint(from, seq, crypto::Hash{})));
        ASSERT_EQ(h.engine->status().low_water_mark, seq);
    }
};

TEST(PbftNormalCase, WithBatchesInFlightThePrimaryProposesOnlyAFullBatch) {
    Harness h(0);  // the primary of view 0; pipeline depth 4, batches of at most 4
    Proposals p{h, {}};
    auto& proposed = p.proposed;
    auto submit = [&] {
        p.collect(h.engine->on_client_request(ClientRequest{{h.client.public_key(), 0}, h.request()}));
    };
    auto commit_and_execute = [&](uint64_t seq) { p.commit_and_execute(seq); };

    // Nothing in flight: the first request is proposed at once, alone (one client waits for
    // nothing).
    submit();
    ASSERT_EQ(proposed.size(), 1u);
    // With a batch in flight, lone requests wait rather than take a slot ...
    for (int i = 0; i < 3; ++i) submit();
    EXPECT_EQ(proposed.size(), 1u) << "a batch of fewer than four (batch_size_max) would be proposed";
    // ... until a full batch waits: then the pipeline takes it, and the next, until it is full.
    submit();
    ASSERT_EQ(proposed.size(), 2u);
    EXPECT_EQ(proposed[1].requests_size(), 4);
    for (int i = 0; i < 8; ++i) submit();
    ASSERT_EQ(proposed.size(), 4u);
    EXPECT_EQ(proposed[3].requests_size(), 4);
    for (int i = 0; i < 4; ++i) submit();
    EXPECT_EQ(proposed.size(), 4u) << "four batches in flight: the pipeline is full";
    // Executing seq 1 frees a slot: the four waiting requests go as one batch.
    commit_and_execute(1);
    ASSERT_EQ(proposed.size(), 5u);
    EXPECT_EQ(proposed[4].requests_size(), 4);
    for (uint64_t seq = 2; seq <= 4; ++seq) commit_and_execute(seq);
    ASSERT_EQ(proposed.size(), 5u);
    // Seq 5 alone is in flight: three requests wait for it, not for a full batch of their own,
    for (int i = 0; i < 3; ++i) submit();
    EXPECT_EQ(proposed.size(), 5u);
    // and go out together once it executes, since with nothing in flight anything goes.
    commit_and_execute(5);
    ASSERT_EQ(proposed.size(), 6u);
    EXPECT_EQ(proposed[5].requests_size(), 3);
}

// With nothing in flight, the primary waits for a request from every prompt client it heard
// from recently (its latest request within kPromptTicks of the one before, as a closed-loop
// client's), or a whole tick: clients that fell into two cohorts (one's requests arriving while
// the other's batch is in flight) are merged into one batch instead of alternating. One client,
// clients that went quiet, and clients that send only now and then wait for nothing.
TEST(PbftNormalCase, WithNothingInFlightThePrimaryWaitsForEveryPromptClientOrOneTick) {
    Harness h(0);  // batches of at most 4
    std::vector<crypto::KeyPair> clients{key_of(200), key_of(201), key_of(202)};
    std::map<size_t, uint64_t> nonces;
    Proposals p{h, {}};
    auto& proposed = p.proposed;
    auto collect = [&](const Output& out) { p.collect(out); };
    auto submit = [&](size_t c) {
        const auto& key = clients[c];
        std::string tx = ledger::make_transfer(key, key_of(101).public_key(), 5, ++nonces[c]);
        collect(h.engine->on_client_request(ClientRequest{{key.public_key(), nonces[c]}, tx}));
    };
    auto commit_and_execute = [&](uint64_t seq) { p.commit_and_execute(seq); };
    auto ticks = [&](int n) {
        for (int i = 0; i < n; ++i) collect(h.engine->on_tick());
    };

    // Client 0 sends and is proposed at once (as seq `seq`); clients 1 and 2 send while it is
    // in flight; it executes. What the two then do is what the rule decides.
    auto zero_then_one_and_two = [&](uint64_t seq) {
        submit(0);
        ASSERT_EQ(proposed.size(), seq);
        submit(1);
        submit(2);
        commit_and_execute(seq);
    };

    // First requests: nobody is known to be prompt yet, so nothing waits for company.
    zero_then_one_and_two(1);
    ASSERT_EQ(proposed.size(), 2u) << "clients heard once were waited for";
    EXPECT_EQ(proposed[1].requests_size(), 2);
    commit_and_execute(2);

    // Each sends again at once: now all three are prompt. Client 0 alone goes (the only one
    // prompt then); the two that come while it is in flight wait for client 0's next request.
    zero_then_one_and_two(3);
    EXPECT_EQ(proposed.size(), 3u) << "two requests wait for three prompt clients";
    submit(0);
    ASSERT_EQ(proposed.size(), 4u);
    EXPECT_EQ(proposed[3].requests_size(), 3) << "the two cohorts in one batch";
    commit_and_execute(4);

    // A client that does not come back holds a batch back for a whole tick, no longer: not
    // just to the next tick boundary, which may fall a moment after the first request.
    submit(0);
    submit(1);
    EXPECT_EQ(proposed.size(), 4u);
    ticks(1);
    EXPECT_EQ(proposed.size(), 4u) << "proposed at the first tick boundary";
    ticks(1);
    ASSERT_EQ(proposed.size(), 5u);
    EXPECT_EQ(proposed[4].requests_size(), 2);
    commit_and_execute(5);

    // Clients that take turns two ticks apart each send every six ticks: recent (kQuietTicks
    // is 10) but not prompt (kPromptTicks is 4), as users who send now and then (an open loop).
    // Nothing waits for them.
    static_assert(RecentClients::kPromptTicks < 6 && 6 <= RecentClients::kQuietTicks);
    ticks(12);  // all forgotten: from here on, only the turns below
    uint64_t seq = 5;
    for (int round = 0; round < 3; ++round) {
        for (size_t c = 0; c < clients.size(); ++c) {
            ticks(2);
            submit(c);
            ASSERT_EQ(proposed.size(), seq + 1) << "a client that is not prompt was waited for (round " << round << ")";
            EXPECT_EQ(proposed[seq].requests_size(), 1);
            commit_and_execute(++seq);
        }
    }

    // Once the others have been quiet for a while, client 0 alone waits for nothing, even
    // prompt (two requests a tick apart).
    ticks(12);
    submit(0);
    ASSERT_EQ(proposed.size(), seq + 1);
    commit_and_execute(++seq);
    ticks(1);
    submit(0);
    ASSERT_EQ(proposed.size(), seq + 1);
    EXPECT_EQ(proposed[seq].requests_size(), 1);
}

TEST(PbftCheckpoint, TwoFPlusOneMatchingCheckpointsMakeItStableAndCollectTheLog) {
    Harness h(1);
    crypto::Hash digest{};
    digest[5] = 7;
    h.deliver(h.checkpoint(0, 4, digest));
    EXPECT_EQ(h.engine->status().low_water_mark, 0u);
    h.deliver(h.checkpoint(2, 4, digest));
    Output out = h.deliver(h.checkpoint(3, 4, digest));
    EXPECT_EQ(h.engine->status().low_water_mark, 4u);
    // Behind the stable checkpoint, it asks for state transfer with the proven digest.
    ASSERT_TRUE(out.fetch_snapshot.has_value());
    EXPECT_EQ(out.fetch_snapshot->seq, 4u);
    EXPECT_EQ(out.fetch_snapshot->digest, digest);
    bool erased = false;
    for (const auto& op : out.persist) erased |= std::holds_alternative<PersistErase>(op);
    EXPECT_TRUE(erased);
}

TEST(PbftCheckpoint, AStableCheckpointLearnedFromACatchUpReplyIsFetchedFromItsProofsSigners) {
    Harness h(1);
    crypto::Hash digest{};
    digest[5] = 7;
    pb::CommittedReply reply;  // no CHECKPOINT reached this replica itself
    reply.set_stable_seq(4);
    reply.set_stable_digest(hash_bytes(digest));
    for (ReplicaId r : {0u, 2u, 3u}) reply.add_checkpoint_proof(h.checkpoint(r, 4, digest));
    Output out =
        h.deliver(crypto::seal(h.keys[2], MessageType::kCommitted, reply.SerializeAsString()));
    EXPECT_EQ(h.engine->status().low_water_mark, 4u);
    ASSERT_TRUE(out.fetch_snapshot.has_value());
    EXPECT_EQ(out.fetch_snapshot->peers, (std::vector<ReplicaId>{0, 2, 3}))
        << "with no peer to ask, it would wait for the state forever";
}

// Seed 3116179: a replica down for longer than a window came back at seq 3 with the others
// at 38 and idle. Their commits lay beyond its window and it heard too few checkpoints for a
// proof, so it never asked for state. f+1 peers checkpointing beyond it show it is behind
// (one alone, which may lie, does not).
TEST(PbftCheckpoint, FPlusOnePeersCheckpointingBeyondTheWindowMakeALaggardAskForState) {
    Harness h(1);
    h.config.retransmit_ticks = 5;
    h.restart({});
    crypto::Hash digest{};
    digest[3] = 9;
    const uint64_t far = 5 * h.config.watermark_window;  // far beyond H + L
    h.deliver(h.checkpoint(0, far, digest));
    Output alone;
    for (uint64_t t = 0; t < 2 * h.config.retransmit_ticks; ++t) alone.append(h.engine->on_tick());
    EXPECT_TRUE(sent(alone, MessageType::kFetchCommitted).empty())
        << "one peer's claim is no evidence";
    h.deliver(h.checkpoint(2, far, digest));
    Output two;
    for (uint64_t t = 0; t < 2 * h.config.retransmit_ticks; ++t) two.append(h.engine->on_tick());
    EXPECT_FALSE(sent(two, MessageType::kFetchCommitted).empty())
        << "behind, it never asked for state";
}

// A replica back from a while down learns how far behind it is from its first FETCH-COMMITTED
// (the answer carries the stable checkpoint it must fetch). Until then its node admits client
// requests against a stale ledger, so the first round runs as soon as it sees its peers a
// checkpoint interval ahead, not retransmit_ticks after it started; then at the usual rate.
TEST(PbftCatchUp, AReplicaBackFarBehindAsksAtOnceThenAtTheUsualRate) {
    Harness h(1);
    h.restart({});
    crypto::Hash digest{};
    digest[1] = 4;
    const uint64_t ahead = h.config.checkpoint_interval;  // exactly one interval
    h.deliver(h.vote(MessageType::kCommit, 0, 0, ahead, digest));
    Output first = h.engine->on_tick();
    EXPECT_EQ(sent(first, MessageType::kFetchCommitted).size(), 1u)
        << "far behind, it waited for its first round";
    Output meanwhile;
    for (uint64_t t = 1; t < h.config.retransmit_ticks; ++t) meanwhile.append(h.engine->on_tick());
    EXPECT_TRUE(sent(meanwhile, MessageType::kFetchCommitted).empty()) << "it asked faster than an honest asker does";
    EXPECT_EQ(sent(h.engine->on_tick(), MessageType::kFetchCommitted).size(), 1u);

    // Less behind (a replica that missed a few messages) waits for its round.
    Harness near(1);
    near.restart({});
    near.deliver(near.vote(MessageType::kCommit, 0, 0, near.config.checkpoint_interval - 1, digest));
    Output early;
    for (uint64_t t = 1; t < near.config.retransmit_ticks; ++t) early.append(near.engine->on_tick());
    EXPECT_TRUE(sent(early, MessageType::kFetchCommitted).empty());
}

TEST(PbftCheckpoint, CheckpointsThatDisagreeNeverBecomeStable) {
    Harness h(1);
    crypto::Hash a{}, b{};
    b[0] = 1;
    h.deliver(h.checkpoint(0, 4, a));
    h.deliver(h.checkpoint(2, 4, b));
    h.deliver(h.checkpoint(3, 4, a));
    EXPECT_EQ(h.engine->status().low_water_mark, 0u);
}

TEST(PbftViewChange, ABackupWhoseRequestDoesNotExecuteInTimeStartsAViewChange) {
    Harness h(1);
    h.engine->on_client_request(ClientRequest{{h.client.public_key(), 1}, h.request()});
    Output all;
    for (uint64_t t = 0; t < h.config.view_change_timeout_ticks; ++t) all.append(h.engine->on_tick());
    EXPECT_EQ(sent(all, MessageType::kViewChange).size(), 1u);
    EXPECT_EQ(h.engine->status().view, 1u);
    EXPECT_TRUE(h.engine->status().view_changing);
}

TEST(PbftViewChange, AReplicaFetchingStateDoesNotTimeOutIntoAViewChange) {
    Harness h(1);
    crypto::Hash digest{};
    digest[5] = 7;
    h.deliver(h.checkpoint(0, 4, digest));
    h.deliver(h.checkpoint(2, 4, digest));
    ASSERT_TRUE(h.deliver(h.checkpoint(3, 4, digest)).fetch_snapshot.has_value());
    h.engine->on_client_request(ClientRequest{{h.client.public_key(), 1}, h.request()});
    Output all;
    for (uint64_t t = 0; t < 3 * h.config.view_change_timeout_ticks; ++t) all.append(h.engine->on_tick());
    EXPECT_TRUE(sent(all, MessageType::kViewChange).empty());
    EXPECT_EQ(h.engine->status().view, 0u);
    // Once the state is in, the timer runs again: a request still pending (its client
    // retransmits) that does not execute in time starts a view change.
    h.engine->on_state_restored(4, digest);
    h.engine->on_client_request(ClientRequest{{h.client.public_key(), 2}, h.request()});
    for (uint64_t t = 0; t + 1 < h.config.view_change_timeout_ticks; ++t) all.append(h.engine->on_tick());
    EXPECT_TRUE(sent(all, MessageType::kViewChange).empty()) << "a whole timeout from the restore";
    all.append(h.engine->on_tick());
    EXPECT_EQ(sent(all, MessageType::kViewChange).size(), 1u);
}

TEST(PbftViewChange, FViewChangesAloneNeverForceAViewChange) {
    Harness h(1);
    h.deliver(view_change(h, 2, 1));
    EXPECT_EQ(h.engine->status().view, 0u);
    EXPECT_FALSE(h.engine->status().view_changing);
}

TEST(PbftViewChange, AReplicaWithFPlusOneViewChangesForHigherViewsJoinsTheSmallest) {
    Harness h(1);
    h.deliver(view_change(h, 2, 3));
    Output out = h.deliver(view_change(h, 3, 2));
    EXPECT_EQ(h.engine->status().view, 2u);
    auto vcs = sent(out, MessageType::kViewChange);
    ASSERT_EQ(vcs.size(), 1u);
    pb::ViewChange vc;
    ASSERT_TRUE(vc.ParseFromString(vcs[0].body));
    EXPECT_EQ(vc.new_view(), 2u);
}

TEST(PbftViewChange, AViewChangeWithAForgedPreparedCertificateIsRejected) {
    Harness h(1);
    std::vector<std::string> batch{h.request()};
    crypto::Hash d = batch_digest(batch);
    pb::ViewChange vc;
    vc.set_new_view(1);
    auto* p = vc.add_prepared();
    p->set_pre_prepare(h.header(0, 0, 1, d));
    // Only one prepare, and one "from" the primary: not a certificate.
    p->add_prepares(h.vote(MessageType::kPrepare, 2, 0, 1, d));
    p->add_prepares(h.vote(MessageType::kPrepare, 0, 0, 1, d));
    h.deliver(crypto::seal(h.keys[2], MessageType::kViewChange, vc.SerializeAsString()));
    EXPECT_TRUE(h.detected(Misbehaviour::kBadViewChange));
}

TEST(PbftViewChange, TheNewPrimarySendsNewViewThatReproposesEveryPreparedBatch) {
    Harness h(1);  // replica 1 is the primary of view 1
    std::vector<std::string> batch{h.request()};
    crypto::Hash d = batch_digest(batch);
    h.deliver(h.pre_prepare(0, 0, 1, batch));
    h.deliver(h.vote(MessageType::kPrepare, 2, 0, 1, d));  // prepared at replica 1
    h.deliver(view_change(h, 2, 1));
    Output out = h.deliver(view_change(h, 3, 1));  // f+1: joins, then holds 2f+1 with its own
    auto nvs = sent(out, MessageType::kNewView);
    ASSERT_EQ(nvs.size(), 1u);
    pb::NewView nv;
    ASSERT_TRUE(nv.ParseFromString(nvs[0].body));
    ASSERT_EQ(nv.reproposals_size(), 1);
    EXPECT_EQ(nv.reproposals(0).seq(), 1u);
    EXPECT_EQ(hash_from_bytes(nv.reproposals(0).digest()), d);
    auto pps = sent(out, MessageType::kPrePrepare);
    ASSERT_EQ(pps.size(), 1u);
    EXPECT_FALSE(h.engine->status().view_changing);
    EXPECT_EQ(h.engine->status().view, 1u);
}

TEST(PbftViewChange, NewViewIsRejectedWhenItsOSetDoesNotFollowFromItsVSet) {
    Harness h(2);
    std::vector<std::string> batch{h.request()};
    crypto::Hash d = batch_digest(batch);
    // Replica 1 (new primary) prepared seq 1; its view change says so.
    Harness primary(1);
    primary.deliver(primary.pre_prepare(0, 0, 1, batch));
    primary.deliver(primary.vote(MessageType::kPrepare, 2, 0, 1, d));
    primary.deliver(view_change(primary, 2, 1));
    Output out = primary.deliver(view_change(primary, 3, 1));
    auto nvs = sent(out, MessageType::kNewView);
    ASSERT_EQ(nvs.size(), 1u);
    pb::NewView honest;
    ASSERT_TRUE(honest.ParseFromString(nvs[0].body));

    // The same V with an O that drops the prepared batch.
    pb::NewView lying = honest;
    lying.clear_reproposals();
    std::string raw = crypto::seal(h.keys[1], MessageType::kNewView, lying.SerializeAsString());
    h.deliver(view_change(h, 3, 1));
    h.deliver(view_change(h, 0, 1));  // replica 2 joins view 1
    h.deliver(raw);
    EXPECT_TRUE(h.detected(Misbehaviour::kBadNewView));
    EXPECT_TRUE(h.engine->status().view_changing);

    // The honest NEW-VIEW is accepted.
    std::string good = crypto::seal(h.keys[1], MessageType::kNewView, honest.SerializeAsString());
    h.deliver(good);
    EXPECT_FALSE(h.engine->status().view_changing);
    EXPECT_EQ(h.engine->status().view, 1u);
}

TEST(PbftRestart, AfterARestartAReplicaNeverPreparesADifferentDigestForASlotItPreparedBefore) {
    Harness h(1);
    Output first = h.deliver(h.pre_prepare(0, 0, 1, {h.request()}));
    std::vector<std::pair<std::string, std::string>> records;
    for (const auto& op : first.persist)
        if (auto* put = std::get_if<PersistPut>(&op)) records.emplace_back(put->key, put->value);
    std::sort(records.begin(), records.end());
    h.restart(records);
    // A (lying) primary now proposes something else for (0, 1).
    Output second = h.deliver(h.pre_prepare(0, 0, 1, {h.request()}));
    EXPECT_TRUE(sent(second, MessageType::kPrepare).empty());
    EXPECT_TRUE(h.detected(Misbehaviour::kEquivocation));
}

TEST(PbftNormalCase, ARequestArrivingBetweenItsCommitAndItsExecutionDoesNotWaitIntoAViewChange) {
    Harness h(1);
    std::string request = h.request();
    std::vector<std::string> batch{request};
    crypto::Hash d = batch_digest(batch);
    h.deliver(h.pre_prepare(0, 0, 1, batch));
    h.deliver(h.vote(MessageType::kPrepare, 2, 0, 1, d));
    h.deliver(h.vote(MessageType::kCommit, 0, 0, 1, d));
    Output committed = h.deliver(h.vote(MessageType::kCommit, 2, 0, 1, d));
    ASSERT_EQ(committed.commit.size(), 1u);
    // The client's own copy arrives in the same turn, before the caller executes seq 1.
    h.engine->on_client_request(ClientRequest{{}, request});
    h.engine->on_executed(1, crypto::Hash{});
    Output later;
    for (uint64_t t = 0; t < 5 * h.config.view_change_timeout_ticks; ++t) later.append(h.engine->on_tick());
    EXPECT_TRUE(sent(later, MessageType::kViewChange).empty()) << "nothing was left waiting";
    EXPECT_EQ(h.engine->status().view, 0u);
}

TEST(PbftRestart, AfterARestartABackupSendsNoPrepareInItsOldViewButStillCommitsFromItsPeersVotes) {
    Harness h(1);
    std::map<std::string, std::string> store;
    keep(h.deliver(h.pre_prepare(0, 0, 1, {h.request()})), store);
    // A machine crash may have lost prepares written after the last sync: it stays silent.
    h.restart({store.begin(), store.end()});
    std::vector<std::string> batch{h.request()};
    crypto::Hash d = batch_digest(batch);
    EXPECT_TRUE(sent(h.deliver(h.pre_prepare(0, 0, 2, batch)), MessageType::kPrepare).empty());
    EXPECT_TRUE(sent(h.deliver(h.vote(MessageType::kPrepare, 2, 0, 2, d)), MessageType::kCommit).empty());
    Output prepared = h.deliver(h.vote(MessageType::kPrepare, 3, 0, 2, d));
    EXPECT_EQ(sent(prepared, MessageType::kCommit).size(), 1u) << "2f prepares from peers prepare it";
    EXPECT_TRUE(prepared.sync);
}

TEST(PbftRestart, AReplicaThatNeverVotedIsNotSilentAfterARestart) {
    Harness h(1);
    h.restart({});
    EXPECT_EQ(sent(h.deliver(h.pre_prepare(0, 0, 1, {h.request()})), MessageType::kPrepare).size(), 1u);
}

TEST(PbftRestart, ARestartedPrimaryProposesNothingInItsOldView) {
    Harness h(0);
    std::map<std::string, std::string> store;
    keep(h.engine->on_client_request(ClientRequest{{}, h.request()}), store);
    ASSERT_TRUE(store.count(std::string(kKeyView)));
    h.restart({store.begin(), store.end()});
    Output out = h.engine->on_client_request(ClientRequest{{}, h.request()});
    for (int i = 0; i < 5; ++i) out.append(h.engine->on_tick());
    EXPECT_TRUE(sent(out, MessageType::kPrePrepare).empty());
}

// read_pre_prepare (messages.h) reads what this replica stored or checked before: a
// pre-prepare, or the header a VIEW-CHANGE carries when asked for that type; anything else,
// another type or a body that does not decode, is none.
TEST(PbftMessages, ReadPrePrepareReadsAPrePrepareOrItsHeaderAndNothingElse) {
    const auto key = key_of(0);
    const std::vector<std::string> requests{"a", "b"};
    const std::string pp = seal_pre_prepare(key, 2, 7, batch_digest(requests), requests);
    const auto read = read_pre_prepare(pp);
    ASSERT_TRUE(read.has_value());
    EXPECT_EQ(read->view(), 2u);
    EXPECT_EQ(read->seq(), 7u);
    EXPECT_EQ(hash_from_bytes(read->digest()), batch_digest(requests));
    EXPECT_EQ(read->requests_size(), 2);

    const std::string header = header_of(pp);
    EXPECT_FALSE(read_pre_prepare(header).has_value()) << "a header read as a whole pre-prepare";
    const auto head = read_pre_prepare(header, MessageType::kPrePrepareHeader);
    ASSERT_TRUE(head.has_value());
    EXPECT_EQ(head->seq(), 7u);
    EXPECT_EQ(head->requests_size(), 0);
    EXPECT_FALSE(read_pre_prepare(pp, MessageType::kPrePrepareHeader).has_value());

    pb::Vote vote;
    vote.set_view(2);
    vote.set_seq(7);
    EXPECT_FALSE(read_pre_prepare(crypto::seal(key, MessageType::kPrepare, vote.SerializeAsString())).has_value());
    EXPECT_FALSE(read_pre_prepare(crypto::seal(key, MessageType::kPrePrepare, "\xff\xff\xff")).has_value());
    EXPECT_FALSE(read_pre_prepare("not an envelope").has_value());
    EXPECT_EQ(header_of("not an envelope"), "");
}

}  // namespace
}  // namespace tally::bft::pbft::testing
