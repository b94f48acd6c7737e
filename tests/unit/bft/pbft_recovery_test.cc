// Recovery after a lost consensus store (`tallyd --recover`, pbft::Config::recovering): the
// replica may have voted in any view up to the network's, so it sends no pre-prepare, prepare,
// commit or NEW-VIEW until a batch holding its own recovery request (made after the loss)
// commits; then it is silent through its view (the view record synced) and votes from the
// next, as after a restart.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "bft/pbft/engine.h"
#include "bft/pbft/stored_records.h"
#include "ledger/tx.h"
#include "tests/unit/bft/pbft_harness.h"

namespace tally::bft::pbft::testing {
namespace {

using crypto::MessageType;

// Found by fuzzing (tests/fuzz/fuzz_store.cc): a replica whose consensus store was set aside
// (--recover) beside a ledger more than 2L blocks on restored the decided slots of its last L
// blocks from the ledger's certificates, at seqs beyond h + 2L (h = 0: no stable record), which
// the log never holds (PbftEngine::check_invariants aborted). It restores only within (h, h + 2L].
TEST(PbftRecovery, ALedgerFurtherThanTwoLAheadOfTheStableCheckpointRestoresNoSlotBeyondIt) {
    Harness h(1);  // L = 8, K = 4
    h.config.recovering = true;
    std::map<uint64_t, std::string> certificates;
    for (uint64_t seq = 1; seq <= 26; ++seq) {
        std::vector<std::string> batch{h.request()};
        pb::CommittedProof proof;
        proof.set_pre_prepare(h.pre_prepare(0, 0, seq, batch));
        for (ReplicaId i = 0; i < 3; ++i)
            proof.add_commits(h.vote(MessageType::kCommit, i, 0, seq, batch_digest(batch)));
        certificates[seq] = proof.SerializeAsString();
    }
    const auto certificate_of = [&](uint64_t seq) { return certificates.at(seq); };
    for (uint64_t executed : {12u, 26u}) {
        h.engine = make_engine(h.config, h.keys[h.id], h.auth);
        Output out = h.engine->on_start({}, executed, crypto::sha256("state"), certificate_of);
        auto* replica = dynamic_cast<PbftEngine*>(h.engine.get());
        ASSERT_NE(replica, nullptr);
        replica->check_invariants();  // aborted at executed = 26 before the fix
        EXPECT_EQ(h.engine->status().last_executed, executed);
        EXPECT_TRUE(out.commit.empty()) << "nothing executes again";
    }
}

// Found by fuzzing (tests/fuzz/fuzz_store.cc): a stored stable checkpoint whose proof does not
// verify is ignored (h = 0), and the slots stored above it (25, 26, within the record's 24 +
// 2L) came back beyond h + 2L = 16. They are not loaded, and the damage is reported.
TEST(PbftRecovery, SlotsBeyondTwoLAboveAStableCheckpointThatDoesNotVerifyAreNotLoaded) {
    Harness h(1);  // L = 8
    pb::StableCheckpoint stable;  // seq 24, no proof
    stable.set_seq(24);
    stable.set_state_digest(hash_bytes(crypto::sha256("state")));
    std::vector<std::pair<std::string, std::string>> records;
    for (uint64_t seq : {25u, 26u}) {
        pb::PreparedProof proof;
        proof.set_pre_prepare(h.pre_prepare(0, 0, seq, {h.request()}));
        records.emplace_back(slot_key(seq, 0, kSlotAccepted), proof.SerializeAsString());
    }
    records.emplace_back(std::string(kKeyStable), stable.SerializeAsString());
    records.emplace_back(std::string(kKeyView), be64(0));
    std::sort(records.begin(), records.end());
    h.engine = make_engine(h.config, h.keys[h.id], h.auth);
    h.engine->on_start(records, 24, crypto::sha256("state"), {});
    auto* replica = dynamic_cast<PbftEngine*>(h.engine.get());
    ASSERT_NE(replica, nullptr);
    replica->check_invariants();  // aborted before the fix: slot 25 > h + 2L
    EXPECT_EQ(h.engine->status().low_water_mark, 0u);
    EXPECT_TRUE(h.detected(Misbehaviour::kBadRecord));
}

// A recovering replica's request (pbft::Config::recovery_request), as the node makes it.
std::string recovery_request_of(Harness& h) {
    return ledger::make_balance_query(h.keys[h.id], h.keys[h.id].public_key(), 77);
}

TEST(PbftRecovery, ARecoveringBackupIsSilentUntilItsOwnRequestCommitsThenVotesOnlyFromTheNextView) {
    Harness h(1);
    h.config.recovering = true;
    h.config.recovery_request = recovery_request_of(h);
    h.restart({});  // an empty store (set aside by --recover) beside the ledger
    EXPECT_TRUE(h.engine->status().recovering);
    std::map<std::string, std::string> store;

    // It asks every peer to order its request (it cannot tell which is the primary).
    Output out = h.engine->on_tick();
    const auto asked = sent(out, MessageType::kForward);
    ASSERT_EQ(asked.size(), 1u);
    pb::Forward forward;
    ASSERT_TRUE(forward.ParseFromString(asked[0].body));
    EXPECT_EQ(forward.own_request(), h.config.recovery_request);

    // A batch without it commits in view 0: it executes it, signs nothing, and still recovers.
    std::vector<std::string> batch{h.request()};
    crypto::Hash d = batch_digest(batch);
    out = h.deliver(h.pre_prepare(0, 0, 1, batch));
    EXPECT_TRUE(sent(out, MessageType::kPrepare).empty()) << "it may have prepared another digest here";
    keep(out, store);
    keep(h.deliver(h.vote(MessageType::kPrepare, 2, 0, 1, d)), store);
    out = h.deliver(h.vote(MessageType::kPrepare, 3, 0, 1, d));
    EXPECT_TRUE(sent(out, MessageType::kCommit).empty()) << "its commits would count toward its own recovery";
    keep(out, store);
    for (ReplicaId r : {0, 2}) keep(h.deliver(h.vote(MessageType::kCommit, r, 0, 1, d)), store);
    out = h.deliver(h.vote(MessageType::kCommit, 3, 0, 1, d));
    ASSERT_EQ(out.commit.size(), 1u);
    EXPECT_TRUE(h.engine->status().recovering) << "2f+1 commits of any batch prove nothing about when they were signed";
    keep(out, store);

    // The batch that holds its request commits: the network was in view 0 after the loss.
    batch = {h.request(), h.config.recovery_request};
    d = batch_digest(batch);
    keep(h.deliver(h.pre_prepare(0, 0, 2, batch)), store);
    for (ReplicaId r : {2, 3}) keep(h.deliver(h.vote(MessageType::kPrepare, r, 0, 2, d)), store);
    for (ReplicaId r : {0, 2}) keep(h.deliver(h.vote(MessageType::kCommit, r, 0, 2, d)), store);
    out = h.deliver(h.vote(MessageType::kCommit, 3, 0, 2, d));
    ASSERT_EQ(out.commit.size(), 1u);
    // Recovery ends, silent through view 0, and says so durably.
    EXPECT_FALSE(h.engine->status().recovering);
    EXPECT_TRUE(out.sync);
    keep(out, store);
    ASSERT_TRUE(store.count(std::string(kKeyView)));
    EXPECT_TRUE(sent(h.engine->on_tick(), MessageType::kForward).empty()) << "it no longer asks";
    EXPECT_TRUE(sent(h.deliver(h.pre_prepare(0, 0, 3, {h.request()})), MessageType::kPrepare).empty())
        << "still silent in the view it may have voted in";

    // A restart after recovery keeps the silence from the view record.
    h.config.recovering = false;
    h.restart({store.begin(), store.end()}, 2);
    EXPECT_FALSE(h.engine->status().recovering);
    EXPECT_TRUE(sent(h.deliver(h.pre_prepare(0, 0, 3, {h.request()})), MessageType::kPrepare).empty());
}

// A review's find (session 32): recovery used to end on 2f+1 commits of any batch in the
// replica's view, and a recovering replica starts in view 0. A traitor (replica 3, primary of
// view 3) replayed view 0's old pre-prepare, prepares and commits of seq 1: recovery ended
// there, silent through view 0 only; the traitor then replayed the NEW-VIEW of view 3 and sent
// another batch for seq 2, and the replica prepared it although it had prepared a different
// one at (3, 2) before it lost its store. With 1's old prepare of that batch, 1, 2 and 3
// committed it while 0 had executed the first: two honest replicas, two batches at one seq.
TEST(PbftRecovery, OldCommitsReplayedByATraitorDoNotEndRecovery) {
    Harness h(2);
    const std::vector<std::string> b0{h.request()}, b{h.request()}, b_other{h.request()};
    const crypto::Hash d0 = batch_digest(b0), d = batch_digest(b);
    // View 0 committed b0 at seq 1; view 3 began with a NEW-VIEW that re-proposes it.
    pb::ViewChange with_cert;
    with_cert.set_new_view(3);
    auto* p = with_cert.add_prepared();
    p->set_pre_prepare(h.header(0, 0, 1, d0));
    for (ReplicaId r : {1, 3}) p->add_prepares(h.vote(MessageType::kPrepare, r, 0, 1, d0));
    pb::NewView nv;
    nv.set_view(3);
    nv.add_view_changes(view_change(h, 0, 3));
    nv.add_view_changes(crypto::seal(h.keys[1], MessageType::kViewChange, with_cert.SerializeAsString()));
    nv.add_view_changes(view_change(h, 3, 3));
    pb::Vote* o = nv.add_reproposals();
    o->set_view(3);
    o->set_seq(1);
    o->set_digest(hash_bytes(d0));
    const std::string nv3 = crypto::seal(h.keys[3], MessageType::kNewView, nv.SerializeAsString());

    // Before the loss: replica 2 enters view 3 and prepares b at seq 2.
    h.deliver(nv3);
    ASSERT_EQ(h.engine->status().view, 3u);
    const auto before = sent(h.deliver(h.pre_prepare(3, 3, 2, b)), MessageType::kPrepare);
    ASSERT_EQ(before.size(), 1u);
    pb::Vote prepared;
    ASSERT_TRUE(prepared.ParseFromString(before[0].body));
    ASSERT_EQ(hash_from_bytes(prepared.digest()), d);

    // Its consensus store is lost: --recover.
    h.config.recovering = true;
    h.config.recovery_request = recovery_request_of(h);
    h.restart({});
    ASSERT_TRUE(h.engine->status().recovering);
    // View 0's old messages of seq 1, replayed (or merely late).
    h.deliver(h.pre_prepare(0, 0, 1, b0));
    for (ReplicaId r : {1, 3}) h.deliver(h.vote(MessageType::kPrepare, r, 0, 1, d0));
    for (ReplicaId r : {0, 1}) h.deliver(h.vote(MessageType::kCommit, r, 0, 1, d0));
    Output out = h.deliver(h.vote(MessageType::kCommit, 3, 0, 1, d0));
    EXPECT_EQ(out.commit.size(), 1u) << "it executes what 2f+1 committed";
    EXPECT_TRUE(h.engine->status().recovering) << "old commits ended its recovery";

    // The old NEW-VIEW of view 3 again, then the traitor's other batch at seq 2.
    h.deliver(nv3);
    out = h.deliver(h.pre_prepare(3, 3, 2, b_other));
    out.append(h.deliver(h.vote(MessageType::kPrepare, 1, 3, 2, batch_digest(b_other))));
    EXPECT_TRUE(sent(out, MessageType::kPrepare).empty()) << "a second PREPARE at (3, 2) for another batch";
    EXPECT_TRUE(sent(out, MessageType::kCommit).empty());
}

// A review's find: replica 0, primary of an idle network's view 0, recovering, sent its request
// to its peers, all backups, and each dropped it (a Forward is for the primary): nothing timed
// out anywhere, and recovery never ended. A backup now holds a peer's own request as a client's:
// its request timer replaces a primary that never orders it.
TEST(PbftRecovery, ABackupHoldsARecoveringPeersRequestSoThatItsTimerReplacesASilentPrimary) {
    Harness h(1);
    const std::string own = ledger::make_balance_query(h.keys[0], h.keys[0].public_key(), 77);
    pb::Forward forward;
    forward.set_own_request(own);
    const std::string from_0 = crypto::seal(h.keys[0], MessageType::kForward, forward.SerializeAsString());
    Output out = h.deliver(from_0);
    ASSERT_EQ(out.forwarded.size(), 1u) << "the backup dropped the primary's own request";
    EXPECT_EQ(out.forwarded[0].payload, own);
    EXPECT_EQ(out.forwarded[0].info.client, h.keys[0].public_key());
    EXPECT_TRUE(h.deliver(from_0).forwarded.empty()) << "a second signature check in one period";
    // Someone else's request, forwarded to a backup, is still not its business, nor is another
    // replica's request claimed as a peer's own.
    pb::Forward other;
    other.add_requests(h.request());
    EXPECT_TRUE(h.deliver(crypto::seal(h.keys[2], MessageType::kForward, other.SerializeAsString())).forwarded.empty());
    EXPECT_TRUE(h.deliver(crypto::seal(h.keys[3], MessageType::kForward, forward.SerializeAsString())).forwarded.empty());

    // Admitted (as the node does), it waits; the primary proposes nothing, and the backup leaves.
    out = h.engine->on_client_request(out.forwarded[0]);
    for (uint64_t t = 0; t <= h.config.view_change_timeout_ticks; ++t) out.append(h.engine->on_tick());
    EXPECT_EQ(sent(out, MessageType::kViewChange).size(), 1u) << "no timer ran for the request";
}

// A review's find: recovery could be left open after the rejoin rule. Replica 1, recovering,
// timed out alone into view 1; catch-up then decided the batch with its request, of view 0,
// while it was between views; its peers' heartbeats took it back to view 0, and nothing then
// ended the recovery in an idle network.
TEST(PbftRecovery, ARejoinToTheViewItsRequestCommittedInEndsRecovery) {
    Harness h(1);
    h.config.recovering = true;
    h.config.recovery_request = recovery_request_of(h);
    h.restart({});
    const std::string request = h.request();
    h.engine->on_client_request(ClientRequest{{h.client.public_key(), h.client_nonce}, request});
    for (uint64_t t = 0; t <= h.config.view_change_timeout_ticks; ++t) h.engine->on_tick();
    ASSERT_TRUE(h.engine->status().view_changing);
    ASSERT_EQ(h.engine->status().view, 1u);

    const std::vector<std::string> batch{request, h.config.recovery_request};
    const crypto::Hash d = batch_digest(batch);
    pb::CommittedReply reply;
    pb::CommittedProof* proof = reply.add_batches();
    proof->set_pre_prepare(h.pre_prepare(0, 0, 1, batch));
    for (ReplicaId r : {0, 2, 3}) proof->add_commits(h.vote(MessageType::kCommit, r, 0, 1, d));
    Output out = h.deliver(crypto::seal(h.keys[0], MessageType::kCommitted, reply.SerializeAsString()));
    ASSERT_EQ(out.commit.size(), 1u);
    h.engine->on_executed(1, crypto::sha256("state"));
    EXPECT_TRUE(h.engine->status().recovering) << "between views: not yet";

    for (ReplicaId r : {0, 2}) h.deliver(h.vote(MessageType::kCommit, r, 0, 1, d));  // heartbeats
    ASSERT_FALSE(h.engine->status().view_changing) << "it did not rejoin view 0";
    ASSERT_EQ(h.engine->status().view, 0u);
    h.engine->on_tick();
    EXPECT_FALSE(h.engine->status().recovering) << "in view 0, where its request committed";
}

// Session 32's note: a batch a replica prepared before it lost its store went into none of its
// VIEW-CHANGEs after its recovery ended, and a NEW-VIEW made of that VIEW-CHANGE and f
// traitors' could then drop a batch that 2f+1 had committed. Replica 1 prepared b at (0, 1) and
// lost its store; it learns only that its request committed at seq 2. It sends no VIEW-CHANGE
// (as the primary of view 1 it builds the NEW-VIEW from 2f+1 of its peers') until its stable
// checkpoint reaches 2 + L, past everything it may have prepared before the loss.
TEST(PbftRecovery, AReplicaThatForgotItsPreparedCertificatesSendsNoViewChangeUntilACheckpointPassesThem) {
    Harness h(1);  // L = 8, K = 4
    const std::vector<std::string> b{h.request()};
    const crypto::Hash d = batch_digest(b);
    ASSERT_EQ(sent(h.deliver(h.pre_prepare(0, 0, 1, b)), MessageType::kPrepare).size(), 1u);
    for (ReplicaId r : {2, 3}) h.deliver(h.vote(MessageType::kPrepare, r, 0, 1, d));

    h.config.recovering = true;
    h.config.recovery_request = recovery_request_of(h);
    h.restart({});
    Store store;
    const auto deliver = [&](const std::string& raw) {
        Output out = h.deliver(raw);
        keep(out, store);
        return out;
    };
    const std::vector<std::string> own{h.config.recovery_request};
    const crypto::Hash d_own = batch_digest(own);
    deliver(h.pre_prepare(0, 0, 2, own));
    for (ReplicaId r : {2, 3}) deliver(h.vote(MessageType::kPrepare, r, 0, 2, d_own));
    for (ReplicaId r : {0, 2, 3}) deliver(h.vote(MessageType::kCommit, r, 0, 2, d_own));
    ASSERT_FALSE(h.engine->status().recovering) << "its request committed in its view";
    EXPECT_EQ(h.engine->status().view_changes_withheld_through, 2u + h.config.watermark_window);

    // View 1 forms without it: it joins, signs no VIEW-CHANGE, and as view 1's primary sends
    // the NEW-VIEW of its three peers' VIEW-CHANGEs.
    Output out;
    for (ReplicaId r : {0, 2, 3}) out.append(deliver(view_change(h, r, 1)));
    EXPECT_TRUE(sent(out, MessageType::kViewChange).empty())
        << "a VIEW-CHANGE without the certificate of (0, 1), which it prepared before the loss";
    const auto new_views = sent(out, MessageType::kNewView);
    ASSERT_EQ(new_views.size(), 1u);
    pb::NewView nv;
    ASSERT_TRUE(nv.ParseFromString(new_views[0].body));
    EXPECT_EQ(nv.view_changes_size(), 3);
    for (const auto& envelope : nv.view_changes())
        EXPECT_NE(crypto::open(envelope)->sender, h.keys[1].public_key());
    ASSERT_EQ(h.engine->status().view, 1u);
    ASSERT_FALSE(h.engine->status().view_changing);

    // A restart (the node cleared its `recovering` mark when the votes resumed) keeps it.
    const std::vector<std::pair<std::string, std::string>> records(store.begin(), store.end());
    ASSERT_TRUE(check_stored_records(records, h.config.watermark_window));
    h.config.recovering = false;
    keep(h.restart(records, 2), store);
    EXPECT_FALSE(h.engine->status().recovering);
    EXPECT_EQ(h.engine->status().view_changes_withheld_through, 2u + h.config.watermark_window);

    // A stable checkpoint at 8 is not past 2 + L = 10; one at 12 is.
    for (ReplicaId r : {0, 2, 3}) deliver(h.checkpoint(r, 8, crypto::sha256("state 8")));
    ASSERT_EQ(h.engine->status().stable_checkpoint, 8u);
    EXPECT_NE(h.engine->status().view_changes_withheld_through, 0u);
    // Two peers move to view 5, whose primary it is: it follows them, without a VIEW-CHANGE.
    out = Output{};
    for (ReplicaId r : {0, 2}) out.append(deliver(view_change(h, r, 5)));
    EXPECT_TRUE(sent(out, MessageType::kViewChange).empty());
    ASSERT_EQ(h.engine->status().view, 5u);
    ASSERT_TRUE(h.engine->status().view_changing);
    for (ReplicaId r : {0, 2, 3}) deliver(h.checkpoint(r, 12, crypto::sha256("state 12")));
    ASSERT_EQ(h.engine->status().stable_checkpoint, 12u);
    EXPECT_EQ(h.engine->status().view_changes_withheld_through, 0u);
    EXPECT_FALSE(store.count(std::string(kKeyForgot))) << "its record outlived it";
    // Whole again, it signs the VIEW-CHANGE it withheld, and with its two peers' makes view 5
    // (a review's find: as the primary it waited for its own, which it never signed).
    out = h.engine->on_tick();
    EXPECT_EQ(sent(out, MessageType::kViewChange).size(), 1u);
    EXPECT_EQ(sent(out, MessageType::kNewView).size(), 1u);
    EXPECT_FALSE(h.engine->status().view_changing);
}

TEST(PbftRecovery, ARecoveringPrimaryProposesNothing) {
    Harness h(0);
    h.config.recovering = true;
    h.restart({});
    Output out = h.engine->on_client_request(ClientRequest{{}, h.request()});
    for (int i = 0; i < 5; ++i) out.append(h.engine->on_tick());
    EXPECT_TRUE(sent(out, MessageType::kPrePrepare).empty());
}

TEST(PbftRecovery, WithoutRecoveryAnEmptyStoreVotesAtOnce) {
    // What --recover guards against: a store that lost its records looks like a first start.
    Harness h(1);
    h.restart({});
    EXPECT_EQ(sent(h.deliver(h.pre_prepare(0, 0, 1, {h.request()})), MessageType::kPrepare).size(), 1u);
}

}  // namespace
}  // namespace tally::bft::pbft::testing
