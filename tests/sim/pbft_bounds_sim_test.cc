// PBFT against one traitor, in the simulator (issue 10, section 2): what a backup does for a
// client that reaches it alone, and the liveness rules that keep a slow or censoring network
// from stalling.
#include <gtest/gtest.h>

#include "sim/cluster.h"
#include "sim/seeds.h"

namespace tally::sim {
namespace {

// PBFT.md rule 8: a backup forwards a request the primary has not proposed. A client that
// talks to one backup only gets every request executed, in view 0: no view change needed.
TEST(PbftBoundsSim, AClientThatTalksToOneBackupOnlyIsServedWithoutAViewChange) {
    for_each_seed(3, [](uint64_t seed) {
        SimConfig config;
        config.seed = seed;
        config.clients = 3;
        config.transfers_per_client = 6;
        config.clients_send_to = 2;  // a backup of view 0
        Cluster cluster(config);
        EXPECT_TRUE(cluster.run_until([&] { return cluster.clients_done(); }, 20000))
            << "clients did not finish by tick " << cluster.now() << "\n" << replay(cluster, seed);
        for (bft::ReplicaId i = 0; i < cluster.n(); ++i)
            EXPECT_EQ(cluster.status(i).view, 0u) << "replica " << i << "\n" << replay(cluster, seed);
        auto problems = cluster.check_safety();
        EXPECT_TRUE(problems.empty()) << testing::PrintToString(problems) << "\n" << replay(cluster, seed);
    });
}

}  // namespace
}  // namespace tally::sim
