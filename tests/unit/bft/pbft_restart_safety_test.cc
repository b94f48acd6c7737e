// PBFT's rules for what a replica executed but has not yet checkpointed (issue 10, §1): a
// restart keeps every certificate above the stable checkpoint, executed slots included; a slot
// once decided is never given another batch, in any view, across restarts.
//
// The bug these pin down: a restart used to drop the stored certificates of every slot at or
// below the ledger's executed sequence number. Its VIEW-CHANGE then carried no certificate for
// them, and a new view could fill them with another batch (or a null one) that replicas which
// never executed the first would execute instead: honest replicas disagreeing, no traitor
// needed.
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <set>

#include "bft/pbft/stored_records.h"
#include "tests/unit/bft/pbft_harness.h"

namespace tally::bft::pbft::testing {
namespace {

using crypto::MessageType;

// A few real engines wired to one another by hand, each with its own store and a ledger that
// records which batch it executed at each seq. Replicas without an engine here are played by
// the test (or silent); replicas in `cut` receive nothing.
struct Wire {
    std::map<ReplicaId, Harness*> engines;
    std::map<ReplicaId, Store> stores;
    std::map<ReplicaId, std::map<uint64_t, crypto::Hash>> executed;  // seq -> batch digest
    std::set<ReplicaId> cut;
    std::deque<std::pair<ReplicaId, std::string>> queue;  // (to, envelope)

    // Honours an output as the node does: send early, persist, send, execute (and report it).
    void take(ReplicaId from, const Output& out) {
        auto send = [&](const std::vector<Outgoing>& sends) {
            for (const auto& o : sends) {
                if (o.to != kAllReplicas) {
                    queue.emplace_back(o.to, o.envelope);
                    continue;
                }
                for (const auto& [id, h] : engines)
                    if (id != from) queue.emplace_back(id, o.envelope);
            }
        };
        send(out.send_early);
        keep(out, stores[from]);
        send(out.send);
        for (const auto& c : out.commit) {
            executed[from][c.seq] = batch_digest(c.requests);
            take(from, engines.at(from)->engine->on_executed(c.seq, crypto::Hash{}));
        }
    }
    void flush() {
        while (!queue.empty()) {
            auto [to, envelope] = queue.front();
            queue.pop_front();
            if (engines.count(to) && !cut.count(to)) take(to, engines.at(to)->deliver(envelope));
        }
    }
    void tick() {
        for (const auto& [id, h] : engines)
            if (!cut.count(id)) take(id, h->engine->on_tick());
        flush();
    }
    void restart(ReplicaId id, uint64_t executed_seq) {
        const Store& s = stores[id];
        take(id, engines.at(id)->restart({s.begin(), s.end()}, executed_seq));
    }
};

// A power loss after a slot committed: its commit record ('c', written unsynced) is lost; its
// prepared certificate ('b', synced before the commit left) survives, and with it the accepted
// record ('a') written before it, whose pre-prepare the certificate leaves out.
void lose_unsynced_slot_records(Store& store) {
    for (auto it = store.begin(); it != store.end();)
        it = it->first.size() == 18 && it->first[17] == kSlotCommitted ? store.erase(it) : std::next(it);
}

// Replica `h` (a backup of view 0) accepts b at seq 1 from replica 0, prepares it with
// `other`'s prepare, commits it with the commits of 0 and `other`, and executes it.
void commit_and_execute_seq_1(Harness& h, ReplicaId other, const std::vector<std::string>& b, Wire& wire) {
    const crypto::Hash d = batch_digest(b);
    wire.take(h.id, h.deliver(h.pre_prepare(0, 0, 1, b)));
    wire.take(h.id, h.deliver(h.vote(MessageType::kPrepare, other, 0, 1, d)));
    wire.take(h.id, h.deliver(h.vote(MessageType::kCommit, 0, 0, 1, d)));
    wire.take(h.id, h.deliver(h.vote(MessageType::kCommit, other, 0, 1, d)));
    wire.queue.clear();
}

// View 1 as replica 1 (its primary) proposes it: replica 3's VIEW-CHANGE proves `b` prepared
// at `seq` in view 0 (0's and 1's prove nothing), and the NEW-VIEW's O is `o` (seq -> digest).
void enter_view_1_as_replica_1_proposes(Harness& h, uint64_t seq, const std::vector<std::string>& b,
                                        const std::vector<std::pair<uint64_t, crypto::Hash>>& o) {
    const crypto::Hash d = batch_digest(b);
    pb::ViewChange with_cert;
    with_cert.set_new_view(1);
    auto* p = with_cert.add_prepared();
    p->set_pre_prepare(h.header(0, 0, seq, d));
    p->add_prepares(h.vote(MessageType::kPrepare, 1, 0, seq, d));
    p->add_prepares(h.vote(MessageType::kPrepare, 3, 0, seq, d));
    const std::string vc3 = crypto::seal(h.keys[3], MessageType::kViewChange, with_cert.SerializeAsString());
    h.deliver(view_change(h, 0, 1));
    h.deliver(vc3);  // f+1: replica 2 joins view 1
    pb::NewView nv;
    nv.set_view(1);
    nv.add_view_changes(view_change(h, 0, 1));
    nv.add_view_changes(view_change(h, 1, 1));
    nv.add_view_changes(vc3);
    for (const auto& [s, digest] : o) {
        pb::Vote* entry = nv.add_reproposals();
        entry->set_view(1);
        entry->set_seq(s);
        entry->set_digest(hash_bytes(digest));
    }
    h.deliver(crypto::seal(h.keys[1], MessageType::kNewView, nv.SerializeAsString()));
}

TEST(PbftRestart, AReplicaRestartedAfterExecutingStillReportsItsCertificatesInAViewChange) {
    Harness h(2);
    Wire wire;
    wire.engines = {{2, &h}};
    std::vector<std::string> b1{h.request()};
    commit_and_execute_seq_1(h, 3, b1, wire);
    ASSERT_EQ(wire.executed[2].at(1), batch_digest(b1));

    wire.restart(2, /*executed_seq=*/1);
    // Its view-change timer runs out on a new request: the VIEW-CHANGE still proves seq 1.
    Output out = h.engine->on_client_request(ClientRequest{{}, h.request()});
    for (uint64_t t = 0; t <= h.config.view_change_timeout_ticks; ++t) out.append(h.engine->on_tick());
    auto vcs = sent(out, MessageType::kViewChange);
    ASSERT_EQ(vcs.size(), 1u);
    pb::ViewChange vc;
    ASSERT_TRUE(vc.ParseFromString(vcs[0].body));
    ASSERT_EQ(vc.prepared_size(), 1) << "the certificate of an executed slot above h was dropped";
    auto pp = crypto::open(vc.prepared(0).pre_prepare());
    ASSERT_TRUE(pp);
    pb::PrePrepare body;
    ASSERT_TRUE(body.ParseFromString(pp->body));
    EXPECT_EQ(body.seq(), 1u);
    EXPECT_EQ(hash_from_bytes(body.digest()), batch_digest(b1));
}

TEST(PbftRestart, ARestartedReplicaServesTheBatchesItExecutedToAPeerCatchingUp) {
    Harness h(2);
    Wire wire;
    wire.engines = {{2, &h}};
    std::vector<std::string> b1{h.request()};
    commit_and_execute_seq_1(h, 3, b1, wire);
    wire.restart(2, 1);

    pb::FetchCommitted fetch;
    fetch.set_from_seq(1);
    Output out =
        h.deliver(crypto::seal(h.keys[1], MessageType::kFetchCommitted, fetch.SerializeAsString()));
    auto replies = sent(out, MessageType::kCommitted);
    ASSERT_EQ(replies.size(), 1u);
    pb::CommittedReply reply;
    ASSERT_TRUE(reply.ParseFromString(replies[0].body));
    ASSERT_EQ(reply.batches_size(), 1) << "a restarted replica could not serve what it executed";
    EXPECT_EQ(reply.batches(0).commits_size(), 3);
}

// Whether, within two retransmit intervals after `out` (a restart's), the replica under test
// sends its own message of `type` (a Checkpoint or a Vote) for `seq`.
template <typename Body>
bool heartbeat_carries(Harness& h, Output out, MessageType type, uint64_t seq) {
    for (uint64_t t = 0; t < 2 * h.config.retransmit_ticks; ++t) out.append(h.engine->on_tick());
    for (const auto& env : sent(out, type)) {
        Body body;
        if (body.ParseFromString(env.body) && body.seq() == seq && env.sender == h.keys[h.id].public_key())
            return true;
    }
    return false;
}

// Found with real processes: a replica down while the others made checkpoint 4 stable, then
// every other replica restarted and the network idled. Their heartbeat (the newest commit and
// CHECKPOINT each signed, every retransmit interval) carried nothing after the restart, so the
// replica that was down never learned it was behind. A restarted replica's newest CHECKPOINT
// is its stable one: it sends it again.
TEST(PbftRestart, ARestartedReplicasHeartbeatCarriesItsStableCheckpointSoAnIdleNetworkTellsALaggard) {
    Harness h(1);
    h.config.retransmit_ticks = 5;
    crypto::Hash digest{};
    digest[4] = 2;
    pb::StableCheckpoint stable;
    stable.set_seq(4);
    stable.set_state_digest(hash_bytes(digest));
    for (ReplicaId r : {0u, 1u, 2u}) stable.add_proof(h.checkpoint(r, 4, digest));
    Output out = h.restart({{std::string(kKeyStable), stable.SerializeAsString()}}, 4);
    EXPECT_TRUE(heartbeat_carries<pb::Checkpoint>(h, std::move(out), MessageType::kCheckpoint, 4))
        << "a restarted replica's heartbeat says nothing of how far the network is";
}

// The same for what it executed beyond that checkpoint: its heartbeat carries its commit of
// the newest batch it executed, from the certificate it stored, so that the laggard asks for
// the batches (FETCH-COMMITTED) without waiting for the next client.
TEST(PbftRestart, ARestartedReplicasHeartbeatCarriesItsNewestCommitFromTheCertificateItStored) {
    Harness h(2);
    h.config.retransmit_ticks = 5;
    Wire wire;
    wire.engines = {{2, &h}};
    commit_and_execute_seq_1(h, 3, {h.request()}, wire);
    Output out = h.restart({wire.stores[2].begin(), wire.stores[2].end()}, 1);
    EXPECT_TRUE(heartbeat_carries<pb::Vote>(h, std::move(out), MessageType::kCommit, 1))
        << "a restarted replica's heartbeat says nothing of what it executed";
}

TEST(PbftRestart, ABatchDecidedButNotExecutedBeforeACrashExecutesAfterTheRestart) {
    Harness h(2);
    Wire wire;
    wire.engines = {{2, &h}};
    std::vector<std::string> b1{h.request()};
    const crypto::Hash d = batch_digest(b1);
    Store store;
    keep(h.deliver(h.pre_prepare(0, 0, 1, b1)), store);
    keep(h.deliver(h.vote(MessageType::kPrepare, 3, 0, 1, d)), store);
    keep(h.deliver(h.vote(MessageType::kCommit, 0, 0, 1, d)), store);
    Output committed = h.deliver(h.vote(MessageType::kCommit, 3, 0, 1, d));
    ASSERT_EQ(committed.commit.size(), 1u);
    keep(committed, store);
    // The process dies before the ledger executes seq 1.
    Output restarted = h.restart({store.begin(), store.end()}, 0);
    ASSERT_EQ(restarted.commit.size(), 1u);
    EXPECT_EQ(restarted.commit[0].seq, 1u);
    EXPECT_EQ(batch_digest(restarted.commit[0].requests), d);
}

TEST(PbftRestart, AReplicaNeverAcceptsAnotherBatchForASlotItDecided) {
    Harness h(2);
    Wire wire;
    wire.engines = {{2, &h}};
    std::vector<std::string> b1{h.request()};
    commit_and_execute_seq_1(h, 3, b1, wire);

    // More than f replicas hide their certificates and form view 1 with an empty O (the
    // replica's own view change is not needed in V).
    h.deliver(view_change(h, 0, 1));
    h.deliver(view_change(h, 3, 1));  // f+1: replica 2 joins view 1
    pb::NewView nv;
    nv.set_view(1);
    for (ReplicaId from : {0u, 1u, 3u}) nv.add_view_changes(view_change(h, from, 1));
    h.deliver(crypto::seal(h.keys[1], MessageType::kNewView, nv.SerializeAsString()));
    ASSERT_FALSE(h.engine->status().view_changing);
    ASSERT_EQ(h.engine->status().view, 1u);

    // The new primary proposes another batch at seq 1: refused and detected.
    Output out = h.deliver(h.pre_prepare(1, 1, 1, {h.request()}));
    EXPECT_TRUE(sent(out, MessageType::kPrepare).empty());
    EXPECT_TRUE(h.detected(Misbehaviour::kConflictsDecided));
    // The batch that was decided there is accepted (and prepared) as usual.
    out = h.deliver(h.pre_prepare(1, 1, 1, b1));
    EXPECT_EQ(sent(out, MessageType::kPrepare).size(), 1u);
}

TEST(PbftRestart, ANewViewThatPutsANullBatchWhereOneWasDecidedIsRefused) {
    Harness h(2);
    Wire wire;
    wire.engines = {{2, &h}};
    std::vector<std::string> b1{h.request()};
    commit_and_execute_seq_1(h, 3, b1, wire);

    // Replica 3's view change proves a batch prepared at seq 2 but none at seq 1, so O is
    // {1: null, 2: b2}: a null batch where this replica executed b1.
    std::vector<std::string> b2{h.request()};
    const crypto::Hash d2 = batch_digest(b2);
    enter_view_1_as_replica_1_proposes(h, 2, b2, {{1, batch_digest({})}, {2, d2}});
    EXPECT_TRUE(h.detected(Misbehaviour::kNewViewContradictsDecided));
    EXPECT_TRUE(h.engine->status().view_changing) << "it entered a view that undoes what it executed";
}

// A power loss can take the unsynced record of which batch a slot executed (the ledger kept
// the block). The replica then accepts at that slot only what a checked NEW-VIEW re-proposes
// from a prepared certificate — never a null batch, never a proposal of the primary's own.
TEST(PbftRestart, WithoutARecordOfWhatItExecutedAReplicaAcceptsThereOnlyWhatANewViewReproposesFromACertificate) {
    Harness h(2);
    Wire wire;
    wire.engines = {{2, &h}};
    std::vector<std::string> b1{h.request()};
    const crypto::Hash d1 = batch_digest(b1);
    commit_and_execute_seq_1(h, 3, b1, wire);
    Store& store = wire.stores[2];
    lose_unsynced_slot_records(store);
    wire.restart(2, 1);

    enter_view_1_as_replica_1_proposes(h, 1, b1, {{1, d1}});
    ASSERT_FALSE(h.engine->status().view_changing);

    EXPECT_TRUE(sent(h.deliver(h.pre_prepare(1, 1, 1, {h.request()})), MessageType::kPrepare).empty());
    EXPECT_EQ(sent(h.deliver(h.pre_prepare(1, 1, 1, b1)), MessageType::kPrepare).size(), 1u)
        << "it refused the batch the new view re-proposes from a certificate: no progress for laggards";
}

// The reproduction, every replica honest: replicas 0, 2 and 3 commit b1 at seq 1 in
// view 0 while replica 1 hears nothing; 2 and 3 execute it and restart; replica 0 goes
// silent. A new request times out at 1, 2 and 3, and replica 1 — primary of view 1, behind —
// forms the new view. Its first batch at seq 1 must be b1, as at every other replica.
TEST(PbftRestart, ThreeEnginesAfterARestartAgreeOnWhatExecutedBeforeIt) {
    Harness r1(1), r2(2), r3(3);
    Wire wire;
    wire.engines = {{1, &r1}, {2, &r2}, {3, &r3}};
    std::vector<std::string> b1{r1.request()};
    const crypto::Hash d1 = batch_digest(b1);

    // View 0: replica 0 (played by the test) proposes b1; replica 1 is cut off.
    wire.cut = {1};
    for (Harness* h : {&r2, &r3}) wire.take(h->id, h->deliver(h->pre_prepare(0, 0, 1, b1)));
    wire.flush();  // 2 and 3 prepare with each other's prepares and send commits
    for (Harness* h : {&r2, &r3}) wire.take(h->id, h->deliver(h->vote(MessageType::kCommit, 0, 0, 1, d1)));
    wire.flush();
    ASSERT_EQ(wire.executed[2].at(1), d1);
    ASSERT_EQ(wire.executed[3].at(1), d1);
    ASSERT_FALSE(wire.executed[1].count(1));

    // 2 and 3 restart from what they persisted, their ledgers at seq 1; replica 0 is gone.
    wire.restart(2, 1);
    wire.restart(3, 1);
    wire.cut.clear();
    const std::string next = r1.request();
    for (Harness* h : {&r1, &r2, &r3}) wire.take(h->id, h->engine->on_client_request(ClientRequest{{}, next}));
    for (int t = 0; t < 500 && !(wire.executed[1].count(2) && wire.executed[2].count(2) && wire.executed[3].count(2));
         ++t)
        wire.tick();

    ASSERT_TRUE(wire.executed[1].count(1)) << "replica 1 never executed seq 1";
    EXPECT_EQ(wire.executed[1].at(1), d1) << "replica 1 executed another batch at seq 1 than 0, 2 and 3";
    for (ReplicaId id : {1u, 2u, 3u}) {
        ASSERT_TRUE(wire.executed[id].count(2)) << "replica " << id << " never executed seq 2";
        EXPECT_EQ(wire.executed[id].at(2), batch_digest({next}));
    }
    EXPECT_EQ(r1.engine->status().view, 1u);
}

// Seed 3196750: the primary of view 0 crashed at once, came back long after views 1 and 2 had
// committed seqs 1..6, and learned them by catch-up, still in view 0. Its next sequence number
// was still 2, and it signed a PRE-PREPARE for seq 2 with another batch than the one it had
// just executed there. A primary never proposes at a seq already decided.
TEST(PbftRestart, APrimaryThatCaughtUpNeverProposesAtASeqAlreadyDecided) {
    Harness h(0);
    h.config.pipeline_depth = 1;
    h.restart({});
    // As primary of view 0 it proposes seq 1; a second request waits for the pipeline.
    for (int i = 0; i < 2; ++i) h.engine->on_client_request(ClientRequest{{h.client.public_key(), 1}, h.request()});

    // The others committed seqs 1..3 in view 1 without it; a peer's answer brings them.
    pb::CommittedReply reply;
    for (uint64_t seq = 1; seq <= 3; ++seq) {
        std::vector<std::string> b{ledger::make_transfer(key_of(102), key_of(101).public_key(), 1, seq)};
        const crypto::Hash d = batch_digest(b);
        pb::CommittedProof* proof = reply.add_batches();
        proof->set_pre_prepare(h.pre_prepare(1, 1, seq, b));
        for (ReplicaId r : {1u, 2u, 3u}) proof->add_commits(h.vote(MessageType::kCommit, r, 1, seq, d));
    }
    std::vector<Output> outs{
        h.deliver(crypto::seal(h.keys[1], MessageType::kCommitted, reply.SerializeAsString()))};
    ASSERT_EQ(outs[0].commit.size(), 3u) << "the catch-up did not deliver";
    for (const auto& c : std::vector<Committed>(outs[0].commit))
        outs.push_back(h.engine->on_executed(c.seq, crypto::Hash{}));
    for (const auto& out : outs) {
        for (const auto& env : sent(out, MessageType::kPrePrepare)) {
            pb::PrePrepare pp;
            ASSERT_TRUE(pp.ParseFromString(env.body));
            EXPECT_GT(pp.seq(), 3u) << "proposed at seq " << pp.seq() << ", already decided";
        }
    }
}

// Seed 3217840: a request executed before a restart came back (a peer forwarded it; the
// restarted replica no longer knew it had executed it) and waited again. The next view
// re-proposed the batch that had executed it, which marked it "in the log" for good: it never
// executed again, never stopped waiting, and timed out every view after.
TEST(PbftRestart, ARequestWhoseBatchAlreadyExecutedDoesNotWaitWhenANewViewReproposesIt) {
    Harness h(2);
    Wire wire;
    wire.engines = {{2, &h}};
    std::vector<std::string> b1{h.request()};
    const crypto::Hash d1 = batch_digest(b1);
    commit_and_execute_seq_1(h, 3, b1, wire);
    wire.restart(2, 1);
    h.engine->on_client_request(ClientRequest{{h.client.public_key(), 1}, b1[0]});

    enter_view_1_as_replica_1_proposes(h, 1, b1, {{1, d1}});
    ASSERT_EQ(h.engine->status().view, 1u);
    ASSERT_FALSE(h.engine->status().view_changing);
    h.deliver(h.pre_prepare(1, 1, 1, b1));
    Output later;
    for (uint64_t t = 0; t < 3 * h.config.view_change_timeout_ticks; ++t) later.append(h.engine->on_tick());
    EXPECT_TRUE(sent(later, MessageType::kViewChange).empty())
        << "a request that executed at seq 1 still waited, and timed the view out";
}

// Seed 3328: the batch decided at seq 1 was a null batch (a view change's fill, then prepared
// and committed). The replica that executed it lost its record in a power loss and refused the
// null re-proposal in every later view, as if no certificate held it; with a traitor silent,
// the others never committed seq 1 again, and views changed forever.
TEST(PbftRestart, WithoutARecordOfWhatItExecutedAReplicaAcceptsANullBatchACertificateHolds) {
    Harness h(2);
    Wire wire;
    wire.engines = {{2, &h}};
    const std::vector<std::string> null_batch;
    commit_and_execute_seq_1(h, 3, null_batch, wire);
    Store& store = wire.stores[2];
    lose_unsynced_slot_records(store);
    wire.restart(2, 1);

    enter_view_1_as_replica_1_proposes(h, 1, null_batch, {{1, batch_digest(null_batch)}});
    ASSERT_FALSE(h.engine->status().view_changing);
    EXPECT_EQ(sent(h.deliver(h.pre_prepare(1, 1, 1, null_batch)), MessageType::kPrepare).size(), 1u)
        << "it refused the null batch the new view re-proposes from a certificate";
}

// ... but a null batch that fills a gap (no certificate for the seq in V) is no evidence of
// what it executed there: it stays silent.
TEST(PbftRestart, WithoutARecordOfWhatItExecutedAReplicaRefusesANullFill) {
    Harness h(2);
    Wire wire;
    wire.engines = {{2, &h}};
    std::vector<std::string> b1{h.request()};
    commit_and_execute_seq_1(h, 3, b1, wire);
    Store& store = wire.stores[2];
    for (auto it = store.begin(); it != store.end();)  // every record is gone
        it = it->first.size() == 18 ? store.erase(it) : std::next(it);
    wire.restart(2, 1);

    // V proves b2 prepared at seq 2 only: seq 1 is a null fill.
    std::vector<std::string> b2{h.request()};
    enter_view_1_as_replica_1_proposes(h, 2, b2, {{1, batch_digest({})}, {2, batch_digest(b2)}});
    ASSERT_FALSE(h.engine->status().view_changing);
    EXPECT_TRUE(sent(h.deliver(h.pre_prepare(1, 1, 1, {})), MessageType::kPrepare).empty());
}


// A slot's batch is written once, in its accepted record: the prepared certificate and the
// commit record of the same view and pre-prepare leave it out, and read back whole. Without
// the accepted record they lean on, the store is refused.
TEST(PbftRecords, ASlotsBatchIsStoredOnceInItsAcceptedRecord) {
    Harness h(2);
    Wire wire;
    wire.engines = {{2, &h}};
    std::vector<std::string> b1{h.request(), h.request()};
    commit_and_execute_seq_1(h, 3, b1, wire);
    Store& store = wire.stores[2];
    ASSERT_TRUE(store.count(slot_key(1, 0, kSlotAccepted)) && store.count(slot_key(1, 0, kSlotPrepared)) &&
                store.count(slot_key(1, 0, kSlotCommitted)));
    pb::PreparedProof accepted, prepared;
    pb::CommittedProof committed;
    ASSERT_TRUE(accepted.ParseFromString(store[slot_key(1, 0, kSlotAccepted)]));
    ASSERT_TRUE(prepared.ParseFromString(store[slot_key(1, 0, kSlotPrepared)]));
    ASSERT_TRUE(committed.ParseFromString(store[slot_key(1, 0, kSlotCommitted)]));
    const auto pp = read_pre_prepare(accepted.pre_prepare());
    ASSERT_TRUE(pp);
    EXPECT_EQ(hash_from_bytes(pp->digest()), batch_digest(b1));
    EXPECT_TRUE(prepared.pre_prepare().empty());
    EXPECT_EQ(prepared.prepares_size(), 2);
    EXPECT_TRUE(committed.pre_prepare().empty());
    EXPECT_EQ(committed.commits_size(), 3);
    EXPECT_LT(store[slot_key(1, 0, kSlotCommitted)].size(), accepted.pre_prepare().size());

    const std::vector<std::pair<std::string, std::string>> records(store.begin(), store.end());
    const AcceptedPrePrepares by_slot = accepted_pre_prepares(records);
    for (char kind : {kSlotPrepared, kSlotCommitted}) {
        const auto whole = whole_slot_record(SlotKey{1, 0, kind}, store[slot_key(1, 0, kind)], by_slot);
        ASSERT_TRUE(whole) << kind;
        pb::CommittedProof read;  // both proofs carry the pre-prepare as field 1
        ASSERT_TRUE(read.ParseFromString(*whole));
        EXPECT_EQ(read.pre_prepare(), accepted.pre_prepare()) << kind;
    }
    EXPECT_TRUE(check_stored_records(records, h.config.watermark_window).ok());

    Store without = store;
    without.erase(slot_key(1, 0, kSlotAccepted));
    const auto refused = check_stored_records({without.begin(), without.end()}, h.config.watermark_window);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "corrupt");
}

// A replica silent in its view after a restart accepts a pre-prepare without recording it
// (it votes for nothing) and may still become prepared from its peers' votes: that
// certificate has no accepted record to lean on, so it carries its pre-prepare.
TEST(PbftRecords, ACertificateWithoutAnAcceptedRecordToLeanOnCarriesItsPrePrepare) {
    Harness h(2);
    Wire wire;
    wire.engines = {{2, &h}};
    commit_and_execute_seq_1(h, 3, {h.request()}, wire);
    wire.restart(2, 1);  // it voted in view 0: silent there now

    std::vector<std::string> b2{h.request()};
    const crypto::Hash d2 = batch_digest(b2);
    Output out = h.deliver(h.pre_prepare(0, 0, 2, b2));
    EXPECT_TRUE(sent(out, MessageType::kPrepare).empty());
    out.append(h.deliver(h.vote(MessageType::kPrepare, 1, 0, 2, d2)));
    out.append(h.deliver(h.vote(MessageType::kPrepare, 3, 0, 2, d2)));
    const auto put = std::find_if(out.persist.begin(), out.persist.end(), [](const PersistOp& op) {
        const auto* p = std::get_if<PersistPut>(&op);
        return p && p->key == slot_key(2, 0, kSlotPrepared);
    });
    ASSERT_NE(put, out.persist.end()) << "it did not become prepared";
    for (const auto& op : out.persist)
        if (const auto* p = std::get_if<PersistPut>(&op)) {
            EXPECT_NE(p->key, slot_key(2, 0, kSlotAccepted));
        }
    pb::PreparedProof certificate;
    ASSERT_TRUE(certificate.ParseFromString(std::get<PersistPut>(*put).value));
    const auto pp = read_pre_prepare(certificate.pre_prepare());
    ASSERT_TRUE(pp);
    EXPECT_EQ(hash_from_bytes(pp->digest()), d2);
}

}  // namespace
}  // namespace tally::bft::pbft::testing
