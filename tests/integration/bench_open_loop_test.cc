// `tally bench --rate`: the open loop on a live PBFT network, through the CLI as a user runs it.
#include <gtest/gtest.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "client/bench.h"
#include "tests/integration/live_network.h"

namespace tally::integration {
namespace {

// The arrivals are the seeded Poisson process itself: as many in the window as the process has
// there, whatever the network does, and no more transfers committed than ever arrived. (A
// closed loop would send as fast as the network answers; an open loop that missed its
// arrivals would offer less than asked.)
TEST(BenchOpenLoop, OffersTheSeededPoissonArrivalsAndCommitsWhatArrived) {
    LiveNetwork net;
    ASSERT_TRUE(net.ok());
    constexpr double kRate = 100, kWarmup = 0.5, kDuration = 2;
    constexpr uint64_t kSeed = 5;
    auto run = run_command(bin_dir() + "/tally --dir " + net.dir() + " bench --rate 100 --seed 5 --clients 16 " +
                               "--warmup 0.5 --duration 2 --json",
                           120);
    ASSERT_EQ(run.exit_code, 0) << run.output;
    const auto brace = run.output.find('{');
    ASSERT_NE(brace, std::string::npos) << run.output;
    auto j = nlohmann::json::parse(run.output.substr(brace), nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << run.output;
    ASSERT_TRUE(j.contains("open_loop")) << run.output;
    const auto& open = j["open_loop"];
    EXPECT_EQ(open["rate"], kRate);
    EXPECT_EQ(open["seed"], kSeed);

    client::PoissonArrivals arrivals(kRate, kSeed);
    uint64_t in_window = 0, by_window_end = 0;
    for (double t = arrivals.next_s(); t < kWarmup + kDuration; t = arrivals.next_s()) {
        ++by_window_end;
        if (t >= kWarmup) ++in_window;
    }
    EXPECT_EQ(open["arrivals"].get<uint64_t>(), in_window) << run.output;
    const auto committed = j["committed"].get<uint64_t>();
    EXPECT_LE(committed, by_window_end) << "more committed than ever arrived: not an open loop";
    EXPECT_GE(committed, in_window / 2) << "100 transfers/s from 16 clients should mostly commit: " << run.output;
    EXPECT_EQ(j["failed"], 0) << run.output;
    EXPECT_LE(open["waited_for_client"].get<uint64_t>(), in_window);
    EXPECT_LE(open["arrival_to_send_p50_ms"].get<double>(), open["arrival_to_send_p99_ms"].get<double>());
    EXPECT_LE(j["p50_ms"].get<double>(), j["p99_ms"].get<double>());
    std::cout << "[ open     ] " << in_window << " arrivals at " << kRate << "/s, " << committed
              << " committed, p50 " << j["p50_ms"] << " ms, p99 " << j["p99_ms"] << " ms\n";
}

}  // namespace
}  // namespace tally::integration
