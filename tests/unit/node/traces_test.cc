// Traces: what a replica keeps of recent transactions for `tally explain`, and its bounds.
#include "node/traces.h"

#include <gtest/gtest.h>

namespace tally::node {
namespace {

crypto::Hash tx(uint8_t i) {
    crypto::Hash h{};
    h[0] = i;
    h[31] = 0xee;
    return h;
}

std::vector<bft::Step> steps(std::vector<bft::Step> s) { return s; }

TEST(Traces, ATransactionsLifeIsItsReceiptItsSeqsStepsTheViewChangesBetweenAndItsExecution) {
    Traces t;
    auto before = steps({{0, 0, "new-view", {0}}});
    t.record(before, 50);  // before it was received: not part of its story
    t.received(tx(1), 100);
    auto first = steps({{7, 0, "pre-prepare", {0}}});
    t.record(first, 101);
    auto change = steps({{0, 1, "view-change", {}}, {0, 1, "new-view", {1}}, {7, 1, "pre-prepare", {1}}});
    t.record(change, 300);
    auto rest = steps({{7, 1, "prepared", {1, 2, 3}}, {7, 1, "committed", {1, 2, 3}}});
    t.record(rest, 305);
    t.executed(tx(1), 7, 0, 306);
    auto after = steps({{0, 2, "view-change", {}}});
    t.record(after, 400);  // after it executed: not part of it either

    auto e = t.explain(tx(1));
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->tx.received_ms, 100);
    EXPECT_EQ(e->tx.seq, 7u);
    EXPECT_EQ(e->tx.executed_ms, 306);
    std::vector<std::string> phases;
    for (const auto& s : e->steps) phases.push_back(s.step.phase + "@" + std::to_string(s.at_ms));
    EXPECT_EQ(phases, (std::vector<std::string>{"pre-prepare@101", "view-change@300", "new-view@300",
                                                "pre-prepare@300", "prepared@305", "committed@305"}));
    EXPECT_EQ(e->steps[4].step.votes, (std::vector<bft::ReplicaId>{1, 2, 3}));
    EXPECT_FALSE(t.explain(tx(2)).has_value()) << "a transaction never seen";
}

TEST(Traces, EachPhaseIsTimedFromTheSeqsStepBeforeInTheSameViewOnTheMonotonicClock) {
    Traces t;
    std::vector<PhaseTime> phases;
    auto pre = steps({{3, 0, "pre-prepare", {0}}});
    t.record(pre, 1000, 10'000, &phases);
    EXPECT_TRUE(phases.empty()) << "the first step has nothing before it";
    auto both = steps({{3, 0, "prepared", {0, 1, 2}}, {4, 0, "pre-prepare", {0}}});
    t.record(both, 999, 12'500, &phases);  // the wall clock stepped back; durations do not care
    ASSERT_EQ(phases.size(), 1u);
    EXPECT_EQ(phases[0].phase, "prepared");
    EXPECT_DOUBLE_EQ(phases[0].seconds, 0.0025);
    phases.clear();
    auto other_view = steps({{3, 1, "pre-prepare", {1}}});
    t.record(other_view, 1100, 50'000, &phases);
    EXPECT_TRUE(phases.empty()) << "a step of another view starts over";
    EXPECT_DOUBLE_EQ(*t.since_last_step(3, 51'000), 0.001);
    EXPECT_FALSE(t.since_last_step(9, 51'000).has_value());
}

TEST(Traces, ARefusalIsKeptWithItsReason) {
    Traces t;
    t.received(tx(1), 10);
    t.refused(tx(1), "unknown_sender", 11);
    auto e = t.explain(tx(1));
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->tx.refused, "unknown_sender");
    EXPECT_EQ(e->tx.received_ms, 10) << "the first receipt counts";
    EXPECT_EQ(e->tx.seq, 0u);
}

TEST(Traces, EveryPartIsBoundedAndTheOldestGoesFirst) {
    TracesLimits limits;
    limits.txs_max = 3;
    limits.seqs_max = 2;
    limits.steps_per_seq_max = 2;
    limits.view_changes_max = 1;
    Traces t(limits);
    for (uint8_t i = 1; i <= 5; ++i) t.executed(tx(i), i, 0, i);
    EXPECT_EQ(t.transactions(), 3u);
    EXPECT_FALSE(t.explain(tx(2)).has_value()) << "the oldest were not forgotten";
    EXPECT_TRUE(t.explain(tx(5)).has_value());

    for (uint64_t seq = 1; seq <= 5; ++seq) {
        auto s = steps({{seq, 0, "pre-prepare", {0}}, {seq, 0, "prepared", {0, 1, 2}}, {seq, 0, "committed", {0, 1, 2}}});
        t.record(s, 10);
    }
    EXPECT_EQ(t.sequence_numbers(), 2u);
    auto e = t.explain(tx(5));
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->steps.size(), 2u) << "steps per seq are bounded";
    e = t.explain(tx(3));
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(e->steps_dropped) << "executed at seq 3, whose steps are gone, and it says so";
    auto late = steps({{1, 0, "committed", {}}});
    t.record(late, 11);  // a step of a seq already forgotten is not brought back
    EXPECT_EQ(t.sequence_numbers(), 2u);

    auto vcs = steps({{0, 1, "view-change", {}}, {0, 2, "view-change", {}}});
    t.record(vcs, 12);
    t.received(tx(9), 12);
    e = t.explain(tx(9));
    ASSERT_TRUE(e.has_value());
    ASSERT_EQ(e->steps.size(), 1u);
    EXPECT_EQ(e->steps[0].step.view, 2u) << "only the last view change is kept";
}

TEST(Traces, TheRecentSeqsAreTheHighestKeptAscendingWithTheirStepsExecutionAndBatchSize) {
    Traces t;
    for (uint64_t seq = 1; seq <= 5; ++seq) {
        auto s = steps({{seq, 0, "pre-prepare", {0}}, {seq, 0, "prepared", {0, 1, 2}}});
        t.record(s, static_cast<int64_t>(100 * seq));
    }
    auto late = steps({{4, 0, "committed", {0, 1, 2}}});
    t.record(late, 450);
    t.executed_batch(4, 12, 460, 4'600);
    t.executed_batch(6, 3, 470);  // state transfer: executed, no steps of its own

    const auto recent = t.recent(3);
    ASSERT_EQ(recent.size(), 3u);
    EXPECT_EQ(recent[0].seq, 4u);
    EXPECT_EQ(recent[1].seq, 5u);
    EXPECT_EQ(recent[2].seq, 6u);
    std::vector<std::string> phases;
    for (const auto& s : recent[0].steps)
        phases.push_back(s.step.phase + "@" + std::to_string(s.at_ms));
    EXPECT_EQ(phases,
              (std::vector<std::string>{"pre-prepare@400", "prepared@400", "committed@450"}));
    EXPECT_EQ(recent[0].executed_ms, 460);
    EXPECT_EQ(recent[0].requests, 12u);
    EXPECT_EQ(recent[0].executed_mono_us, 4'600);
    EXPECT_EQ(recent[1].executed_ms, 0) << "not executed here yet";
    EXPECT_TRUE(recent[2].steps.empty());
    EXPECT_EQ(recent[2].requests, 3u);
    EXPECT_EQ(t.recent(100).size(), 6u) << "no more than are kept";
    EXPECT_TRUE(t.recent(0).empty());
}

TEST(Traces, TheRecentViewChangesAreTheLastOnesOldestFirst) {
    Traces t;
    EXPECT_TRUE(t.recent_view_changes(4).empty());
    auto vcs =
        steps({{0, 1, "view-change", {}}, {0, 1, "new-view", {1}}, {0, 2, "view-change", {}}});
    t.record(vcs, 10);
    auto last = t.recent_view_changes(2);
    ASSERT_EQ(last.size(), 2u);
    EXPECT_EQ(last[0].step.phase, "new-view");
    EXPECT_EQ(last[1].step.phase, "view-change");
    EXPECT_EQ(last[1].step.view, 2u);
    EXPECT_EQ(t.recent_view_changes(10).size(), 3u);
}

TEST(Traces, AnExecutionDoesNotBringBackAForgottenSeqAndKeepsTheRingBounded) {
    TracesLimits limits;
    limits.seqs_max = 2;
    Traces t(limits);
    t.executed_batch(5, 1, 1);
    t.executed_batch(6, 1, 2);
    t.executed_batch(7, 1, 3);
    EXPECT_EQ(t.sequence_numbers(), 2u);
    t.executed_batch(1, 1, 4);
    EXPECT_EQ(t.sequence_numbers(), 2u);
    const auto recent = t.recent(kRecentSeqsMax);
    ASSERT_EQ(recent.size(), 2u);
    EXPECT_EQ(recent[0].seq, 6u);
    EXPECT_EQ(recent[1].seq, 7u);
}

}  // namespace
}  // namespace tally::node
