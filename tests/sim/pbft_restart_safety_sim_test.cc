// The restart bug of issue 10 §1, in the simulator: replicas that executed batches above the
// last stable checkpoint restart, and a view change follows. Before the fix a restart dropped
// the certificates of every executed slot, so the new view could give those slots other
// batches (route 1: the new primary proposes new requests there) or null batches (route 2:
// a certificate of a later slot makes O fill the earlier ones with nulls), and a replica that
// had not executed them executed something else at the same height. No traitor is involved.
// It runs on the real node (sim/node_cluster.h): node::Replica restarts from its own store.
// Replay a failure with the line it prints:
//   TALLY_SIM_SEED=<seed> build/bin/test_sim --gtest_filter=<test>
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "sim/node_checks.h"
#include "sim/node_cluster.h"
#include "sim/seeds.h"

namespace tally::sim {
namespace {

// Long checkpoint intervals: the slots these runs execute stay above the stable checkpoint.
NodeSimConfig restart_config(uint64_t seed) {
    NodeSimConfig config;
    config.seed = seed;
    config.clients = 4;
    config.ops_per_client = 8;
    config.faults.delay_max_ticks = 3;
    config.consensus.checkpoint_interval = 64;
    config.consensus.watermark_window = 256;
    return config;
}

// The replicas in `ids` are up, in one view at least `view`, and not changing view.
bool all_in_view(const NodeCluster& cluster, const std::vector<bft::ReplicaId>& ids, uint64_t view) {
    for (bft::ReplicaId id : ids) {
        auto s = cluster.status(id);
        if (!cluster.is_up(id) || s.view_changing || s.view < view || s.view != cluster.status(ids[0]).view)
            return false;
    }
    return true;
}

void expect_safe_now(const NodeCluster& cluster, uint64_t seed, const char* when) {
    auto problems = cluster.check_safety();
    EXPECT_TRUE(problems.empty()) << when << ": " << testing::PrintToString(problems) << "\n"
                                  << node_report(cluster, seed);
}

// Route 1. Replicas 0, 2 and 3 execute some batches while replica 1 hears nothing; 2 and 3
// restart; replica 0 goes down. Replica 1, primary of view 1 and behind, forms the new view
// from 2's and 3's VIEW-CHANGEs: they must carry the certificates of what they executed.
TEST(PbftRestartSafetySim, RestartedReplicasKeepWhatTheyExecutedThroughTheNewPrimarysView) {
    for_each_seed(20, [](uint64_t seed) {
        NodeCluster cluster(restart_config(seed));
        cluster.isolate({1});
        const uint64_t target = 1 + seed % 4;
        ASSERT_TRUE(cluster.run_until(
            [&] { return cluster.ledger(2).last_seq() >= target && cluster.ledger(3).last_seq() >= target; }, 5000))
            << node_report(cluster, seed);
        ASSERT_EQ(cluster.ledger(1).last_seq(), 0u);
        ASSERT_EQ(cluster.status(2).stable_checkpoint, 0u) << "the executed slots must lie above h";
        const auto kind = seed % 2 ? NodeCluster::CrashKind::kProcess : NodeCluster::CrashKind::kPowerLoss;
        cluster.crash(2, kind);
        cluster.crash(3, kind);
        cluster.restart(2);
        cluster.restart(3);
        cluster.crash(0);
        cluster.heal();
        EXPECT_TRUE(cluster.run_until([&] { return all_in_view(cluster, {1, 2, 3}, 1) && cluster.clients_done(); },
                                      20000))
            << node_report(cluster, seed);
        EXPECT_GE(cluster.ledger(1).last_seq(), target) << node_report(cluster, seed);
        expect_safe_now(cluster, seed, "with replica 0 down");
        cluster.restart(0);
        expect_node_live_and_safe(cluster, seed);
    });
}

// Route 2. Replicas 0, 1 and 2 execute some batches while replica 3 hears nothing; 1 and 2
// restart and 0 goes down, so view 1 (primary 1) forms and commits new batches above them,
// which replica 3 prepares. Then 1 goes down and 0 comes back: view 2 forms from 0, 2 and 3,
// where 3's certificates cover only the later slots. Without 0's and 2's certificates for the
// earlier ones, O would fill them with null batches, and replica 3 — which never executed
// them — would execute nulls where the others hold transfers.
TEST(PbftRestartSafetySim, ALaterCertificateNeverTurnsExecutedSlotsIntoNullBatches) {
    for_each_seed(20, [](uint64_t seed) {
        NodeCluster cluster(restart_config(seed));
        cluster.isolate({3});
        const uint64_t target = 1 + seed % 4;
        ASSERT_TRUE(cluster.run_until(
            [&] { return cluster.ledger(1).last_seq() >= target && cluster.ledger(2).last_seq() >= target; }, 5000))
            << node_report(cluster, seed);
        ASSERT_EQ(cluster.ledger(3).last_seq(), 0u);
        cluster.crash(1);
        cluster.crash(2);
        cluster.restart(1);
        cluster.restart(2);
        cluster.crash(0);
        cluster.heal();
        // View 1 commits something new at 1 and 2 (replica 3 prepares it too).
        const uint64_t before = cluster.ledger(1).last_seq();
        cluster.add_requests(2);
        ASSERT_TRUE(cluster.run_until(
            [&] { return all_in_view(cluster, {1, 2}, 1) && cluster.ledger(1).last_seq() > before; }, 20000))
            << node_report(cluster, seed);
        expect_safe_now(cluster, seed, "in view 1");
        cluster.crash(1);
        cluster.restart(0);
        cluster.add_requests(2);
        EXPECT_TRUE(cluster.run_until([&] { return all_in_view(cluster, {0, 2, 3}, 2) && cluster.clients_done(); },
                                      20000))
            << node_report(cluster, seed);
        expect_safe_now(cluster, seed, "in view 2");
        cluster.restart(1);
        expect_node_live_and_safe(cluster, seed);
    });
}

}  // namespace
}  // namespace tally::sim
