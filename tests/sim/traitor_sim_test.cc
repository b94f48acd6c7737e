// Traitors in the simulator. With f of 3f+1 replicas Byzantine — each behaviour alone, mixed,
// and under network faults — the honest replicas agree, their digests match, money is
// conserved, every honest client's request completes, and clients only ever accept correct
// results (the linearizability check). Then f+1 traitors, to show why the bound is 3f+1.
#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>

#include "sim/cluster.h"
#include "sim/seeds.h"

namespace tally::sim {
namespace {

using node::Behaviour;




// Safety under the traitors and faults, then liveness once the network heals.
void expect_honest_replicas_safe_and_live(Cluster& cluster, uint64_t seed) {
    cluster.run_until([&] { return cluster.clients_done(); }, 1500);
    auto early = cluster.check_safety();
    EXPECT_TRUE(early.empty()) << testing::PrintToString(early) << "\n" << replay(cluster, seed);
    cluster.heal();
    EXPECT_TRUE(cluster.run_until([&] { return cluster.clients_done(); }, 30000))
        << "honest clients did not finish by tick " << cluster.now() << "\n" << replay(cluster, seed);
    EXPECT_TRUE(cluster.run_until([&] { return cluster.check_converged().empty(); }, 30000))
        << testing::PrintToString(cluster.check_converged()) << "\n" << replay(cluster, seed);
    auto problems = cluster.check_safety();
    EXPECT_TRUE(problems.empty()) << testing::PrintToString(problems) << "\n" << replay(cluster, seed);
    auto lin = cluster.check_linearizable();
    EXPECT_TRUE(lin.linearizable) << lin.explanation << "\n" << replay(cluster, seed);
}

class EveryBehaviour : public ::testing::TestWithParam<Behaviour> {};

TEST_P(EveryBehaviour, AsPrimaryOneTraitorOfFourCannotBreakSafetyOrLiveness) {
    for_each_seed(8, [](uint64_t seed) {
        SimConfig config;
        config.seed = seed;
        config.faults = NetworkFaults{0.02, 0.02, 0, 3};
        config.traitors[0] = {GetParam()};
        Cluster cluster(config);
        expect_honest_replicas_safe_and_live(cluster, seed);
    });
}

TEST_P(EveryBehaviour, AsBackupOneTraitorOfFourCannotBreakSafetyOrLiveness) {
    for_each_seed(5, [](uint64_t seed) {
        SimConfig config;
        config.seed = seed;
        config.faults = NetworkFaults{0.02, 0.02, 0, 3};
        config.traitors[2] = {GetParam()};
        Cluster cluster(config);
        expect_honest_replicas_safe_and_live(cluster, seed);
    });
}

TEST_P(EveryBehaviour, TwoTraitorsOfSevenCannotBreakSafetyOrLiveness) {
    for_each_seed(3, [](uint64_t seed) {
        SimConfig config;
        config.seed = seed;
        config.f = 2;
        config.faults = NetworkFaults{0.02, 0.02, 0, 3};
        config.traitors[0] = {GetParam()};  // the first primary
        config.traitors[4] = {GetParam()};
        Cluster cluster(config);
        expect_honest_replicas_safe_and_live(cluster, seed);
    });
}

INSTANTIATE_TEST_SUITE_P(Traitors, EveryBehaviour, ::testing::ValuesIn(node::all_behaviours()),
                         [](const auto& info) {
                             std::string name(node::behaviour_name(info.param));
                             std::replace(name.begin(), name.end(), '-', '_');
                             return name;
                         });

TEST(TraitorSim, AnEquivocatingPrimaryIsDetectedAndReplaced) {
    for_each_seed(10, [](uint64_t seed) {
        SimConfig config;
        config.seed = seed;
        config.traitors[0] = {Behaviour::kEquivocate};
        Cluster cluster(config);
        expect_honest_replicas_safe_and_live(cluster, seed);
        EXPECT_GE(cluster.status(1).view, 1u) << "no view change\n" << replay(cluster, seed);
        EXPECT_GT(cluster.detected()["equivocation"], 0u) << replay(cluster, seed);
    });
}

TEST(TraitorSim, TwoTraitorsOfSevenWithMixedBehavioursCannotBreakSafetyOrLiveness) {
    for_each_seed(8, [](uint64_t seed) {
        SimConfig config;
        config.seed = seed;
        config.f = 2;
        config.faults = NetworkFaults{0.02, 0.02, 0, 3};
        config.traitors[0] = {Behaviour::kEquivocate, Behaviour::kLyingCheckpoint};
        config.traitors[3] = {Behaviour::kRandom, Behaviour::kWrongReply};
        Cluster cluster(config);
        expect_honest_replicas_safe_and_live(cluster, seed);
    });
}

TEST(TraitorSim, TwoColludingTraitorsOfSevenCannotSplitTheHonestReplicas) {
    for_each_seed(8, [](uint64_t seed) {
        SimConfig config;
        config.seed = seed;
        config.f = 2;
        config.traitors[0] = {Behaviour::kEquivocate};
        config.traitors[1] = {Behaviour::kEquivocate, Behaviour::kWrongReply};
        Cluster cluster(config);
        expect_honest_replicas_safe_and_live(cluster, seed);
    });
}

// Beyond the bound. With n = 4 and TWO traitors — an equivocating primary that sends each
// backup its own batch, and a backup that votes for every digest anyone votes for — each
// honest backup sees 2f+1 = 3 commits for its own batch (its own and the two traitors') and
// executes it: the two honest replicas hold different blocks at one height. That is why PBFT
// needs n >= 3f+1: quorums of 2f+1 must overlap in at least one honest replica.
TEST(TraitorSimBeyondTheBound, FPlusOneTraitorsOfFourSplitTheHonestReplicas) {
    uint64_t split = 0;
    for (uint64_t seed = 1; seed <= 5; ++seed) {
        SimConfig config;
        config.seed = seed;
        config.traitors[0] = {Behaviour::kEquivocate};
        config.traitors[1] = {Behaviour::kEquivocate};
        Cluster cluster(config);
        cluster.run_until([&] { return !cluster.check_safety().empty(); }, 2000);
        if (!cluster.check_safety().empty()) ++split;
    }
    EXPECT_EQ(split, 5u) << "with f+1 traitors, agreement should be lost in every run";
}

}  // namespace
}  // namespace tally::sim
