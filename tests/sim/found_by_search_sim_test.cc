// Bugs the random search (sim/vopr.h) found, each as a scenario that shows it (each failed
// before its fix and passes after).
#include <gtest/gtest.h>

#include "sim/checks.h"
#include "sim/cluster.h"
#include "sim/seeds.h"
#include "sim/vopr.h"

namespace tally::sim {
namespace {

// Found as seed 102960 of VoprSim.RandomSchedules. Every replica executes up to h + L (the
// window is full) while no CHECKPOINT has arrived anywhere yet; then the whole cluster loses
// power. After the restart no replica signs its checkpoint at seq L again (own checkpoints are
// kept in memory only), so h never moves, the window stays full, and view change follows view
// change without anything executing. Fix: a replica restarting at a checkpoint multiple above
// h signs that checkpoint again.
TEST(FoundBySearch, WholeClusterOutageWithAFullWindowRecovers) {
    for_each_seed(10, [](uint64_t seed) {
        SimConfig config;
        config.seed = seed;
        config.checkpoint_interval = 2;
        config.watermark_window = 4;
        config.batch_size_max = 1;
        config.transfers_per_client = 4;
        Cluster cluster(config);
        // Checkpoints are held back (late, never lost) until the outage takes them.
        for (bft::ReplicaId id = 0; id < cluster.n(); ++id)
            cluster.slow(id, 10'000'000, {crypto::MessageType::kCheckpoint});
        ASSERT_TRUE(cluster.run_until(
            [&] {
                for (bft::ReplicaId id = 0; id < cluster.n(); ++id)
                    if (cluster.status(id).last_executed < config.watermark_window) return false;
                return true;
            },
            5000))
            << "the window did not fill\n"
            << report(cluster, seed);
        for (bft::ReplicaId id = 0; id < cluster.n(); ++id) {
            ASSERT_EQ(cluster.status(id).low_water_mark, 0u) << report(cluster, seed);
            cluster.crash(id, Cluster::CrashKind::kPowerLoss);
        }
        for (bft::ReplicaId id = 0; id < cluster.n(); ++id) cluster.restart(id);
        expect_live_and_safe(cluster, seed);
    });
}

// Found as seed 412 of VoprSim.MutatingTraitorsCannotBreakSafetyOrLiveness (n = 7, a mutating
// traitor at replica 4): replicas 2 and 3 fetch the state at seq 16 while the others have
// moved on to h = 24 and serve that state no longer. A fetching replica never asks a peer
// (FetchCommitted) for a newer stable checkpoint, and only four honest replicas are up to date
// (2f+1 = 5 CHECKPOINTs are needed; the traitor's are refused as equivocation), so replicas 2
// and 3 never converge. Fix: keep asking peers while fetching, so a newer proven checkpoint
// retargets the transfer.
TEST(FoundBySearch, LaggardsFetchingAStateNoPeerServesAnyMoreCatchUp) {
    SearchSpace space;
    space.behaviours = false;
    space.twins = false;
    space.crashes = false;
    space.min_traitors = 1;
    auto result = run_schedule(412, space);
    EXPECT_TRUE(result.problems.empty()) << testing::PrintToString(result.problems) << "\n"
                                         << result.description;
}

}  // namespace
}  // namespace tally::sim
