// Seeded runs of PBFT on the real node (sim/node_cluster.h: node::Replica and client::Client
// on a simulated network, in-memory disks and a virtual clock): a safety phase under faults,
// then a liveness phase after they heal. Each failure prints the seed and the command that
// replays it:
//   TALLY_SIM_SEED=<seed> build/bin/test_sim --gtest_filter=<test>
// TALLY_SIM_SEEDS=<count> runs more (or fewer) seeds than the default.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "sim/node_checks.h"
#include "sim/node_cluster.h"
#include "sim/seeds.h"

namespace tally::sim {
namespace {

TEST(PbftSim, NormalCaseWithRandomDelaysAgreesAndCompletes) {
    for_each_seed(60, [](uint64_t seed) {
        NodeSimConfig config;
        config.seed = seed;
        config.faults.delay_max_ticks = 3;
        NodeCluster cluster(config);
        expect_node_live_and_safe(cluster, seed);
        EXPECT_EQ(cluster.status(0).view, 0u) << "no fault, yet the view changed\n" << node_report(cluster, seed);
    });
}

TEST(PbftSim, LossyNetworkStaysSafeAndRecoversOnceHealed) {
    for_each_seed(60, [](uint64_t seed) {
        NodeSimConfig config;
        config.seed = seed;
        config.faults = NetworkFaults{0.05, 0.05, 0, 4};
        NodeCluster cluster(config);
        cluster.run_until([&] { return cluster.clients_done(); }, 600);
        const auto problems = cluster.check_safety();
        EXPECT_TRUE(problems.empty()) << testing::PrintToString(problems) << "\n" << node_report(cluster, seed);
        expect_node_live_and_safe(cluster, seed);
    });
}

TEST(PbftSim, SevenReplicasToleratingTwoFaultsAgree) {
    for_each_seed(20, [](uint64_t seed) {
        NodeSimConfig config;
        config.seed = seed;
        config.f = 2;
        config.faults = NetworkFaults{0.02, 0.02, 0, 3};
        NodeCluster cluster(config);
        ASSERT_EQ(cluster.n(), 7u);
        expect_node_live_and_safe(cluster, seed);
    });
}

TEST(PbftSim, PrimaryCrashLeadsToViewChangeAndEveryRequestCompletes) {
    for_each_seed(40, [](uint64_t seed) {
        NodeSimConfig config;
        config.seed = seed;
        config.ops_per_client = 10;
        NodeCluster cluster(config);
        cluster.run_until([&] { return cluster.now() >= 5 + seed % 30; }, 100);
        cluster.crash(0);
        expect_node_live_and_safe(cluster, seed);
        EXPECT_GE(cluster.status(1).view, 1u) << node_report(cluster, seed);
    });
}

TEST(PbftSim, PartitionedPrimaryIsReplacedAndRejoinsAfterHeal) {
    for_each_seed(30, [](uint64_t seed) {
        NodeSimConfig config;
        config.seed = seed;
        NodeCluster cluster(config);
        cluster.run_until([&] { return cluster.now() >= 10; }, 100);
        cluster.isolate({0});
        cluster.run_until([&] { return cluster.status(1).view >= 1 && !cluster.status(1).view_changing; }, 3000);
        EXPECT_GE(cluster.status(1).view, 1u) << node_report(cluster, seed);
        // The liveness phase heals the partition; the old primary must converge with the rest.
        expect_node_live_and_safe(cluster, seed);
    });
}

TEST(PbftSim, ReplicaThatMissesManyBatchesCatchesUpByStateTransfer) {
    for_each_seed(20, [](uint64_t seed) {
        NodeSimConfig config;
        config.seed = seed;
        config.ops_per_client = 30;
        NodeCluster cluster(config);
        cluster.crash(3);
        cluster.run_until([&] { return cluster.clients_done(); }, 20000);
        cluster.restart(3);
        ASSERT_TRUE(cluster.is_up(3)) << node_report(cluster, seed);
        // With no new work it catches up, by the node's state transfer (its peers' logs below
        // their stable checkpoint are gone).
        EXPECT_TRUE(cluster.run_until([&] { return cluster.check_converged().empty(); }, 20000))
            << testing::PrintToString(cluster.check_converged()) << "\n" << node_report(cluster, seed);
        EXPECT_GE(cluster.state_transfers(3), 1u) << node_report(cluster, seed);
        // More work after the restart: checkpoints move on, and replica 3 must follow.
        cluster.add_requests(4);
        expect_node_live_and_safe(cluster, seed);
    });
}

TEST(PbftSim, EveryReplicaRestartedInTurnKeepsSafetyAndLiveness) {
    for_each_seed(20, [](uint64_t seed) {
        NodeSimConfig config;
        config.seed = seed;
        config.ops_per_client = 20;
        config.faults.delay_max_ticks = 3;
        NodeCluster cluster(config);
        for (bft::ReplicaId id = 0; id < cluster.n(); ++id) {
            cluster.run_until([&] { return false; }, 40);
            cluster.crash(id);
            cluster.run_until([&] { return false; }, 40);
            cluster.restart(id);
            ASSERT_TRUE(cluster.is_up(id)) << node_report(cluster, seed);
            const auto problems = cluster.check_safety();
            ASSERT_TRUE(problems.empty()) << testing::PrintToString(problems) << "\n" << node_report(cluster, seed);
        }
        expect_node_live_and_safe(cluster, seed);
    });
}

}  // namespace
}  // namespace tally::sim
