// The checks every PBFT simulation ends with: once the faults heal, every client request
// completes, the replicas converge, and the history is safe and linearizable. Shared by the
// simulation test files; a failure prints the command that replays the seed.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "sim/cluster.h"
#include "sim/seeds.h"

namespace tally::sim {

// What a failure message ends with: where each replica is, and how to replay the run.
inline std::string report(const Cluster& cluster, uint64_t seed) {
    return cluster.replica_report() + replay(cluster, seed);
}

// The liveness phase: with faults healed, every request completes and the replicas converge;
// then agreement, money conserved, exactly-once (check_safety) and linearizability.
inline void expect_live_and_safe(Cluster& cluster, uint64_t seed, uint64_t max_ticks = 20000) {
    cluster.heal();
    bool done = cluster.run_until([&] { return cluster.clients_done(); }, max_ticks);
    EXPECT_TRUE(done) << "clients did not finish by tick " << cluster.now() << "\n"
                      << report(cluster, seed);
    bool converged =
        cluster.run_until([&] { return cluster.check_converged().empty(); }, max_ticks);
    EXPECT_TRUE(converged) << testing::PrintToString(cluster.check_converged()) << "\n"
                           << report(cluster, seed);
    auto problems = cluster.check_safety();
    EXPECT_TRUE(problems.empty()) << testing::PrintToString(problems) << "\n"
                                  << replay(cluster, seed);
    auto lin = cluster.check_linearizable();
    EXPECT_TRUE(lin.linearizable) << lin.explanation << "\n" << replay(cluster, seed);
}

}  // namespace tally::sim
