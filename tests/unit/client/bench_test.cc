// The benchmark's pure helpers: the timeline of commits per interval and the largest gap
// between commits (what a view change looks like to a client), and their JSON.
#include "client/bench.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace tally::client
