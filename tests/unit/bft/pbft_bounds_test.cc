// PBFT against one traitor: liveness and resource bounds (issue 10, section 2). Each test
// drives one engine directly, as pbft_rules_test.cc does, and is named after what a traitor
// can no longer do.
#include <gtest/gtest.h>

#include <chrono>
#include <map>

#include "tests/unit/bft/pbft_harness.h"

namespace tally::bft::pbft::testing {
namespace {

using crypto::MessageType;

// Drives seq through the normal case at `h` (a backup of view `view`): the primary's
// pre-prepare, prepares and commits from every other replica; executes what commits (state
// digest zero) and makes each checkpoint stable, so the window keeps moving.
Output commit_batch(Harness& h, uint64_t view, uint64_t seq, const std::vector<std::string>& batch) {
    const ReplicaId primary = static_cast<ReplicaId>(view % h.keys.size());
    crypto::Hash d = batch_digest(batch);
    Output all = h.deliver(h.pre_prepare(primary, view, seq, batch));
    for (ReplicaId r = 0; r < h.keys.size(); ++r) {
        if (r == h.id) continue;
        if (r != primary) all.append(h.deliver(h.vote(MessageType::kPrepare, r, view, seq, d)));
        all.append(h.deliver(h.vote(MessageType::kCommit, r, view, seq, d)));
    }
    for (const auto& c : all.commit) {
        all.append(h.engine->on_executed(c.seq, crypto::Hash{}));
        if (c.seq % h.config.checkpoint_interval == 0)
            for (ReplicaId r = 0; r < h.keys.size(); ++r)
                if (r != h.id) all.append(h.deliver(h.checkpoint(r, c.seq, crypto::Hash{})));
    }
    return all;
}

bool proposes(const Output& out, const std::string& request) {
    for (const auto& env : sent(out, MessageType::kPrePrepare)) {
        pb::PrePrepare pp;
        if (!pp.ParseFromString(env.body)) continue;
        for (const auto& r : pp.requests())
            if (r == request) return true;
    }
    return false;
}

// --- Forwarded requests -------------------------------------------------------------------

// A backup's Forward (PBFT.md rule 8) could carry anything signed: bytes that executed already,
// transfers from keys without an account. The primary's engine cannot tell (the ledger knows),
// so it proposes none of them itself: it hands them to the node (Output::forwarded), whose
// admission decides as for its own clients' requests, and proposes what comes back through
// on_client_request. A forged one still costs the traitor a detection and no more.
TEST(PbftForward, APrimaryHandsForwardedRequestsToItsCallerAndProposesOnlyWhatComesBack) {
    Harness h(0);
    const std::string request = h.request();
    pb::Forward forward;
    forward.add_requests(request);
    Output out = h.deliver(crypto::seal(h.keys[1], MessageType::kForward, forward.SerializeAsString()));
    ASSERT_EQ(out.forwarded.size(), 1u);
    EXPECT_EQ(out.forwarded[0].payload, request);
    EXPECT_EQ(out.forwarded[0].info.client, h.client.public_key());
    EXPECT_EQ(out.forwarded[0].info.nonce, 1u);
    EXPECT_FALSE(proposes(out, request)) << "the engine ordered a forwarded request no one admitted";
    EXPECT_TRUE(proposes(h.engine->on_client_request(out.forwarded[0]), request));

    pb::Forward forged;
    forged.add_requests(ledger::make_transfer(key_of(102), key_of(101).public_key(), 1, 1) + "x");
    EXPECT_TRUE(h.deliver(crypto::seal(h.keys[2], MessageType::kForward, forged.SerializeAsString()))
                    .forwarded.empty());
    EXPECT_TRUE(h.detected(Misbehaviour::kForgedRequest));
}

// --- Censorship --------------------------------------------------------------------------

TEST(PbftCensorship, APrimaryThatLeavesOneRequestOutWhileCommittingOthersIsReplaced) {
    Harness h(1);  // a backup of view 0, and the primary of view 1
    crypto::KeyPair censored_client = key_of(200);
    std::string censored = ledger::make_transfer(censored_client, key_of(101).public_key(), 5, 1);
    h.engine->on_client_request(ClientRequest{{censored_client.public_key(), 1}, censored});
    // The traitor primary commits another client's request every three ticks, never this one.
    Output all;
    uint64_t seq = 0;
    for (uint64_t t = 0; t < 4 * h.config.view_change_timeout_ticks; ++t) {
        all.append(h.engine->on_tick());
        if (h.engine->status().view_changing) break;
        if (t % 3 == 0) all.append(commit_batch(h, 0, ++seq, {h.request()}));
    }
    ASSERT_GE(seq, 3u) << "the primary kept committing";
    ASSERT_EQ(sent(all, MessageType::kViewChange).size(), 1u)
        << "other clients' batches restarted the timer of the waiting request";
    EXPECT_EQ(h.engine->status().view, 1u);
    // View 1 forms; its primary proposes the censored request first.
    h.deliver(view_change(h, 2, 1));
    Output nv = h.deliver(view_change(h, 3, 1));
    ASSERT_EQ(sent(nv, MessageType::kNewView).size(), 1u);
    EXPECT_TRUE(proposes(nv, censored));
}

TEST(PbftCensorship, EmptyBatchesAreNoProgressForAWaitingRequest) {
    Harness h(1);
    h.engine->on_client_request(ClientRequest{{h.client.public_key(), 1}, h.request()});
    Output all;
    uint64_t seq = 0;
    for (uint64_t t = 0; t < 2 * h.config.view_change_timeout_ticks && !h.engine->status().view_changing; ++t) {
        all.append(h.engine->on_tick());
        if (t % 2 == 0) all.append(commit_batch(h, 0, ++seq, {}));
    }
    EXPECT_EQ(sent(all, MessageType::kViewChange).size(), 1u);
}

// --- Back-off ----------------------------------------------------------------------------

TEST(PbftBackOff, TheDoubledTimeoutHoldsInTheNewViewUntilARequestExecutesThere) {
    Harness h(3);
    const uint64_t t_ticks = h.config.view_change_timeout_ticks;
    const std::string waiting = h.request();
    h.engine->on_client_request(ClientRequest{{h.client.public_key(), 1}, waiting});
    Output first;
    for (uint64_t t = 0; t < t_ticks; ++t) first.append(h.engine->on_tick());
    ASSERT_EQ(h.engine->status().view, 1u);
    h.deliver(view_change(h, 0, 1));
    h.deliver(view_change(h, 2, 1));  // 2f+1 for view 1; its NEW-VIEW never comes
    Output second;
    for (uint64_t t = 0; t <= t_ticks && h.engine->status().view == 1; ++t) second.append(h.engine->on_tick());
    ASSERT_EQ(h.engine->status().view, 2u);
    auto own = sent(second, MessageType::kViewChange);
    ASSERT_EQ(own.size(), 1u);
    // View 2 begins (primary 2), with the request still waiting.
    pb::NewView nv;
    nv.set_view(2);
    nv.add_view_changes(view_change(h, 0, 2));
    nv.add_view_changes(view_change(h, 2, 2));
    nv.add_view_changes(crypto::seal(h.keys[3], MessageType::kViewChange, own[0].body));
    h.deliver(crypto::seal(h.keys[2], MessageType::kNewView, nv.SerializeAsString()));
    ASSERT_FALSE(h.engine->status().view_changing);
    ASSERT_EQ(h.engine->status().view, 2u);
    // Slower than T, faster than 2T: the new view is kept.
    Output slow;
    for (uint64_t t = 0; t + 1 < 2 * t_ticks; ++t) slow.append(h.engine->on_tick());
    EXPECT_TRUE(sent(slow, MessageType::kViewChange).empty())
        << "the timeout went back to T on entering the view";
    // Once a request executes in view 2, T is back.
    ASSERT_EQ(commit_batch(h, 2, 1, {waiting}).commit.size(), 1u);
    h.engine->on_client_request(ClientRequest{{h.client.public_key(), 9}, h.request()});
    Output after;
    for (uint64_t t = 0; t + 1 < t_ticks; ++t) after.append(h.engine->on_tick());
    EXPECT_TRUE(sent(after, MessageType::kViewChange).empty());
    after.append(h.engine->on_tick());
    EXPECT_EQ(sent(after, MessageType::kViewChange).size(), 1u);
}

// --- Proof checking ----------------------------------------------------------------------

std::string view_change_with_checkpoint_proof(const Harness& h, ReplicaId from, uint64_t new_view,
                                              const std::vector<std::string>& proof) {
    pb::ViewChange vc;
    vc.set_new_view(new_view);
    vc.set_stable_seq(4);
    vc.set_stable_digest(hash_bytes(crypto::Hash{}));
    for (const auto& e : proof) vc.add_checkpoint_proof(e);
    return crypto::seal(h.keys[from], MessageType::kViewChange, vc.SerializeAsString());
}

TEST(PbftProofs, ACheckpointProofWithADuplicateOrAnExtraEntryIsRefused) {
    Harness h(1);
    const auto cp = [&](ReplicaId r) { return h.checkpoint(r, 4, crypto::Hash{}); };
    h.deliver(view_change_with_checkpoint_proof(h, 2, 1, {cp(0), cp(0), cp(2), cp(3)}));
    EXPECT_TRUE(h.detected(Misbehaviour::kBadViewChange))
        << "a duplicate was counted away, not refused";
    h.deliver(view_change_with_checkpoint_proof(h, 2, 1, {cp(0), cp(1), cp(2), cp(3)}));
    EXPECT_TRUE(h.detected(Misbehaviour::kBadViewChange)) << "more than 2f+1 entries";
    h.deliver(view_change_with_checkpoint_proof(h, 2, 1, {cp(0), cp(2), cp(3)}));
    EXPECT_FALSE(h.detected(Misbehaviour::kBadViewChange)) << "exactly 2f+1 distinct: a proof";
}

TEST(PbftProofs, AViewChangeHoldingTensOfThousandsOfCopiesOfOneCheckpointCostsNoSignatureCheck) {
    Harness h(1);
    std::vector<std::string> proof(30000, h.checkpoint(0, 4, crypto::Hash{}));
    std::string raw = view_change_with_checkpoint_proof(h, 2, 1, proof);
    ASSERT_LT(raw.size(), crypto::kEnvelopeMaxBytes);
    auto envelope = crypto::open(raw);  // as the transport does, before the engine sees it
    ASSERT_TRUE(envelope.ok());
    const uint64_t before = crypto::verifications_on_this_thread();
    h.engine->on_message(2, *envelope, raw);
    EXPECT_TRUE(h.detected(Misbehaviour::kBadViewChange));
    // 30,000 Ed25519 verifications would take seconds: refused on its shape, it costs none
    // (the caller opened the envelope itself; the engine checks nothing inside it).
    EXPECT_EQ(crypto::verifications_on_this_thread() - before, 0u);
}

TEST(PbftProofs, APreparedProofWithADuplicatePrepareIsRefused) {
    Harness h(1);
    std::vector<std::string> batch{h.request()};
    crypto::Hash d = batch_digest(batch);
    pb::ViewChange vc;
    vc.set_new_view(1);
    auto* p = vc.add_prepared();
    p->set_pre_prepare(h.header(0, 0, 1, d));
    p->add_prepares(h.vote(MessageType::kPrepare, 2, 0, 1, d));
    p->add_prepares(h.vote(MessageType::kPrepare, 2, 0, 1, d));
    p->add_prepares(h.vote(MessageType::kPrepare, 3, 0, 1, d));
    h.deliver(crypto::seal(h.keys[2], MessageType::kViewChange, vc.SerializeAsString()));
    EXPECT_TRUE(h.detected(Misbehaviour::kBadViewChange));
}

// --- Memory bounds -----------------------------------------------------------------------

TEST(PbftMemory, AVotePaddedWithAnUnknownFieldIsRefused) {
    Harness h(1);
    std::vector<std::string> batch{h.request()};
    crypto::Hash d = batch_digest(batch);
    h.deliver(h.pre_prepare(0, 0, 1, batch));
    pb::Vote vote;
    vote.set_view(0);
    vote.set_seq(1);
    vote.set_digest(hash_bytes(d));
    std::string body = vote.SerializeAsString();
    // Field 15, length-delimited, 1 MiB of padding: proto3 parses it as an unknown field.
    std::string pad(1u << 20, 'x');
    body += static_cast<char>((15 << 3) | 2);
    uint64_t len = pad.size();
    while (len >= 0x80) {
        body += static_cast<char>((len & 0x7f) | 0x80);
        len >>= 7;
    }
    body += static_cast<char>(len);
    body += pad;
    Output out = h.deliver(crypto::seal(h.keys[2], MessageType::kPrepare, body));
    EXPECT_TRUE(h.detected(Misbehaviour::kMalformed));
    EXPECT_TRUE(sent(out, MessageType::kCommit).empty()) << "the padded prepare was counted";
    // The same field twice (the last one wins in protobuf) is not canonical either.
    std::string twice = vote.SerializeAsString() + vote.SerializeAsString();
    h.deliver(crypto::seal(h.keys[2], MessageType::kPrepare, twice));
    EXPECT_TRUE(h.detected(Misbehaviour::kMalformed));
}

TEST(PbftMemory, OneTraitorFloodingMessagesForTheNextViewCannotPushOutAnHonestReplicasOwn) {
    Harness h(3);
    h.deliver(view_change(h, 0, 1));
    Output joined = h.deliver(view_change(h, 2, 1));  // f+1: joins view 1, not entered yet
    auto own = sent(joined, MessageType::kViewChange);
    ASSERT_EQ(own.size(), 1u);
    // View 1's primary pre-prepares before this replica saw its NEW-VIEW: kept for later.
    std::vector<std::string> batch{h.request()};
    h.deliver(h.pre_prepare(1, 1, 1, batch));
    // The traitor sends thousands of view-1 messages.
    for (uint64_t i = 0; i < 5000; ++i) h.deliver(h.vote(MessageType::kCommit, 2, 1, 2 + i % 6, crypto::Hash{}));
    EXPECT_TRUE(h.detected(Misbehaviour::kFutureOverflow));
    pb::NewView nv;
    nv.set_view(1);
    nv.add_view_changes(view_change(h, 0, 1));
    nv.add_view_changes(view_change(h, 2, 1));
    nv.add_view_changes(crypto::seal(h.keys[3], MessageType::kViewChange, own[0].body));
    Output entered = h.deliver(crypto::seal(h.keys[1], MessageType::kNewView, nv.SerializeAsString()));
    ASSERT_EQ(h.engine->status().view, 1u);
    EXPECT_EQ(sent(entered, MessageType::kPrepare).size(), 1u) << "the primary's pre-prepare was lost";
}

// --- Amplification -----------------------------------------------------------------------

std::string fetch_committed(const Harness& h, ReplicaId from, uint64_t from_seq) {
    pb::FetchCommitted req;
    req.set_from_seq(from_seq);
    return crypto::seal(h.keys[from], MessageType::kFetchCommitted, req.SerializeAsString());
}

TEST(PbftAmplification, FetchCommittedIsAnsweredAtMostOncePerPeerPerInterval) {
    Harness h(1);
    ASSERT_EQ(commit_batch(h, 0, 1, {h.request()}).commit.size(), 1u);
    EXPECT_EQ(sent(h.deliver(fetch_committed(h, 2, 1)), MessageType::kCommitted).size(), 1u);
    EXPECT_TRUE(sent(h.deliver(fetch_committed(h, 2, 1)), MessageType::kCommitted).empty())
        << "a peer asking again at once gets the batches again";
    EXPECT_TRUE(h.detected(Misbehaviour::kFetchFlood));
    EXPECT_EQ(sent(h.deliver(fetch_committed(h, 3, 1)), MessageType::kCommitted).size(), 1u)
        << "per peer";
    for (uint64_t t = 0; t < h.config.retransmit_ticks; ++t) h.engine->on_tick();
    EXPECT_EQ(sent(h.deliver(fetch_committed(h, 2, 1)), MessageType::kCommitted).size(), 1u);
}

TEST(PbftAmplification, AStaleViewChangeGetsTheNewViewBackOnlyWhenValidAndAtMostOncePerInterval) {
    Harness h(1);  // becomes the primary of view 1
    h.deliver(view_change(h, 2, 1));
    ASSERT_EQ(sent(h.deliver(view_change(h, 3, 1)), MessageType::kNewView).size(), 1u);
    ASSERT_FALSE(h.engine->status().view_changing);
    // A forged certificate: not answered.
    std::vector<std::string> batch{h.request()};
    pb::ViewChange forged;
    forged.set_new_view(1);
    forged.add_prepared()->set_pre_prepare(h.header(0, 0, 1, batch_digest(batch)));
    Output bad = h.deliver(crypto::seal(h.keys[3], MessageType::kViewChange, forged.SerializeAsString()));
    EXPECT_TRUE(sent(bad, MessageType::kNewView).empty());
    EXPECT_EQ(sent(h.deliver(view_change(h, 2, 1)), MessageType::kNewView).size(), 1u);
    EXPECT_TRUE(sent(h.deliver(view_change(h, 2, 1)), MessageType::kNewView).empty())
        << "every stale view change got the whole NEW-VIEW back";
}

// Seed 3217840's honest replicas counted 113 `bad_sender`: a stale VIEW-CHANGE from the new
// view's own primary got its NEW-VIEW back, which it took for its own message come back.
TEST(PbftAmplification, TheNewViewIsNeverSentBackToItsOwnSigner) {
    Harness h(2);
    h.deliver(view_change(h, 0, 1));
    auto own = sent(h.deliver(view_change(h, 3, 1)), MessageType::kViewChange);
    ASSERT_EQ(own.size(), 1u);
    pb::NewView nv;
    nv.set_view(1);
    nv.add_view_changes(view_change(h, 0, 1));
    nv.add_view_changes(view_change(h, 3, 1));
    nv.add_view_changes(crypto::seal(h.keys[2], MessageType::kViewChange, own[0].body));
    h.deliver(crypto::seal(h.keys[1], MessageType::kNewView, nv.SerializeAsString()));
    ASSERT_FALSE(h.engine->status().view_changing);
    EXPECT_TRUE(sent(h.deliver(view_change(h, 1, 1)), MessageType::kNewView).empty());
    EXPECT_EQ(sent(h.deliver(view_change(h, 3, 1)), MessageType::kNewView).size(), 1u);
}

// --- Lone rejoin ---------------------------------------------------------------------------

// A request that does not execute in view 0 takes the replica under test to view 1 alone (its
// peers send nothing). Returns the request's batch.
std::vector<std::string> strand_in_view_1(Harness& h) {
    std::vector<std::string> batch{h.request()};
    h.engine->on_client_request(ClientRequest{{h.client.public_key(), 1}, batch[0]});
    for (uint64_t t = 0; t < h.config.view_change_timeout_ticks; ++t) h.engine->on_tick();
    return batch;
}

TEST(PbftRejoin, AReplicaThatChangedViewAloneRejoinsTheViewFPlusOnePeersShowAndExecutesSilently) {
    Harness h(3);
    const std::vector<std::string> batch = strand_in_view_1(h);
    ASSERT_TRUE(h.engine->status().view_changing);
    ASSERT_EQ(h.engine->status().view, 1u);
    // The others stayed in view 0 and go on: their messages of view 0 are the proof.
    Output out = commit_batch(h, 0, 1, batch);
    EXPECT_FALSE(h.engine->status().view_changing) << "still waiting for a view change no one else makes";
    EXPECT_EQ(h.engine->status().view, 0u);
    // The primary's retransmissions (what it sent while this replica was away).
    out.append(h.deliver(h.pre_prepare(0, 0, 1, batch)));
    out.append(h.deliver(h.vote(MessageType::kCommit, 0, 0, 1, batch_digest(batch))));
    EXPECT_EQ(out.commit.size(), 1u) << "it executes what its peers commit in view 0";
    EXPECT_TRUE(sent(out, MessageType::kPrepare).empty()) << "silent in the view it left";
    EXPECT_TRUE(sent(out, MessageType::kCommit).empty()) << "silent in the view it left";
}

// Seed 7953: replica 1, primary of view 1, signed a NEW-VIEW for view 1, moved on to view 2
// and lost power. Restarted between views (its view record: view 2), it rejoined view 0,
// where its peers were, then timed out there and signed a VIEW-CHANGE and a second, different
// NEW-VIEW for view 1. Having left for view 2, it never signs for a view below it again.
TEST(PbftRejoin, AReplicaThatRejoinedALowerViewNeverSignsForAViewBelowTheOneItLeft) {
    Harness h(1);
    Output out = h.restart({{std::string(kKeyView), be64(2) + std::string(1, '\0')}});
    ASSERT_EQ(h.engine->status().view, 2u);
    ASSERT_TRUE(h.engine->status().view_changing);
    // Its peers show progress in view 0: it rejoins it.
    std::vector<std::string> batch{h.request()};
    out.append(commit_batch(h, 0, 1, batch));
    ASSERT_EQ(h.engine->status().view, 0u);
    ASSERT_FALSE(h.engine->status().view_changing);
    // View 0's primary then goes quiet: a request times out there.
    out = h.engine->on_client_request(ClientRequest{{h.client.public_key(), 2}, h.request()});
    for (uint64_t t = 0; t < 4 * h.config.view_change_timeout_ticks; ++t) out.append(h.engine->on_tick());
    const auto changes = sent(out, MessageType::kViewChange);
    ASSERT_FALSE(changes.empty()) << "it never left view 0";
    for (const auto& env : changes) {
        pb::ViewChange vc;
        ASSERT_TRUE(vc.ParseFromString(env.body));
        EXPECT_GE(vc.new_view(), 2u) << "a VIEW-CHANGE for a view below the one it had left";
    }
}

// A review's find: the view record went down below a VIEW-CHANGE the replica had signed.
// Replica 2 left view 0 alone and joined view 3 (signing VIEW-CHANGE(3)); after a restart, its
// peers' messages of view 0 took it back there (silent below 3), and a NEW-VIEW for view 1 then
// came, was entered, and its record written: (1, active). A second restart left it silent
// through view 1 only, and it signed a NEW-VIEW and a PRE-PREPARE for view 2 (whose primary it
// is): a view its VIEW-CHANGE(3) reports nothing of, so a NEW-VIEW(3) built from that
// VIEW-CHANGE could drop what it helped commit in view 2. The record keeps the view it left.
TEST(PbftRejoin, ARestartAfterEnteringAViewBelowTheOneItLeftKeepsItSilentBelowThatOne) {
    Harness h(2);
    Store store;
    keep(h.engine->on_client_request(ClientRequest{{h.client.public_key(), 1}, h.request()}), store);
    for (uint64_t t = 0; t <= h.config.view_change_timeout_ticks; ++t) keep(h.engine->on_tick(), store);
    ASSERT_EQ(h.engine->status().view, 1u);
    keep(h.deliver(view_change(h, 0, 3)), store);
    Output out = h.deliver(view_change(h, 3, 3));
    keep(out, store);
    ASSERT_EQ(h.engine->status().view, 3u);
    ASSERT_EQ(sent(out, MessageType::kViewChange).size(), 1u) << "it signed VIEW-CHANGE(3)";

    keep(h.restart({store.begin(), store.end()}), store);  // (3, changing views)
    const std::vector<std::string> batch{h.request()};
    keep(h.deliver(h.pre_prepare(0, 0, 1, batch)), store);
    keep(h.deliver(h.vote(MessageType::kPrepare, 1, 0, 1, batch_digest(batch))), store);
    ASSERT_EQ(h.engine->status().view, 0u) << "f+1 peers in view 0 did not take it back there";
    pb::NewView nv;
    nv.set_view(1);
    for (ReplicaId r : {0, 1, 3}) nv.add_view_changes(view_change(h, r, 1));
    keep(h.deliver(crypto::seal(h.keys[1], MessageType::kNewView, nv.SerializeAsString())), store);
    ASSERT_EQ(h.engine->status().view, 1u);
    ASSERT_FALSE(h.engine->status().view_changing);

    out = h.restart({store.begin(), store.end()});
    EXPECT_EQ(h.engine->status().view, 1u);
    out.append(h.engine->on_client_request(ClientRequest{{h.client.public_key(), 2}, h.request()}));
    for (uint64_t t = 0; t <= h.config.view_change_timeout_ticks; ++t) out.append(h.engine->on_tick());
    out.append(h.deliver(view_change(h, 0, 2)));
    out.append(h.deliver(view_change(h, 3, 2)));
    EXPECT_TRUE(sent(out, MessageType::kNewView).empty()) << "a NEW-VIEW for view 2 after VIEW-CHANGE(3)";
    EXPECT_TRUE(sent(out, MessageType::kPrePrepare).empty()) << "a PRE-PREPARE in view 2 after VIEW-CHANGE(3)";
    for (const auto& env : sent(out, MessageType::kViewChange)) {
        pb::ViewChange vc;
        ASSERT_TRUE(vc.ParseFromString(env.body));
        EXPECT_GE(vc.new_view(), 3u) << "a VIEW-CHANGE for a view below the one it had left";
    }
}

// Seed 2624410396 (the randomized node search): replica 0, left behind in a view change, joined
// view 2 on two peers' VIEW-CHANGEs and, in the same turn, went back to view 1 on the same two
// peers' older COMMITs of view 1. It then prepared a batch of view 1 that the VIEW-CHANGE it had
// just signed did not carry. A peer whose VIEW-CHANGE for a later view it holds has left the
// view it signed those messages in: they are no evidence that f+1 peers are still there.
TEST(PbftRejoin, PeersWhoseViewChangeForALaterViewItHoldsDoNotPullItBackToAnEarlierView) {
    Harness h(3);
    const std::vector<std::string> batch = strand_in_view_1(h);
    ASSERT_EQ(h.engine->status().view, 1u);
    // Two peers (f+1) ask for view 2: it joins them.
    h.deliver(view_change(h, 1, 2));
    h.deliver(view_change(h, 2, 2));
    ASSERT_EQ(h.engine->status().view, 2u);
    ASSERT_TRUE(h.engine->status().view_changing);
    (void)h.detected(Misbehaviour::kRejoinedView);  // (clears what was detected so far)
    // Their messages of view 0, signed before they left it, arrive late, with the primary's.
    commit_batch(h, 0, 1, batch);
    EXPECT_EQ(h.engine->status().view, 2u) << "pulled back to view 0 by what its peers signed before they left it";
    EXPECT_TRUE(h.engine->status().view_changing);
    EXPECT_FALSE(h.detected(Misbehaviour::kRejoinedView));
}

// The same rule for a message noted before its signer's VIEW-CHANGE arrived: from then on it
// no longer counts; f+1 other peers still in the view do.
TEST(PbftRejoin, APeersMessageNotedBeforeItsViewChangeForALaterViewStopsCounting) {
    Harness h(3);
    const std::vector<std::string> batch = strand_in_view_1(h);
    ASSERT_EQ(h.engine->status().view, 1u);
    const crypto::Hash d = batch_digest(batch);
    h.deliver(h.vote(MessageType::kPrepare, 1, 0, 1, d));  // replica 1, still in view 0
    h.deliver(view_change(h, 1, 2));                       // then asking for view 2, alone
    ASSERT_EQ(h.engine->status().view, 1u);
    (void)h.detected(Misbehaviour::kRejoinedView);  // (clears what was detected so far)
    h.deliver(h.pre_prepare(0, 0, 1, batch));  // view 0's primary
    EXPECT_EQ(h.engine->status().view, 1u) << "replica 1's prepare, signed before it left view 0, counted";
    EXPECT_FALSE(h.detected(Misbehaviour::kRejoinedView));
    h.deliver(h.vote(MessageType::kPrepare, 2, 0, 1, d));  // a second peer still in view 0: f+1
    EXPECT_EQ(h.engine->status().view, 0u) << "f+1 peers in view 0, none of them gone, did not bring it back";
    EXPECT_TRUE(h.detected(Misbehaviour::kRejoinedView));
}

// n = 7: f+1 peers asking for view 2 and f+1 others still showing view 0. Joining view 2 and
// rejoining view 0 would each be justified, and each would undo the other on the next message;
// f+1 peers asking for a later view win (at least one honest replica has left view 0).
TEST(PbftRejoin, FPlusOnePeersAskingForALaterViewOutweighFPlusOneShowingAnEarlierOne) {
    Harness h(6, 2);
    const std::vector<std::string> batch = strand_in_view_1(h);
    ASSERT_EQ(h.engine->status().view, 1u);
    for (ReplicaId r : {1, 2, 3}) h.deliver(view_change(h, r, 2));
    ASSERT_EQ(h.engine->status().view, 2u);
    (void)h.detected(Misbehaviour::kRejoinedView);
    const crypto::Hash d = batch_digest(batch);
    h.deliver(h.pre_prepare(0, 0, 1, batch));
    for (ReplicaId r : {4, 5}) h.deliver(h.vote(MessageType::kPrepare, r, 0, 1, d));
    EXPECT_EQ(h.engine->status().view, 2u);
    EXPECT_TRUE(h.engine->status().view_changing);
    EXPECT_FALSE(h.detected(Misbehaviour::kRejoinedView));
}

// A sender's VIEW-CHANGEs are kept one, its highest: a traitor sending them for views K, K-1,
// ... cannot make the replica hold one per view.
TEST(PbftBounds, AViewChangeBelowOneItsSenderAlreadySentIsNotKept) {
    Harness h(2);  // the primary of view 2
    h.deliver(view_change(h, 0, 3));
    h.deliver(view_change(h, 0, 2));                // below replica 0's own for view 3: not kept
    Output out = h.deliver(view_change(h, 1, 2));  // f+1 above its view: it joins view 2
    ASSERT_EQ(h.engine->status().view, 2u);
    EXPECT_TRUE(sent(out, MessageType::kNewView).empty())
        << "replica 0's VIEW-CHANGE for view 2, sent after its one for view 3, was kept and counted";
    out = h.deliver(view_change(h, 3, 2));
    EXPECT_EQ(sent(out, MessageType::kNewView).size(), 1u) << "2f+1 VIEW-CHANGEs for view 2, and no NEW-VIEW";
}

// --- Oversized batches -------------------------------------------------------------------

TEST(PbftOversized, ABackupRefusesAPrePreparePaddedBeyondItsFields) {
    Harness h(1);
    std::vector<std::string> batch{h.request()};
    pb::PrePrepare pp;
    pp.set_view(0);
    pp.set_seq(1);
    pp.set_digest(hash_bytes(batch_digest(batch)));
    pp.add_requests(batch[0]);
    pp.set_header(h.header(0, 0, 1, batch_digest(batch)));
    std::string body = pp.SerializeAsString();
    // An unknown field of 3 MiB: once prepared it would ride in every VIEW-CHANGE and NEW-VIEW.
    std::string pad(3u << 20, 'p');
    body += static_cast<char>((9 << 3) | 2);
    uint64_t len = pad.size();
    while (len >= 0x80) {
        body += static_cast<char>((len & 0x7f) | 0x80);
        len >>= 7;
    }
    body += static_cast<char>(len);
    body += pad;
    const std::string padded = crypto::seal(h.keys[0], MessageType::kPrePrepare, body);
    // Its header binds it, but its body is not one a replica reads: the transport's check of
    // a pre-prepare refuses it, and so does the engine.
    EXPECT_FALSE(pre_prepare_authentic(*crypto::open(padded)));
    Output out = h.deliver_unchecked(padded);
    EXPECT_TRUE(sent(out, MessageType::kPrepare).empty());
    EXPECT_TRUE(h.detected(Misbehaviour::kMalformed));
}

TEST(PbftOversized, ABackupRefusesABatchOfMoreThanBatchBytesMaxAndThePrimaryNeverProposesOne) {
    Harness h(1);
    h.config.batch_bytes_max = 500;  // two transfers fit, three do not
    h.restart({});
    std::vector<std::string> batch{h.request(), h.request(), h.request()};
    ASSERT_GT(batch[0].size() * 3, 500u);
    ASSERT_LE(batch[0].size() * 2, 500u);
    Output out = h.deliver(h.pre_prepare(0, 0, 1, batch));
    EXPECT_TRUE(sent(out, MessageType::kPrepare).empty());
    EXPECT_TRUE(h.detected(Misbehaviour::kOversizedBatch));

    Harness p(0);
    p.config.batch_bytes_max = 500;
    p.config.pipeline_depth = 1;
    p.restart({});
    Output proposed;
    for (int i = 0; i < 3; ++i) proposed.append(p.engine->on_client_request(ClientRequest{{}, p.request()}));
    auto pps = sent(proposed, MessageType::kPrePrepare);
    ASSERT_EQ(pps.size(), 1u);  // one in flight; two more wait
    pb::PrePrepare first;
    ASSERT_TRUE(first.ParseFromString(pps[0].body));
    crypto::Hash d = hash_from_bytes(first.digest());
    p.engine->on_client_request(ClientRequest{{}, p.request()});  // three wait now
    for (ReplicaId r : {1u, 2u}) p.deliver(p.vote(MessageType::kPrepare, r, 0, 1, d));
    Output committed;
    for (ReplicaId r : {1u, 2u}) committed.append(p.deliver(p.vote(MessageType::kCommit, r, 0, 1, d)));
    ASSERT_EQ(committed.commit.size(), 1u);
    Output next = p.engine->on_executed(1, crypto::Hash{});
    auto second = sent(next, MessageType::kPrePrepare);
    ASSERT_EQ(second.size(), 1u);
    pb::PrePrepare pp;
    ASSERT_TRUE(pp.ParseFromString(second[0].body));
    EXPECT_EQ(pp.requests_size(), 2) << "three waiting requests, two fit in batch_bytes_max";
}

// --- View changes that stay small under load ---------------------------------------------

// Honest load alone used to break view changes: every VIEW-CHANGE carried each prepared
// certificate above the stable checkpoint with its whole batch, and a NEW-VIEW 2f+1 of them,
// past the 8 MiB envelope limit with ~40 full batches. A certificate now carries the
// primary's signed header instead: a VIEW-CHANGE weighs about a kilobyte per certificate,
// whatever the batches weigh, and the new primary re-proposes from the batches it holds.
TEST(PbftViewChangeUnderLoad, LCertificatesOfFullBatchesMakeASmallViewChangeAndAllAreReproposed) {
    Harness h(1);  // a backup of view 0, primary of view 1
    h.config.watermark_window = 32;
    h.config.checkpoint_interval = 32;
    h.config.batch_size_max = 64;
    h.restart({});
    const uint64_t window = h.config.watermark_window;
    size_t batch_bytes = 0;
    for (uint64_t seq = 1; seq <= window; ++seq) {  // L certificates outstanding
        std::vector<std::string> batch;
        for (int i = 0; i < 64; ++i) batch.push_back(h.request());
        for (const auto& r : batch) batch_bytes += r.size();
        const crypto::Hash d = batch_digest(batch);
        h.deliver(h.pre_prepare(0, 0, seq, batch));
        h.deliver(h.vote(MessageType::kPrepare, 2, 0, seq, d));
    }
    h.deliver(view_change(h, 2, 1));
    Output out = h.deliver(view_change(h, 3, 1));  // f+1: it joins, and holds 2f+1 with its own
    auto own = sent(out, MessageType::kViewChange);
    ASSERT_EQ(own.size(), 1u);
    pb::ViewChange vc;
    ASSERT_TRUE(vc.ParseFromString(own[0].body));
    EXPECT_EQ(static_cast<uint64_t>(vc.prepared_size()), window);
    EXPECT_LT(own[0].body.size(), window * 1024) << "batches of " << batch_bytes / window << " bytes each ride along";
    auto nvs = sent(out, MessageType::kNewView);
    ASSERT_EQ(nvs.size(), 1u);
    EXPECT_LT(nvs[0].body.size(), 3 * window * 1024);
    EXPECT_EQ(sent(out, MessageType::kPrePrepare).size(), window) << "it holds every batch: all re-proposed at once";
}

// A view change's certificate for seq 1 that the new primary never saw the batch of
// (replica 3 prepared it with 2; the pre-prepare never reached 1).
std::string view_change_with_header_certificate(const Harness& h, ReplicaId from, const std::vector<std::string>& b) {
    const crypto::Hash d = batch_digest(b);
    pb::ViewChange vc;
    vc.set_new_view(1);
    auto* p = vc.add_prepared();
    p->set_pre_prepare(h.header(0, 0, 1, d));
    p->add_prepares(h.vote(MessageType::kPrepare, 2, 0, 1, d));
    p->add_prepares(h.vote(MessageType::kPrepare, 3, 0, 1, d));
    return crypto::seal(h.keys[from], MessageType::kViewChange, vc.SerializeAsString());
}

std::string batches(const Harness& h, ReplicaId from, uint64_t seq, const std::vector<std::string>& b) {
    pb::Batches reply;
    pb::Batch* batch = reply.add_batches();
    batch->set_seq(seq);
    for (const auto& r : b) batch->add_requests(r);
    return crypto::seal(h.keys[from], MessageType::kBatch, reply.SerializeAsString());
}

TEST(PbftViewChangeUnderLoad, ANewPrimaryFetchesABatchItLacksAndProposesNothingNewUntilItHasIt) {
    Harness h(1);
    std::vector<std::string> b{h.request()};
    h.deliver(view_change(h, 2, 1));
    Output formed = h.deliver(view_change_with_header_certificate(h, 3, b));
    ASSERT_EQ(sent(formed, MessageType::kNewView).size(), 1u);
    EXPECT_TRUE(sent(formed, MessageType::kPrePrepare).empty()) << "a pre-prepare without its batch";
    EXPECT_EQ(sent(formed, MessageType::kFetchBatch).size(), 1u);
    ASSERT_FALSE(h.engine->status().view_changing);

    // New requests wait, even a full batch of them (batch_size_max 4, due at once with seq 1
    // in flight): seq 2 may not be proposed before seq 1 is.
    std::vector<std::string> later;
    for (uint64_t nonce = 9; nonce < 13; ++nonce) {
        later.push_back(h.request());
        EXPECT_FALSE(proposes(h.engine->on_client_request(ClientRequest{{h.client.public_key(), nonce}, later.back()}),
                              later.back()));
    }
    // A batch that is not the one the certificate names is refused.
    Output lie = h.deliver(batches(h, 2, 1, {h.request()}));
    EXPECT_TRUE(sent(lie, MessageType::kPrePrepare).empty());
    EXPECT_TRUE(h.detected(Misbehaviour::kBadBatch));
    // The right one: seq 1 is re-proposed with it, and the waiting batch follows at seq 2.
    Output right = h.deliver(batches(h, 2, 1, b));
    auto pps = sent(right, MessageType::kPrePrepare);
    ASSERT_EQ(pps.size(), 2u);
    pb::PrePrepare first;
    ASSERT_TRUE(first.ParseFromString(pps[0].body));
    EXPECT_EQ(first.seq(), 1u);
    EXPECT_EQ(hash_from_bytes(first.digest()), batch_digest(b));
    for (const auto& r : later) EXPECT_TRUE(proposes(right, r));
}

TEST(PbftViewChangeUnderLoad, AReplicaServesBatchesOnlyToItsViewsPrimaryAndAtMostOncePerInterval) {
    Harness h(2);
    std::vector<std::string> b{h.request()};
    const crypto::Hash d = batch_digest(b);
    h.deliver(h.pre_prepare(0, 0, 1, b));
    h.deliver(view_change(h, 0, 1));
    h.deliver(view_change(h, 3, 1));  // f+1: replica 2 moves to view 1 (primary 1)
    ASSERT_EQ(h.engine->status().view, 1u);
    pb::FetchBatch fetch;
    pb::BatchRef* ref = fetch.add_wanted();
    ref->set_seq(1);
    ref->set_digest(hash_bytes(d));
    const std::string body = fetch.SerializeAsString();
    EXPECT_TRUE(sent(h.deliver(crypto::seal(h.keys[3], MessageType::kFetchBatch, body)), MessageType::kBatch).empty())
        << "answered a replica that is not the primary";
    auto answers = sent(h.deliver(crypto::seal(h.keys[1], MessageType::kFetchBatch, body)), MessageType::kBatch);
    ASSERT_EQ(answers.size(), 1u);
    pb::Batches reply;
    ASSERT_TRUE(reply.ParseFromString(answers[0].body));
    ASSERT_EQ(reply.batches_size(), 1);
    EXPECT_EQ(reply.batches(0).requests(0), b[0]);
    EXPECT_TRUE(sent(h.deliver(crypto::seal(h.keys[1], MessageType::kFetchBatch, body)), MessageType::kBatch).empty());
    EXPECT_TRUE(h.detected(Misbehaviour::kFetchFlood));
}

TEST(PbftViewChangeUnderLoad, APrePrepareWhoseSignedHeaderDoesNotMatchIsRefused) {
    Harness h(1);
    std::vector<std::string> b{h.request()};
    const crypto::Hash d = batch_digest(b);
    // The header names seq 2: a VIEW-CHANGE would carry a certificate for another slot.
    pb::PrePrepare pp;
    pp.set_view(0);
    pp.set_seq(1);
    pp.set_digest(hash_bytes(d));
    pp.add_requests(b[0]);
    pp.set_header(h.header(0, 0, 2, d));
    // The header is what authenticates a pre-prepare (messages.h): the transport refuses it,
    // and the engine, handed it unchecked, refuses it too and says why.
    std::string raw = crypto::seal(h.keys[0], MessageType::kPrePrepare, pp.SerializeAsString());
    EXPECT_FALSE(pre_prepare_authentic(*crypto::open(raw)));
    Output out = h.deliver_unchecked(raw);
    EXPECT_TRUE(sent(out, MessageType::kPrepare).empty());
    EXPECT_TRUE(h.detected(Misbehaviour::kBadHeader));
    // Signed by another replica.
    pp.set_header(h.header(3, 0, 1, d));
    raw = crypto::seal(h.keys[0], MessageType::kPrePrepare, pp.SerializeAsString());
    EXPECT_FALSE(pre_prepare_authentic(*crypto::open(raw)));
    out = h.deliver_unchecked(raw);
    EXPECT_TRUE(sent(out, MessageType::kPrepare).empty());
    EXPECT_TRUE(h.detected(Misbehaviour::kBadHeader));
    // The real one.
    EXPECT_EQ(sent(h.deliver(h.pre_prepare(0, 0, 1, b)), MessageType::kPrepare).size(), 1u);
}

// One signature check per pre-prepare (messages.h): its header's. The envelope's own signature
// binds nothing more, so a wrong one does not matter; a wrong header signature does.
TEST(PbftViewChangeUnderLoad, APrePrepareIsAuthenticatedByItsHeaderAloneNotByItsEnvelopesSignature) {
    Harness h(1);
    std::vector<std::string> b{h.request()};
    std::string raw = h.pre_prepare(0, 0, 1, b);
    std::string bad_envelope = raw;
    bad_envelope.back() = static_cast<char>(bad_envelope.back() ^ 0x01);
    ASSERT_FALSE(crypto::open(bad_envelope).ok());
    crypto::OpenOptions unchecked;
    unchecked.verify_signature = false;
    EXPECT_TRUE(pre_prepare_authentic(*crypto::open(bad_envelope, unchecked)));
    ASSERT_TRUE(open_pre_prepare(bad_envelope).has_value());
    EXPECT_EQ(open_pre_prepare(bad_envelope)->pre_prepare.seq(), 1u);

    // A flipped bit in the header's signature, the envelope re-signed by the primary.
    auto pp = read_pre_prepare(raw);
    ASSERT_TRUE(pp.has_value());
    std::string header = pp->header();
    header.back() = static_cast<char>(header.back() ^ 0x01);
    pp->set_header(header);
    const std::string bad_header = crypto::seal(h.keys[0], MessageType::kPrePrepare, pp->SerializeAsString());
    ASSERT_TRUE(crypto::open(bad_header).ok());
    EXPECT_FALSE(pre_prepare_authentic(*crypto::open(bad_header)));
    EXPECT_FALSE(open_pre_prepare(bad_header).has_value());

    // Another replica's envelope around the primary's authentic pre-prepare: the header's
    // signer must be the envelope's sender.
    const std::string relabelled = crypto::seal(h.keys[2], MessageType::kPrePrepare, read_pre_prepare(raw)->SerializeAsString());
    EXPECT_FALSE(pre_prepare_authentic(*crypto::open(relabelled)));

    EXPECT_EQ(sent(h.deliver(bad_envelope), MessageType::kPrepare).size(), 1u);
}

// The header does not say who put a batch around it: any replica could wrap the primary's
// genuine header around another batch (the envelope's signature, unchecked, proves nothing).
// Its digest is checked before anything of it is kept, for a view this replica is not in yet too.
TEST(PbftViewChangeUnderLoad, APrimarysHeaderAroundAnotherBatchIsRefusedBeforeAnythingIsKept) {
    Harness h(1);
    std::vector<std::string> b{h.request()};
    auto pp = read_pre_prepare(h.pre_prepare(2, 2, 1, b));  // view 2: replica 2's, a future view
    ASSERT_TRUE(pp.has_value());
    pp->clear_requests();
    pp->add_requests(h.request());
    std::string forged = crypto::seal(h.keys[2], MessageType::kPrePrepare, pp->SerializeAsString());
    forged.back() = static_cast<char>(forged.back() ^ 0x01);  // not replica 2's envelope
    crypto::OpenOptions unchecked;
    unchecked.verify_signature = false;
    ASSERT_TRUE(pre_prepare_authentic(*crypto::open(forged, unchecked))) << "the header binds it";
    h.deliver(forged);
    EXPECT_TRUE(h.detected(Misbehaviour::kBadDigest));
    EXPECT_FALSE(open_pre_prepare(forged).has_value()) << "a stored copy would not load either";
}

}  // namespace
}  // namespace tally::bft::pbft::testing
