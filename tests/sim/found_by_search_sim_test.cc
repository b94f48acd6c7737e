// Bugs the random search found, each as a scenario on the real node (sim/node_cluster.h) that
// shows it. They were found by the engine-level search, retired with its simulator (its seeds
// replay nothing on the node); each failed there before its fix, and each scenario here was
// checked to fail with its fix undone, unless its comment says otherwise.
// Replay a failure with the line it prints:
//   TALLY_SIM_SEED=<seed> build/bin/test_sim --gtest_filter=<test>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bft/pbft/messages.h"
#include "bft/traitor_base.h"
#include "sim/byzantine.h"
#include "sim/node_checks.h"
#include "sim/node_cluster.h"
#include "sim/seeds.h"

namespace tally::sim {
namespace {

// Replica 0 as a traitor for the seed 3328 scenario: as primary of view 0 it never sends its
// PRE-PREPARE for seq 1 (those for later seqs go out), so the next view fills seq 1 with a null
// batch; from view 1 on it sends no protocol message (its node still answers clients).
class LeavesSeqOneEmptyThenSilent final : public bft::TraitorBase<bft::Engine> {
public:
    explicit LeavesSeqOneEmptyThenSilent(std::unique_ptr<bft::Engine> honest)
        : TraitorBase(std::move(honest), {}) {}

protected:
    bft::Output rewrite(bft::Output out) override {
        out.fold_send_early();
        if (honest().status().view > 0) {
            out.send.clear();
            return out;
        }
        std::erase_if(out.send, [](const bft::Outgoing& o) {
            const auto pp = bft::pbft::read_pre_prepare(o.envelope);
            return pp && pp->seq() == 1;
        });
        return out;
    }
};

// Found as seed 102960 of the engine-level search. Every replica executes up to h + L (the
// window is full) while no CHECKPOINT has arrived anywhere yet; then the whole cluster loses
// power. After the restart no replica signs its checkpoint at seq L again (own checkpoints are
// kept in memory only), so h never moves, the window stays full, and view change follows view
// change without anything executing. Fix: a replica restarting at a checkpoint multiple above
// h signs that checkpoint again (PbftEngine::on_start). On the node a replica syncs its ledger
// through each checkpoint before signing it, so the power loss leaves every ledger at one.
TEST(FoundBySearch, WholeClusterOutageWithAFullWindowRecovers) {
    for_each_seed(10, [](uint64_t seed) {
        NodeSimConfig config;
        config.seed = seed;
        config.consensus.checkpoint_interval = 2;
        config.consensus.watermark_window = 4;
        config.consensus.batch_size_max = 1;
        config.ops_per_client = 4;
        NodeCluster cluster(config);
        // Checkpoints are held back (late, never lost) until the outage takes them.
        for (bft::ReplicaId id = 0; id < cluster.n(); ++id)
            cluster.slow(id, 10'000'000, {crypto::MessageType::kCheckpoint});
        ASSERT_TRUE(cluster.run_until(
            [&] {
                for (bft::ReplicaId id = 0; id < cluster.n(); ++id)
                    if (cluster.status(id).last_executed < config.consensus.watermark_window)
                        return false;
                return true;
            },
            5000))
            << "the window did not fill\n"
            << node_report(cluster, seed);
        for (bft::ReplicaId id = 0; id < cluster.n(); ++id) {
            ASSERT_EQ(cluster.status(id).low_water_mark, 0u) << node_report(cluster, seed);
            cluster.crash(id, NodeCluster::CrashKind::kPowerLoss);
        }
        for (bft::ReplicaId id = 0; id < cluster.n(); ++id) cluster.restart(id);
        expect_node_live_and_safe(cluster, seed);
    });
}

// Found as seed 412 of the engine-level search's mutating traitors (n = 7, a mutating traitor
// at replica 4): replicas 2 and 3 fetch the state at seq 16 while the others have moved on to
// h = 24 and serve that state no longer. A fetching replica never asks a peer
// (FetchCommitted) for a newer stable checkpoint, and only four honest replicas are up to date
// (2f+1 = 5 CHECKPOINTs are needed; the traitor's are refused as equivocation), so replicas 2
// and 3 never converge. Fix: keep asking peers while fetching, so a newer proven checkpoint
// retargets the transfer (PbftEngine's catch-up heartbeat).
//
// The scenario, made explicit on the node: replicas 2 and 3 are cut off while the others (the
// traitor among them) run on past their window; then they hear the others again, except for
// CHECKPOINTs (so, as in the seed, they cannot gather 2f+1 of them and learn of newer stable
// checkpoints only by asking), and every snapshot piece or block they ask for is held back
// while the others checkpoint more than once past the state they are fetching (so no peer
// keeps it: a replica keeps the newest two, and any still being asked for). Then their
// requests go through again, and they must catch up and converge. On the node the engine's
// fix is not the only way out (this passes with it undone: commits in their window keep them
// asking anyway): a fetching node that hears nothing takes the newest proven checkpoint, and
// one told not_held executes the certified blocks up to the checkpoint instead. What this
// guards is that, by whichever path, a laggard whose state was superseded gets out.
TEST(FoundBySearch, LaggardsFetchingAStateNoPeerServesAnyMoreCatchUp) {
    for_each_seed(5, [](uint64_t seed) {
        NodeSimConfig config;
        config.seed = seed;
        config.f = 2;  // n = 7
        config.clients = 4;
        config.ops_per_client = 40;
        config.consensus.checkpoint_interval = 4;
        config.consensus.watermark_window = 8;
        config.consensus.batch_size_max = 2;
        const uint32_t n = 7;
        config.wrap[4] = [n](WrapContext& w) -> std::unique_ptr<bft::Engine> {
            return std::make_unique<MutatingEngine>(std::move(w.honest), *w.key, n, w.id, w.seed,
                                                    0.1);
        };
        NodeCluster cluster(config);
        const uint64_t k = config.consensus.checkpoint_interval;
        const uint64_t window = config.consensus.watermark_window;
        cluster.run_until([&] { return cluster.now() >= 20 + seed % 20; }, 100);
        cluster.isolate({2, 3});
        ASSERT_TRUE(cluster.run_until(
            [&] {
                const uint64_t behind =
                    std::max(cluster.status(2).last_executed, cluster.status(3).last_executed);
                return cluster.status(0).low_water_mark > behind + window;
            },
            20000))
            << "the others did not move past the laggards' window\n"
            << node_report(cluster, seed);

        // They hear the others again, but not their CHECKPOINTs, and what they fetch is held back.
        const std::set<crypto::MessageType> fetches{crypto::MessageType::kFetchSnapshot,
                                                    crypto::MessageType::kFetchBlocks};
        for (bft::ReplicaId id : {2u, 3u}) cluster.slow(id, 10'000'000, fetches);
        for (bft::ReplicaId id : {2u, 3u})
            cluster.slow_to(id, 10'000'000, {crypto::MessageType::kCheckpoint});
        cluster.isolate({});
        auto fetching = [&](bft::ReplicaId id) {
            return cluster.status(id).low_water_mark > cluster.status(id).last_executed;
        };
        ASSERT_TRUE(cluster.run_until([&] { return fetching(2) && fetching(3); }, 5000))
            << "the laggards did not start fetching a stable checkpoint\n"
            << node_report(cluster, seed);
        const uint64_t target =
            std::max(cluster.status(2).low_water_mark, cluster.status(3).low_water_mark);
        ASSERT_TRUE(cluster.run_until(
            [&] { return cluster.status(0).low_water_mark >= target + 3 * k; }, 20000))
            << "the others did not checkpoint past the state being fetched (" << target << ")\n"
            << node_report(cluster, seed);
        EXPECT_GT(cluster.slowed_messages(), 0u) << node_report(cluster, seed);

        for (bft::ReplicaId id : {2u, 3u}) cluster.slow(id, 0);
        expect_node_live_and_safe(cluster, seed, 30000);
        for (bft::ReplicaId id : {2u, 3u})
            EXPECT_GE(cluster.ledger(id).last_seq(), cluster.ledger(0).last_seq())
                << node_report(cluster, seed);
    });
}

// Found as seeds 3407 and 4004787 of the engine-level search (with power losses that drop a
// replica's in-memory snapshots): a snapshot lives in a replica's memory, so when every peer
// has restarted since the last stable checkpoint none holds it, and a replica that was down
// needs exactly that state. It asked for it for ever. Fix: a peer says at once that it holds
// no snapshot of that checkpoint (not_held), and the laggard executes the blocks up to it from
// their commit certificates, which every replica keeps on disk (node/certified_replay.h).
// Replica 3 is down while the others run past a few checkpoints and stop between two (a
// ledger that stopped at a checkpoint would keep its snapshot when it starts again); then the
// three restart (a process crash: their ledgers and stores kept, their snapshots gone) and
// replica 3 comes back. It must reach them with no snapshot installed.
TEST(FoundBySearch, ALaggardWhosePeersHoldNoSnapshotOfItsCheckpointCatchesUpByCertifiedBlocks) {
    for_each_seed(5, [](uint64_t seed) {
        NodeSimConfig config;
        config.seed = seed;
        config.ops_per_client = 12;
        config.consensus.checkpoint_interval = 8;
        config.consensus.watermark_window = 32;
        NodeCluster cluster(config);
        const uint64_t k = config.consensus.checkpoint_interval;
        cluster.crash(3);
        const std::vector<bft::ReplicaId> up{0, 1, 2};
        auto idle_between_checkpoints = [&] {
            if (!cluster.clients_done()) return false;
            for (bft::ReplicaId id : up)
                if (cluster.status(id).last_executed != cluster.status(0).last_executed)
                    return false;
            return cluster.status(0).last_executed % k != 0;
        };
        for (int more = 0; more < 10 && !idle_between_checkpoints(); ++more) {
            if (more > 0) cluster.add_requests(1);
            cluster.run_until([&] { return cluster.clients_done(); }, 20000);
            cluster.run_until(idle_between_checkpoints, 500);
        }
        ASSERT_TRUE(idle_between_checkpoints()) << node_report(cluster, seed);
        const uint64_t stable = cluster.status(0).low_water_mark;
        ASSERT_GE(stable, 2 * k) << node_report(cluster, seed);

        for (bft::ReplicaId id : up) cluster.crash(id);
        for (bft::ReplicaId id : up) cluster.restart(id);
        cluster.restart(3);
        expect_node_live_and_safe(cluster, seed);
        EXPECT_GE(cluster.ledger(3).last_seq(), cluster.ledger(0).last_seq())
            << node_report(cluster, seed);
        EXPECT_EQ(cluster.state_transfers(3), 0u) << "a snapshot was served after all\n"
                                                  << node_report(cluster, seed);
    });
}

// Found as seed 3196750 of the engine-level search. The primary of view 0 crashed at once and
// came back after the others had committed seqs 1..6 in later views; it learned them by
// catch-up (FETCH-COMMITTED), still in view 0, whose primary it was. Its next sequence number
// was still where its own proposals had left it, so executing the batches it had learned freed
// its pipeline and it signed a PRE-PREPARE for seq 2 with another batch than the one it had
// just executed there. Fix: delivering a batch moves a primary's next sequence number past it
// (PbftEngine::deliver): a primary never proposes at a seq already decided.
//
// The scenario, made explicit on the node: replica 0 is down from the start while the others
// change to view 1 and order every request, one a batch, below the first checkpoint (so that
// replica 0 catches up by certificates, not by a state transfer). Then they restart (a process
// crash), so none holds the NEW-VIEW that began view 1 any more and an answer to a
// FETCH-COMMITTED carries batches only: replica 0 learns the seqs without learning the view.
// It comes back with new requests arriving, proposes one at seq 1 as primary of view 0
// (pipeline depth 1), and its catch-up then brings seqs 1..N. Without the fix, executing seq 1
// makes it propose at seq 2, which the signature watch flags (a PRE-PREPARE for another batch
// than the one its ledger holds there).
TEST(FoundBySearch, ARestartedPrimaryThatCaughtUpNeverProposesAtASeqAlreadyDecided) {
    for_each_seed(5, [](uint64_t seed) {
        NodeSimConfig config;
        config.seed = seed;
        config.ops_per_client = 2;
        config.consensus.batch_size_max = 1;
        config.consensus.pipeline_depth = 1;
        config.consensus.checkpoint_interval = 16;
        config.consensus.watermark_window = 32;
        NodeCluster cluster(config);
        cluster.crash(0);
        ASSERT_TRUE(cluster.run_until([&] { return cluster.clients_done(); }, 20000))
            << "the others did not order the requests without replica 0\n"
            << node_report(cluster, seed);
        const uint64_t decided = cluster.ledger(1).last_seq();
        ASSERT_GE(cluster.status(1).view, 1u) << node_report(cluster, seed);
        ASSERT_GE(decided, 2u) << node_report(cluster, seed);
        ASSERT_LT(decided, config.consensus.checkpoint_interval) << node_report(cluster, seed);

        for (bft::ReplicaId id : {1u, 2u, 3u}) cluster.crash(id);
        for (bft::ReplicaId id : {1u, 2u, 3u}) cluster.restart(id);
        cluster.restart(0);
        cluster.add_requests(1);
        ASSERT_TRUE(
            cluster.run_until([&] { return cluster.ledger(0).last_seq() >= decided; }, 2000))
            << "replica 0 did not catch up\n"
            << node_report(cluster, seed);
        // The seed's situation: it caught up still as the primary of view 0.
        ASSERT_EQ(cluster.status(0).view, 0u) << node_report(cluster, seed);
        ASSERT_FALSE(cluster.status(0).view_changing) << node_report(cluster, seed);
        expect_node_live_and_safe(cluster, seed);
    });
}

// Found as seed 3217840 of the engine-level search. A request that had executed before a
// restart came back to the restarted replica (a peer forwarded it; the replica no longer knew it
// had executed it) and waited again. The next NEW-VIEW re-proposed the batch that had executed
// it (a new view re-proposes every prepared batch above the stable checkpoint), which marked
// the request "in the log": neither proposed nor forwarded again, it never executed again, never
// stopped waiting, and timed out every view after (a livelock). Fix: a waiting request found in
// a batch at a seq already delivered stops waiting (PbftEngine::mark_in_log).
//
// On the node few requests come back so: the ledger records a transfer's final result and
// answers a retransmission itself (node/replica_clients.cc, the reply cache). What it does not
// record is a query's answer (kept in memory, which a restart empties) and a transfer that
// executed too early (nonce_too_high: it may still apply later). The scenario uses reads: every
// client sends an ordered read (read_fraction 1); every replica executes them, but no reply reaches
// a client (held back), so the clients keep retransmitting. Then the primary of view 0 crashes and
// replicas 1 and 2 restart (a process crash): their engines take the retransmitted reads in as new,
// and with no primary to order them, 1 and 2 time out into view 1, whose NEW-VIEW re-proposes the
// batches that executed them. With the fix the reads stop waiting there (a retransmission is
// ordered again, as a new read); without it they wait for good at 1 and 2, and view 1 times out,
// then view 2, and so on: a view-change storm.
TEST(FoundBySearch, AReadThatExecutedBeforeARestartDoesNotWaitAgainWhenANewViewReproposesItsBatch) {
    for_each_seed(5, [](uint64_t seed) {
        NodeSimConfig config;
        config.seed = seed;
        config.ops_per_client = 2;
        config.read_fraction = 1.0;
        NodeCluster cluster(config);
        for (bft::ReplicaId id = 0; id < cluster.n(); ++id)
            cluster.slow(id, 10'000'000,
                         {crypto::MessageType::kReply, crypto::MessageType::kBatchReply});
        // One read per client, executed everywhere (the clients wait for replies that never come).
        cluster.run_until([&] { return cluster.now() >= 100; }, 100);
        const uint64_t executed = cluster.status(0).last_executed;
        ASSERT_GE(executed, 1u) << node_report(cluster, seed);
        for (bft::ReplicaId id = 1; id < cluster.n(); ++id)
            ASSERT_EQ(cluster.status(id).last_executed, executed) << node_report(cluster, seed);
        ASSERT_EQ(cluster.history().size(), config.clients) << node_report(cluster, seed);

        cluster.crash(0);
        for (bft::ReplicaId id : {1u, 2u}) cluster.crash(id);
        for (bft::ReplicaId id : {1u, 2u}) cluster.restart(id);
        auto in_view_1 = [&] {
            for (bft::ReplicaId id : {1u, 2u, 3u})
                if (cluster.status(id).view != 1 || cluster.status(id).view_changing) return false;
            return true;
        };
        ASSERT_TRUE(cluster.run_until(in_view_1, 2000))
            << "the reads taken in again did not make 1 and 2 change view\n"
            << node_report(cluster, seed);
        const uint64_t timeout = config.consensus.view_change_timeout_ticks;
        const bool stormed = cluster.run_until(
            [&] {
                for (bft::ReplicaId id : {1u, 2u, 3u})
                    if (cluster.status(id).view > 1) return true;
                return false;
            },
            5 * timeout);
        EXPECT_FALSE(stormed)
            << "view 1 timed out: a read whose batch it re-proposed waited again\n"
            << node_report(cluster, seed);

        cluster.restart(0);
        expect_node_live_and_safe(cluster, seed);
    });
}

// Found as seed 3328 of the engine-level search (with power losses and a silent traitor). The
// batch decided at seq 1 was a null batch: a view change's fill, then prepared and committed in
// view 1. The one replica that executed it lost its record of which batch in a power loss (the
// commit record is written unsynced) and, taking a null batch for a fill it could not tell
// from a lie, refused its re-proposal from a prepared certificate in every later view; with the
// traitor silent the others needed its vote, never committed seq 1, and views changed forever.
// Fix: at a slot executed without a record, a null batch that a certificate in V holds is
// accepted (a null fill still is not; PbftEngine::conflicts_with_decided).
//
// The scenario, made explicit on the node: replica 0, primary of view 0, withholds its
// PRE-PREPARE for seq 1 and sends seq 2's, then falls silent, so view 1 fills seq 1 with a null
// batch. Replica 3's COMMITs are held back, so of the honest three only 3 commits seq 1 (and
// executes it, and seq 2, whose CHECKPOINT makes its ledger durable through both). Then it
// loses power and its commit records with it, and 1 and 2 time out into view 2, whose NEW-VIEW
// re-proposes the null batch from their certificates: they can commit it only with 3's vote.
// On the node this passes with the engine's fix undone: a restarted replica decides the slots
// its ledger executed again from the commit certificates the ledger keeps with each block
// (PbftEngine::restore_decided_from_ledger, seed 6455629450's fix), so it is never without a
// record of what it executed there. With that undone as well, it fails (1 and 2 stay at seq 0
// while views change on); with either one it passes. What this guards is the outcome: the
// certified null batch commits everywhere.
TEST(FoundBySearch, AReplicaThatLostItsRecordOfACertifiedNullBatchStillVotesForIt) {
    for_each_seed(5, [](uint64_t seed) {
        NodeSimConfig config;
        config.seed = seed;
        config.ops_per_client = 2;
        config.consensus.batch_size_max = 1;
        config.consensus.pipeline_depth = 2;
        config.consensus.checkpoint_interval = 2;
        config.consensus.watermark_window = 8;
        config.wrap[0] = [](WrapContext& w) -> std::unique_ptr<bft::Engine> {
            return std::make_unique<LeavesSeqOneEmptyThenSilent>(std::move(w.honest));
        };
        NodeCluster cluster(config);
        cluster.slow(3, 10'000'000, {crypto::MessageType::kCommit});
        // COMMITs reach 3 a little late: it prepares every slot of view 1 (a synced write)
        // before it commits seq 1, so that nothing syncs its commit record before the power loss.
        cluster.slow_to(3, 10, {crypto::MessageType::kCommit});
        ASSERT_TRUE(cluster.run_until(
            [&] {
                return cluster.status(3).last_executed >= 2 && cluster.ledger_synced_seq(3) >= 2;
            },
            5000))
            << "replica 3 did not execute seqs 1 and 2\n"
            << node_report(cluster, seed);
        ASSERT_EQ(cluster.status(3).view, 1u) << node_report(cluster, seed);
        const auto null_block = cluster.ledger(3).block(1);
        ASSERT_TRUE(null_block.has_value());
        ASSERT_EQ(null_block->tx_count, 0u) << "seq 1 is not the null batch\n"
                                            << node_report(cluster, seed);
        for (bft::ReplicaId id : {1u, 2u})
            ASSERT_EQ(cluster.status(id).last_executed, 0u) << node_report(cluster, seed);

        // What the power loss takes includes the record of what seq 1 decided in view 1.
        const auto unsynced = cluster.unsynced_records(3);
        std::string named;  // the keys as (seq, view, kind), for the message
        for (const auto& key : unsynced) {
            const auto slot = bft::pbft::parse_slot_key(key);
            named += slot ? " (" + std::to_string(slot->seq) + ", " + std::to_string(slot->view) + ", " +
                                std::string(1, slot->kind) + ")"
                          : " " + key;
        }
        ASSERT_THAT(unsynced, testing::Contains(bft::pbft::slot_key(1, 1, bft::pbft::kSlotCommitted)))
            << "the power loss would keep replica 3's commit record of seq 1; it takes" << named << "\n"
            << node_report(cluster, seed);
        cluster.crash(3, NodeCluster::CrashKind::kPowerLoss);
        cluster.restart(3);
        expect_node_live_and_safe(cluster, seed);
        for (bft::ReplicaId id : {1u, 2u, 3u}) {
            const auto block = cluster.ledger(id).block(1);
            ASSERT_TRUE(block.has_value()) << node_report(cluster, seed);
            EXPECT_EQ(block->tx_count, 0u) << node_report(cluster, seed);
        }
    });
}

}  // namespace
}  // namespace tally::sim
