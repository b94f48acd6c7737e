// The random search (sim/vopr.h): many short schedules, each a random mix of every fault and
// traitor the simulator has, each checked for safety, liveness after healing, and the engine's
// invariants after every input. Replay a failing seed with the line it prints:
//   TALLY_SIM_SEED=<seed> build/bin/test_sim --gtest_filter=<test>
// TALLY_SIM_SEEDS=<count> runs seeds 1..count instead of a test's default.
// scripts/simulate runs VoprSim.Search for as long as it is told (TALLY_VOPR_SECONDS).
// TALLY_VOPR_FINGERPRINTS=1 prints one line per schedule run: its seed, ticks, the hash of what
// clients saw, what honest replicas detected and how many problems it found (compare two builds'
// lines to show a change kept every schedule's run the same).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "crypto/hash.h"
#include "sim/vopr.h"

namespace tally::sim {
namespace {

// The Search runs RandomSchedules' schedules: its failures replay there.
std::string replay_command(uint64_t seed) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info->name();
    if (name == "Search") name = "RandomSchedules";
    return "TALLY_SIM_SEED=" + std::to_string(seed) +
           " build/bin/test_sim --gtest_filter=" + info->test_suite_name() + "." + name;
}

// (Signatures are the simulator's MAC: sim/mac_signatures.cc.)
class VoprSim : public ::testing::Test {
  protected:
    void SetUp() override { install_abort_handler(); }

    // Runs one schedule; a failure names the seed, what it chose, and how to replay it (in
    // full for the first few failures of a test, by seed after that).
    bool run_one(uint64_t seed, const SearchSpace& space, uint64_t runs = 0, int state_fd = -1) {
        set_abort_report(seed, runs, replay_command(seed), state_fd);
        auto result = run_schedule(seed, space);
        if (std::getenv("TALLY_VOPR_FINGERPRINTS")) print_fingerprint(seed, result);
        ticks_ += result.ticks;
        for (const auto& [kind, count] : result.detected) detected_[kind] += count;
        if (result.problems.empty()) return true;
        if (++failures_ <= 5) {
            ADD_FAILURE() << "schedule seed " << seed << " failed:\n"
                          << testing::PrintToString(result.problems) << "\n"
                          << result.description << "\nreplay: " << replay_command(seed);
        } else if (failed_seeds_.size() < 200) {  // characters: about 40 seeds
            failed_seeds_ += " " + std::to_string(seed);
        }
        return false;
    }

    static void print_fingerprint(uint64_t seed, const ScheduleResult& result) {
        std::string line = "[ fingerprint ] seed " + std::to_string(seed) + " ticks " +
                           std::to_string(result.ticks) + " history " +
                           crypto::to_hex(result.history) + " problems " +
                           std::to_string(result.problems.size()) + " detected";
        for (const auto& [kind, count] : result.detected)
            line += " " + kind + "=" + std::to_string(count);
        line += " description " + crypto::to_hex(crypto::sha256(result.description)).substr(0, 16);
        std::printf("%s\n", line.c_str());
    }

    // Seeds first..first+count-1 (or the one TALLY_SIM_SEED names).
    void run_many(uint64_t count, const SearchSpace& space, uint64_t first = 1) {
        if (const char* one = std::getenv("TALLY_SIM_SEED")) {
            run_one(std::strtoull(one, nullptr, 10), space);
            return;
        }
        if (const char* many = std::getenv("TALLY_SIM_SEEDS"))
            count = std::strtoull(many, nullptr, 10);
        auto start = std::chrono::steady_clock::now();
        for (uint64_t seed = first; seed < first + count; ++seed) {
            if (space_is_default(space) && kKnownOpen.count(seed)) {
                std::printf("[ vopr     ] seed %llu skipped: a known open liveness bug (README, \"Open\")\n",
                            static_cast<unsigned long long>(seed));
                continue;
            }
            run_one(seed, space);
            ++runs_;
        }
        if (failures_ > 5)
            ADD_FAILURE() << failures_ - 5 << " more schedules failed, seeds" << failed_seeds_
                          << (failed_seeds_.size() >= 200 ? " ..." : "")
                          << "\nreplay each: TALLY_SIM_SEED=<seed>"
                          << replay_command(0).substr(replay_command(0).find(' '));
        double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf(
            "[ vopr     ] %llu schedules (%llu failed), %llu simulated ticks, %.1f s (%.0f "
            "schedules/s)\n",
            static_cast<unsigned long long>(runs_), static_cast<unsigned long long>(failures_),
            static_cast<unsigned long long>(ticks_), seconds,
            static_cast<double>(runs_) / std::max(seconds, 1e-9));
    }

    // Seeds of RandomSchedules that fail today with a liveness bug found after the last merges
    // and not fixed yet (README, "Open"; each replays with TALLY_SIM_SEED, which ignores this
    // list). Kept out of CI's run so that the rest guards against regressions; remove a seed
    // with its fix.
    static inline const std::set<uint64_t> kKnownOpen = {};
    static bool space_is_default(const SearchSpace& space) {
        const SearchSpace d;
        return space.behaviours == d.behaviours && space.twins == d.twins && space.crashes == d.crashes &&
               space.min_traitors == d.min_traitors;
    }

    uint64_t ticks_ = 0;
    uint64_t runs_ = 0;
    uint64_t failures_ = 0;
    std::string failed_seeds_;                  // beyond the first few (capped)
    std::map<std::string, uint64_t> detected_;  // over every schedule run
};

// The CI search: every kind of fault and traitor, many short schedules.
// In four parts of 3,000 seeds (1..12,000 in all), so that ctest runs them side by side and
// none comes near its per-test timeout on a loaded machine. (20,000 until CI's budget went
// partly to NodeSearch, the search on the real node.) TALLY_SIM_SEED replays any seed in
// any part (the parts differ only in their seed range).
TEST_F(VoprSim, RandomSchedules) { run_many(3000, SearchSpace{}, 1); }
TEST_F(VoprSim, RandomSchedulesPart2) { run_many(3000, SearchSpace{}, 3001); }
TEST_F(VoprSim, RandomSchedulesPart3) { run_many(3000, SearchSpace{}, 6001); }
TEST_F(VoprSim, RandomSchedulesPart4) { run_many(3000, SearchSpace{}, 9001); }

// Seeds the long search (scripts/simulate) found beyond CI's range, each a bug fixed since:
// 3196750 (a primary proposed at a seq it had learned by catch-up), 3217840 (an executed
// request waited again after a restart), 3116179 (a laggard beyond its window never asked for
// state), 3328 is in RandomSchedules' range (a certified null batch refused after a power loss).
// With volatile ledgers: 4004787 and 3407 (no peer held the snapshot of the checkpoint a
// laggard needed after power losses dropped them: it now executes the certified blocks).
// 6455629450 (every replica lost power after seq 3, their stores the commit records of it:
// the one that had missed seq 3 was answered by nobody; a restart now reads the certificates
// its ledger keeps). 9195801441 (a bug in the check, not the engine: a replica whose power
// loss took back blocks it had caught up to, in a view it never entered, proposed other
// batches there in view 0; the check now forgets, with the ledger, what it had delivered).
TEST_F(VoprSim, SeedsTheLongSearchFound) {
    if (std::getenv("TALLY_SIM_SEED")) return run_many(1, SearchSpace{});
    for (uint64_t seed : {3196750u, 3217840u, 3116179u}) run_one(seed, SearchSpace{});
    for (uint64_t seed : {4004787u, 3407u}) run_one(seed, SearchSpace{});
    for (uint64_t seed : {6455629450ull, 9195801441ull}) run_one(seed, SearchSpace{});
}

// A seed's schedule is a function of the seed alone: run again, in another order and after
// other schedules in the same process, each gives the same run (ticks, what honest replicas
// detected, the choices and where each replica ended).
TEST_F(VoprSim, ASeedReplaysExactly) {
    std::vector<ScheduleResult> first;
    for (uint64_t seed = 1; seed <= 30; ++seed) first.push_back(run_schedule(seed));
    for (uint64_t seed = 30; seed >= 1; --seed) {
        auto again = run_schedule(seed);
        const auto& before = first[seed - 1];
        EXPECT_EQ(again.ticks, before.ticks) << "seed " << seed;
        EXPECT_EQ(again.detected, before.detected) << "seed " << seed;
        EXPECT_EQ(again.history, before.history) << "seed " << seed;
        EXPECT_EQ(again.description, before.description) << "seed " << seed;
        EXPECT_EQ(again.problems, before.problems) << "seed " << seed;
    }
}

// ByzzFuzz-style traitors alone, with every network fault (loss, duplication, delay, partitions,
// slow replicas) but no crash: up to f replicas whose messages are mutated in small ways — a
// view, seq or digest changed, a field or list entry dropped or duplicated, a message sent to a
// subset, or changed for some and not for others. (RandomSchedules mixes them with crashes.)
TEST_F(VoprSim, MutatingTraitorsCannotBreakSafetyOrLiveness) {
    SearchSpace space;
    space.behaviours = false;
    space.twins = false;
    space.crashes = false;
    space.min_traitors = 1;
    run_many(1000, space);
    // The mutations happened and reached honest replicas: they rejected what they could tell
    // was wrong (bad signatures, malformed bodies, conflicting votes).
    uint64_t noticed = 0;
    for (const auto& [kind, count] : detected_) noticed += count;
    if (runs_ >= 50) {
        EXPECT_GT(noticed, 0u) << "honest replicas noticed no mutated message";
    }
}

// Twins alone, with every network fault but no crash: up to f replicas that run as two honest
// instances with the same key, each seeing part of the network (the parts change every few
// ticks). (RandomSchedules mixes them with crashes.)
TEST_F(VoprSim, TwinsCannotBreakSafetyOrLiveness) {
    SearchSpace space;
    space.behaviours = false;
    space.mutation = false;
    space.crashes = false;
    space.min_traitors = 1;
    run_many(1000, space);
    // The twins did contradict each other where both were heard.
    if (runs_ >= 50) {
        EXPECT_GT(detected_["equivocation"], 0u) << "twins never equivocated";
    }
}

// The long search, for scripts/simulate: seeds TALLY_VOPR_FIRST_SEED, + TALLY_VOPR_SEED_STEP
// (default 1), ... until TALLY_VOPR_SECONDS have passed. Writes "done <runs> <next seed>" and
// "failed <seed>" lines to TALLY_VOPR_STATE when set (an abort writes "aborted <seed> <runs>"), so
// the script can carry on past a crash. Skipped without TALLY_VOPR_SECONDS.
TEST_F(VoprSim, Search) {
    const char* seconds_env = std::getenv("TALLY_VOPR_SECONDS");
    if (!seconds_env) GTEST_SKIP() << "set TALLY_VOPR_SECONDS (scripts/simulate does)";
    const double seconds = std::strtod(seconds_env, nullptr);
    const char* first_env = std::getenv("TALLY_VOPR_FIRST_SEED");
    uint64_t seed = first_env ? std::strtoull(first_env, nullptr, 10) : 1;
    const char* step_env = std::getenv("TALLY_VOPR_SEED_STEP");
    const uint64_t step =
        step_env ? std::max<uint64_t>(std::strtoull(step_env, nullptr, 10), 1) : 1;
    int state_fd = -1;
    if (const char* path = std::getenv("TALLY_VOPR_STATE"))
        state_fd = ::open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    auto start = std::chrono::steady_clock::now();
    auto elapsed = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    uint64_t runs = 0, failures = 0;
    double next_report = 60;
    while (elapsed() < seconds) {
        if (!run_one(seed, SearchSpace{}, runs, state_fd)) {
            ++failures;
            std::string line = "failed " + std::to_string(seed) + "\n";
            if (state_fd >= 0) (void)!::write(state_fd, line.data(), line.size());
        }
        ++runs;
        seed += step;
        if (elapsed() >= next_report) {
            std::printf("[ vopr     ] %llu schedules, %llu failed, %.0f s\n",
                        static_cast<unsigned long long>(runs),
                        static_cast<unsigned long long>(failures), elapsed());
            std::fflush(stdout);
            next_report += 60;
        }
    }
    std::string line = "done " + std::to_string(runs) + " " + std::to_string(seed) + "\n";
    if (state_fd >= 0) {
        (void)!::write(state_fd, line.data(), line.size());
        ::close(state_fd);
    }
    std::printf("[ vopr     ] %llu schedules in %.0f s, %llu failed\n",
                static_cast<unsigned long long>(runs), elapsed(),
                static_cast<unsigned long long>(failures));
}

}  // namespace
}  // namespace tally::sim
