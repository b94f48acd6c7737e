// Seed handling shared by the simulation tests: which seeds to run (the line that replays a
// failing one is node_report, sim/node_checks.h).
//   TALLY_SIM_SEED=<seed>   run that one seed
//   TALLY_SIM_SEEDS=<count> run seeds 1..count instead of a test's default
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <functional>

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

}  // namespace tally::sim
