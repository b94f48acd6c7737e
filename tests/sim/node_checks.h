// The checks a simulation on the real node (sim/node_cluster.h) ends with, and the line a
// failure prints: where each replica is, and the command that replays the seed. Shared by the
// test files that run on NodeCluster.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "sim/node_cluster.h"

namespace tally::sim {

inline std::string node_report(const NodeCluster& cluster, uint64_t seed) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    return cluster.replica_report() + cluster.describe() + "\nreplay: TALLY_SIM_SEED=" + std::to_string(seed) +
           " build/bin/test_sim --gtest_filter=" + info->test_suite_name() + "." + info->name();
}

// The liveness phase: with faults healed, every request completes and the live replicas
// converge; then agreement, money conserved, exactly-once (check_safety) and linearizability.
inline void expect_node_live_and_safe(NodeCluster& cluster, uint64_t seed, uint64_t max_ticks = 20000) {
    cluster.heal();
    EXPECT_TRUE(cluster.run_until([&] { return cluster.clients_done(); }, max_ticks))
        << "clients did not finish by tick " << cluster.now() << "\n" << node_report(cluster, seed);
    EXPECT_TRUE(cluster.run_until([&] { return cluster.check_converged().empty(); }, max_ticks))
        << testing::PrintToString(cluster.check_converged()) << "\n" << node_report(cluster, seed);
    const auto problems = cluster.check_safety();
    EXPECT_TRUE(problems.empty()) << testing::PrintToString(problems) << "\n" << node_report(cluster, seed);
    const auto lin = cluster.check_linearizable();
    EXPECT_TRUE(lin.linearizable) << lin.explanation << "\n" << node_report(cluster, seed);
}

}  // namespace tally::sim
