// The benchmark's pure helpers: the timeline of commits per interval and the largest gap
// between commits (what a view change looks like to a client), and their JSON.
#include "client/bench.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "client/cli.h"

namespace tally::client {
namespace {

TEST(BenchTimeline, CountsEachCommitInTheIntervalItFallsIn) {
    const std::vector<double> times{0.0, 0.1, 0.99, 1.0, 2.5, 2.75};
    const auto points = timeline_of(times, 1.0, 3.0);
    ASSERT_EQ(points.size(), 3u);
    EXPECT_EQ(points[0].t_s, 0.0);
    EXPECT_EQ(points[0].committed, 3u);
    EXPECT_EQ(points[1].t_s, 1.0);
    EXPECT_EQ(points[1].committed, 1u);
    EXPECT_EQ(points[2].committed, 2u);
    EXPECT_DOUBLE_EQ(points[2].tps, 2.0);
}

TEST(BenchTimeline, AnEmptyIntervalIsZeroNotMissing) {
    const auto points = timeline_of({0.1, 3.2}, 0.25, 4.0);
    ASSERT_EQ(points.size(), 16u);
    uint64_t total = 0;
    for (const auto& p : points) total += p.committed;
    EXPECT_EQ(total, 2u);
    EXPECT_EQ(points[5].committed, 0u);
    EXPECT_EQ(points[12].committed, 1u);  // 3.2 s is in [3.0, 3.25)
    EXPECT_DOUBLE_EQ(points[12].tps, 4.0);
}

TEST(BenchTimeline, AShorterLastIntervalIsScaledToItsWidth) {
    // A run stopped early (--transactions) after 2.5 s: the last interval is half as wide.
    const auto points = timeline_of({0.5, 2.2, 2.4}, 1.0, 2.5);
    ASSERT_EQ(points.size(), 3u);
    EXPECT_EQ(points[2].committed, 2u);
    EXPECT_DOUBLE_EQ(points[2].tps, 4.0);
}

TEST(BenchTimeline, TimesOutsideTheSpanAndBadArgumentsAreIgnored) {
    const auto points = timeline_of({-0.5, 0.5, 2.0, 7.0}, 1.0, 2.0);
    ASSERT_EQ(points.size(), 2u);
    EXPECT_EQ(points[0].committed + points[1].committed, 1u);
    EXPECT_TRUE(timeline_of({0.5}, 0.0, 2.0).empty());
    EXPECT_TRUE(timeline_of({0.5}, 1.0, 0.0).empty());
}

TEST(BenchGap, TheLargestGapBetweenConsecutiveCommits) {
    const auto gap = largest_gap({0.1, 0.2, 0.3, 1.8, 1.9, 2.0}, 2.1);
    EXPECT_DOUBLE_EQ(gap.start_s, 0.3);
    EXPECT_DOUBLE_EQ(gap.end_s, 1.8);
    EXPECT_NEAR(gap.length_s(), 1.5, 1e-12);
}

TEST(BenchGap, TheEdgesCountSoANetworkThatStoppedShowsItsTail) {
    const auto tail = largest_gap({0.1, 0.2}, 5.0);
    EXPECT_DOUBLE_EQ(tail.start_s, 0.2);
    EXPECT_DOUBLE_EQ(tail.end_s, 5.0);
    const auto head = largest_gap({3.0, 3.1}, 3.2);
    EXPECT_DOUBLE_EQ(head.start_s, 0.0);
    EXPECT_DOUBLE_EQ(head.end_s, 3.0);
    const auto none = largest_gap({}, 4.0);
    EXPECT_DOUBLE_EQ(none.length_s(), 4.0);
}

TEST(BenchJson, KeepsTheSummaryKeysAndAddsTheTimelineWhenAskedFor) {
    BenchResult r;
    r.committed = 3;
    r.max_gap = CommitGap{0.3, 1.8};
    auto plain = bench_json(r);
    for (const char* key : {"tps", "committed", "p50_ms", "p99_ms", "max_gap", "window_start_unix_ms"})
        EXPECT_TRUE(plain.contains(key)) << key;
    EXPECT_FALSE(plain.contains("timeline"));
    EXPECT_FALSE(plain.contains("commit_times_s"));
    EXPECT_NEAR(plain["max_gap"]["length_ms"].get<double>(), 1500.0, 1e-9);

    r.interval_s = 0.25;
    r.timeline = timeline_of({0.1, 0.2, 0.6}, 0.25, 1.0);
    r.commit_times_s = {0.1, 0.2, 0.6};
    auto full = bench_json(r);
    ASSERT_TRUE(full["timeline"].is_array());
    ASSERT_EQ(full["timeline"].size(), 4u);
    EXPECT_EQ(full["timeline"][0]["committed"], 2);
    EXPECT_EQ(full["timeline"][2]["t_s"], 0.5);
    EXPECT_EQ(full["interval_ms"], 250.0);
    EXPECT_EQ(full["commit_times_s"].size(), 3u);
}

TEST(BenchJson, AnOpenLoopRunSaysWhatItOffered) {
    BenchResult r;
    EXPECT_FALSE(bench_json(r).contains("open_loop"));
    r.open_loop = OpenLoop{.rate = 500.0,
                           .seed = 7,
                           .arrivals = 2480,
                           .waited = 3,
                           .backlog_max = 2,
                           .waiting_at_end = 1,
                           .lag_p50_ms = 0.6,
                           .lag_p99_ms = 1.7};
    const auto j = bench_json(r)["open_loop"];
    EXPECT_EQ(j["rate"], 500.0);
    EXPECT_EQ(j["seed"], 7);
    EXPECT_EQ(j["arrivals"], 2480);
    EXPECT_EQ(j["waited_for_client"], 3);
    EXPECT_EQ(j["backlog_max"], 2);
    EXPECT_EQ(j["waiting_at_end"], 1);
    EXPECT_EQ(j["arrival_to_send_p50_ms"], 0.6);
    EXPECT_EQ(j["arrival_to_send_p99_ms"], 1.7);
}

// Open-loop arrivals: the same seed gives the same times (an open-loop run offers the same load
// every time), another seed others, always ascending, and on average `rate` per second.
TEST(BenchOpenLoop, PoissonArrivalsReplayFromTheirSeedAtTheAskedRate) {
    PoissonArrivals a(2000, 42), b(2000, 42), c(2000, 43);
    std::vector<double> times_a, times_b, times_c;
    for (int i = 0; i < 100'000; ++i) {
        times_a.push_back(a.next_s());
        times_b.push_back(b.next_s());
        times_c.push_back(c.next_s());
    }
    EXPECT_EQ(times_a, times_b);
    EXPECT_NE(times_a, times_c);
    EXPECT_TRUE(std::is_sorted(times_a.begin(), times_a.end()));
    // Drawn here from the generator's bits, not by a library's distribution: these are the
    // times on every machine (a changed draw fails here, and changes every recorded run).
    PoissonArrivals d(1000, 1);
    EXPECT_NEAR(d.next_s(), 0.000143727937160, 1e-15) << "the first of seed 1 at 1,000/s";
    // 100,000 exponential gaps of mean 0.5 ms: their sum is 50 s within 1% (the standard
    // deviation is 0.3%); fixed seeds, so this is the same figure on every run.
    EXPECT_NEAR(times_a.back(), 50.0, 0.5);
    EXPECT_NEAR(times_c.back(), 50.0, 0.5);
    // A Poisson process: about 1/e of the gaps are longer than the mean.
    size_t long_gaps = 0;
    for (size_t i = 1; i < times_a.size(); ++i) long_gaps += (times_a[i] - times_a[i - 1]) > 0.0005;
    EXPECT_NEAR(static_cast<double>(long_gaps) / static_cast<double>(times_a.size()), std::exp(-1.0), 0.01);
}

}  // namespace
}  // namespace tally::client
