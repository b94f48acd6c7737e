// PBFT against one traitor, in the simulator (issue 10, section 2): what a backup does for a
// request that reaches it alone. On the real node (sim/node_cluster.h).
#include <gtest/gtest.h>

#include <string>

#include "sim/node_checks.h"
#include "sim/node_cluster.h"
#include "sim/seeds.h"

namespace tally::sim {
namespace {

// PBFT.md rule 8: a backup forwards a request the primary has not proposed. Every request's
// first sending reaches backup 2 alone (its copies to the others are lost); the client sends
// again to every replica only after three view-change timeouts, by when the request has
// executed (the others answer the retransmission from their ledgers). So every request is
// ordered in view 0, and no replica ever leaves it. Without forwarding (the Forward in
// PbftEngine::tick_forward not sent), backup 2's request timer expires long before the
// retransmission and it starts a view change that nobody joins; it rejoins view 0 once the
// retransmitted request has been ordered, so the check that fails then is the one made at
// every step, not the one at the end.
TEST(PbftBoundsSim, ARequestThatReachesOneBackupAloneIsOrderedWithoutAViewChange) {
    for_each_seed(3, [](uint64_t seed) {
        NodeSimConfig config;
        config.seed = seed;
        config.clients = 3;
        config.ops_per_client = 6;
        config.requests_first_reach = 2;  // a backup of view 0
        config.client_retransmit_ticks = 3 * config.consensus.view_change_timeout_ticks;
        NodeCluster cluster(config);
        std::string left_view_0;  // the first replica seen out of view 0, and when
        auto in_view_0 = [&] {
            for (bft::ReplicaId i = 0; i < cluster.n() && left_view_0.empty(); ++i)
                if (cluster.status(i).view != 0 || cluster.status(i).view_changing)
                    left_view_0 = "replica " + std::to_string(i) + " left view 0 at tick " +
                                  std::to_string(cluster.now());
        };
        EXPECT_TRUE(cluster.run_until(
            [&] {
                in_view_0();
                return cluster.clients_done();
            },
            20000))
            << "clients did not finish by tick " << cluster.now() << "\n"
            << node_report(cluster, seed);
        EXPECT_GT(cluster.first_copies_lost(), 0u) << node_report(cluster, seed);
        EXPECT_EQ(left_view_0, "") << node_report(cluster, seed);
        for (bft::ReplicaId i = 0; i < cluster.n(); ++i)
            EXPECT_EQ(cluster.status(i).view, 0u) << "replica " << i << "\n"
                                                  << node_report(cluster, seed);
        const auto problems = cluster.check_safety();
        EXPECT_TRUE(problems.empty()) << testing::PrintToString(problems) << "\n"
                                      << node_report(cluster, seed);
    });
}

}  // namespace
}  // namespace tally::sim
