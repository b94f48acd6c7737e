// Seed handling shared by the simulation tests: which seeds to run, and the line that replays
// a failing one exactly.
//   TALLY_SIM_SEED=<seed>   run that one seed
//   TALLY_SIM_SEEDS=<count> run seeds 1..count instead of a test's default
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>

#include "sim/cluster.h"

namespace tally::sim {

// Runs `body` for each seed, stopping at the first that fails (the one to replay).
inline void for_each_seed(uint64_t count, const std::function<void(uint64_t)>& body) {
    if (const char* one = std::getenv("TALLY_SIM_SEED")) {
        body(std::strtoull(one, nullptr, 10));
        return;
    }
    if (const char* many = std::getenv("TALLY_SIM_SEEDS")) count = std::strtoull(many, nullptr, 10);
    for (uint64_t seed = 1; seed <= count; ++seed) {
        body(seed);
        if (::testing::Test::HasFailure()) return;
    }
}

// The run's configuration and the command that replays it.
inline std::string replay(const Cluster& cluster, uint64_t seed) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    return cluster.describe() + "\nreplay: TALLY_SIM_SEED=" + std::to_string(seed) +
           " build/bin/test_sim --gtest_filter=" + info->test_suite_name() + "." + info->name();
}

}  // namespace tally::sim
