// Traitors in the simulator on the real node (sim/node_cluster.h): each traitor is a
// node::Replica started as `tallyd --traitor <behaviours>` starts one, so the lies are the
// node's own (the engine's traitor, the node's wrong replies and lying snapshot pieces), told
// to the real client's reply quorum. With f of 3f+1 replicas Byzantine — each behaviour alone,
// mixed, and under network faults — the honest replicas agree, their digests match, money is
// conserved, every honest client's request completes, and clients only ever accept correct
// results (the linearizability check). Then f+1 traitors, to show why the bound is 3f+1.
//
// Replay a failure with the line it prints:
//   TALLY_SIM_SEED=<seed> build/bin/test_sim --gtest_filter=<test>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <ostream>
#include <string>

#include "bft/behaviours.h"
#include "sim/node_checks.h"
#include "sim/node_cluster.h"
#include "sim/seeds.h"

// A failing parameter prints as its name ("where GetParam() = equivocate"), not as bytes.
namespace tally::bft {
inline void PrintTo(Behaviour b, std::ostream* out) { *out << behaviour_name(b); }
}  // namespace tally::bft

namespace tally::sim {
namespace {

using bft::Behaviour;

// `tallyd --traitor`'s spelling of one behaviour.
std::string traitor(Behaviour b) { return std::string(bft::behaviour_name(b)); }

NodeSimConfig faulty(uint64_t seed, uint32_t f = 1) {
    NodeSimConfig config;
    config.seed = seed;
    config.f = f;
    config.faults = NetworkFaults{0.02, 0.02, 0, 3};
    return config;
}

// Safety under the traitors and faults, then liveness once the network heals.
void expect_honest_replicas_safe_and_live(NodeCluster& cluster, uint64_t seed) {
    cluster.run_until([&] { return cluster.clients_done(); }, 1500);
    const auto early = cluster.check_safety();
    EXPECT_TRUE(early.empty()) << testing::PrintToString(early) << "\n" << node_report(cluster, seed);
    expect_node_live_and_safe(cluster, seed, 30000);
}

class EveryBehaviour : public ::testing::TestWithParam<Behaviour> {};

TEST_P(EveryBehaviour, AsPrimaryOneTraitorOfFourCannotBreakSafetyOrLiveness) {
    for_each_seed(8, [](uint64_t seed) {
        NodeSimConfig config = faulty(seed);
        config.traitors[0] = traitor(GetParam());
        NodeCluster cluster(config);
        expect_honest_replicas_safe_and_live(cluster, seed);
    });
}

TEST_P(EveryBehaviour, AsBackupOneTraitorOfFourCannotBreakSafetyOrLiveness) {
    for_each_seed(5, [](uint64_t seed) {
        NodeSimConfig config = faulty(seed);
        config.traitors[2] = traitor(GetParam());
        NodeCluster cluster(config);
        expect_honest_replicas_safe_and_live(cluster, seed);
    });
}

TEST_P(EveryBehaviour, TwoTraitorsOfSevenCannotBreakSafetyOrLiveness) {
    for_each_seed(3, [](uint64_t seed) {
        NodeSimConfig config = faulty(seed, 2);
        config.traitors[0] = traitor(GetParam());  // the first primary
        config.traitors[4] = traitor(GetParam());
        NodeCluster cluster(config);
        expect_honest_replicas_safe_and_live(cluster, seed);
    });
}

INSTANTIATE_TEST_SUITE_P(Traitors, EveryBehaviour, ::testing::ValuesIn(bft::all_behaviours()),
                         [](const auto& info) {
                             std::string name(bft::behaviour_name(info.param));
                             std::replace(name.begin(), name.end(), '-', '_');
                             return name;
                         });

TEST(TraitorSim, AnEquivocatingPrimaryIsDetectedAndReplaced) {
    for_each_seed(10, [](uint64_t seed) {
        NodeSimConfig config;
        config.seed = seed;
        config.traitors[0] = traitor(Behaviour::kEquivocate);
        NodeCluster cluster(config);
        expect_honest_replicas_safe_and_live(cluster, seed);
        EXPECT_GE(cluster.status(1).view, 1u) << "no view change\n" << node_report(cluster, seed);
        EXPECT_GT(cluster.detected()["equivocation"], 0u) << node_report(cluster, seed);
    });
}

TEST(TraitorSim, TwoTraitorsOfSevenWithMixedBehavioursCannotBreakSafetyOrLiveness) {
    for_each_seed(8, [](uint64_t seed) {
        NodeSimConfig config = faulty(seed, 2);
        config.traitors[0] = "equivocate,lying-checkpoint";
        config.traitors[3] = "random,wrong-reply";
        NodeCluster cluster(config);
        expect_honest_replicas_safe_and_live(cluster, seed);
    });
}

TEST(TraitorSim, TwoColludingTraitorsOfSevenCannotSplitTheHonestReplicas) {
    for_each_seed(8, [](uint64_t seed) {
        NodeSimConfig config;
        config.seed = seed;
        config.f = 2;
        config.traitors[0] = "equivocate";
        config.traitors[1] = "equivocate,wrong-reply";
        NodeCluster cluster(config);
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
        NodeSimConfig config;
        config.seed = seed;
        config.traitors[0] = "equivocate";
        config.traitors[1] = "equivocate";
        NodeCluster cluster(config);
        cluster.run_until([&] { return !cluster.check_safety().empty(); }, 2000);
        const auto problems = cluster.check_safety();
        if (!problems.empty()) ++split;
        // The split, not something else: two honest replicas hold different blocks.
        EXPECT_TRUE(std::any_of(problems.begin(), problems.end(),
                                [](const std::string& p) { return p.find("different blocks") != std::string::npos; }))
            << testing::PrintToString(problems) << "\n" << node_report(cluster, seed);
    }
    EXPECT_EQ(split, 5u) << "with f+1 traitors, agreement should be lost in every run";
}

}  // namespace
}  // namespace tally::sim
