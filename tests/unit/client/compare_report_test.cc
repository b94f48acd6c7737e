// scripts/bench-compare's report (client/compare/report.h) and the measures both load
// generators share (client/load_measure.h).
#include <gtest/gtest.h>
#include <unistd.h>

#include "client/compare/report.h"
#include "client/load_measure.h"

namespace tally::client::compare {
namespace {

TEST(CompareReport, ReadsWhatARunFilesNameSays) {
    auto key = parse_run_name("pbft-n4-c64-r2.json");
    ASSERT_TRUE(key);
    EXPECT_EQ(key->system, "pbft");
    EXPECT_EQ(key->n, 4u);
    EXPECT_EQ(key->clients, 64u);
    EXPECT_EQ(key->round, 2u);
    EXPECT_FALSE(parse_run_name("pbft-n4-c64-r2.json.part"));
    EXPECT_FALSE(parse_run_name("pbft-n0-c64-r2.json"));
    EXPECT_FALSE(parse_run_name("summary.md"));
    EXPECT_FALSE(parse_run_name("pbft-n4-c-r2.json"));
}

TEST(CompareReport, MedianIsTheMiddleOrTheMeanOfTheTwoMiddles) {
    EXPECT_FALSE(median({}));
    EXPECT_EQ(*median({3}), 3);
    EXPECT_EQ(*median({5, 1, 3}), 3);
    EXPECT_EQ(*median({4, 1, 3, 2}), 2.5);
}

nlohmann::json run_json(double tps, double p50, bool replicas_known = true) {
    return {{"committed", 1000},
            {"tps", tps},
            {"p50_ms", p50},
            {"p99_ms", p50 * 4},
            {"request_bytes", 177},
            {"latency_percentiles_ms", {{50, p50}, {99, p50 * 4}}},
            {"cost_per_tx",
             {{"replicas_known", replicas_known}, {"replica_cpu_ms", 2.0}, {"client_cpu_ms", 0.25}, {"messages", 14.0}, {"bytes", 2700.0}}}};
}

Run parsed(const std::string& name, const nlohmann::json& json) {
    auto key = parse_run_name(name);
    EXPECT_TRUE(key) << name;
    auto run = parse_run(*key, json);
    EXPECT_TRUE(run) << run.error().message;
    return *run;
}

TEST(CompareReport, RefusesAJsonThatIsNoBenchmarkResult) {
    const RunKey key{"pbft", 4, 1, 1};
    auto run = parse_run(key, nlohmann::json{{"tps", 1}, {"p50_ms", 1}});
    ASSERT_FALSE(run);
    EXPECT_NE(run.error().message.find("p99_ms"), std::string::npos);
    EXPECT_FALSE(parse_run(key, nlohmann::json::array()));
    auto bad_cdf = run_json(1, 1);
    bad_cdf["latency_percentiles_ms"] = {{50}};
    EXPECT_FALSE(parse_run(key, bad_cdf));
    auto stalled = run_json(0, 0);
    stalled["committed"] = 0;
    auto refused = parse_run(key, stalled);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("committed nothing"), std::string::npos);
}

TEST(CompareReport, SummarizesEachSystemSizeAndClientCountAsMediansOverRounds) {
    const std::vector<compare::Run> runs = {parsed("pbft-n4-c1-r1.json", run_json(200, 5)), parsed("pbft-n4-c1-r2.json", run_json(300, 3)),
                                   parsed("pbft-n4-c1-r3.json", run_json(250, 4)),
                                   parsed("etcd-n3-c1-r1.json", run_json(1000, 1, false))};
    const auto points = summarize(runs);
    ASSERT_EQ(points.size(), 2u);
    const Point& etcd = points[0];  // ordered by system name
    const Point& pbft = points[1];
    EXPECT_EQ(pbft.system, "pbft");
    EXPECT_EQ(pbft.rounds, 3u);
    EXPECT_EQ(pbft.tps, 250);
    EXPECT_EQ(pbft.p50_ms, 4);
    ASSERT_EQ(pbft.percentiles.size(), 2u);
    EXPECT_EQ(pbft.percentiles[1].second, 16);
    EXPECT_EQ(*pbft.messages, 14);
    // A round whose replicas did not all report leaves their cost unknown, not zero.
    EXPECT_EQ(etcd.system, "etcd");
    EXPECT_FALSE(etcd.replica_cpu_ms);
    EXPECT_EQ(*etcd.client_cpu_ms, 0.25);
}

TEST(CompareReport, WritesTablesWithRatiosToEtcdDataFilesAndAPlotScript) {
    const std::vector<compare::Run> runs = {parsed("pbft-n4-c1-r1.json", run_json(250, 4)), parsed("pbft-n7-c1-r1.json", run_json(100, 9)),
                                   parsed("raft-n3-c1-r1.json", run_json(500, 2)),
                                   parsed("etcd-n3-c1-r1.json", run_json(1000, 1))};
    ReportInfo info{"a test machine", "abc1234", "2026-12-01", 5, 1, 1};
    auto files = report_files(summarize(runs), info);
    for (const char* name : {"summary.md", "throughput.dat", "cdf-c1.dat", "scaling-pbft.dat", "plots.gp"})
        ASSERT_TRUE(files.count(name)) << name;
    EXPECT_FALSE(files.count("scaling-raft.dat"));  // one size only: no curve
    const std::string& md = files["summary.md"];
    EXPECT_NE(md.find("| 1 | Tally PBFT | 4 | 250 | 0.25× | 4.00 |"), std::string::npos) << md;
    EXPECT_NE(md.find("| 1 | Tally Raft | 3 | 500 | 0.50× |"), std::string::npos) << md;
    EXPECT_NE(md.find("| Tally PBFT | 7 | 100 | 9.00 |"), std::string::npos) << md;
    EXPECT_NE(md.find("commit `abc1234`"), std::string::npos);
    EXPECT_EQ(files["throughput.dat"], "# clients pbft_tps raft_tps etcd_tps pbft_p50_ms raft_p50_ms etcd_p50_ms\n"
                                       "1 250.00 500.00 1000.00 4.0000 2.0000 1.0000\n");
    EXPECT_NE(files["cdf-c1.dat"].find("50.0 4.0000 2.0000 1.0000"), std::string::npos) << files["cdf-c1.dat"];
    const std::string& gp = files["plots.gp"];
    for (const char* output : {"throughput.svg", "throughput.png", "latency-cdf-c1.svg", "scaling.png"})
        EXPECT_NE(gp.find(output), std::string::npos) << output;
}

// A report says what else the machine did while its runs were measured: the median over its
// rows of each row's median, the largest single run, and the hypervisor's share; nothing when
// the runs did not report it.
TEST(CompareReport, SaysHowMuchOtherWorkTheMachineDidDuringTheRuns) {
    auto with_machine = [](double tps, double other, double steal) {
        auto json = run_json(tps, 2);
        json["machine"] = {{"cpus", 2}, {"busy_cpus", 1.9}, {"system_cpus", 1.9 - other},
                           {"other_cpus", other}, {"steal_cpus", steal}};
        return json;
    };
    const std::vector<compare::Run> runs = {parsed("pbft-n4-c64-r1.json", with_machine(3000, 0.05, 0.01)),
                                            parsed("pbft-n4-c64-r2.json", with_machine(3100, 0.15, 0.03)),
                                            parsed("pbft-n4-c64-r3.json", with_machine(3200, 0.10, 0.02)),
                                            parsed("raft-n3-c64-r1.json", with_machine(6000, 0.90, 0.02))};
    EXPECT_EQ(runs[1].other_cpus, 0.15);
    const auto points = summarize(runs);
    ASSERT_EQ(points.size(), 2u);
    EXPECT_EQ(points[0].other_cpus, 0.10);      // PBFT's three rounds: the median
    EXPECT_EQ(points[0].other_cpus_max, 0.15);  // and the largest
    EXPECT_EQ(points[0].steal_cpus, 0.02);
    ReportInfo info{"a test machine", "abc1234", "2026-12-01", 5, 1, 64};
    const std::string md = report_files(points, info)["summary.md"];
    EXPECT_NE(md.find("a median of 0.50 CPUs over the rows below, at most 0.90 in one run (Tally Raft, n=3, "
                      "64 clients); the hypervisor took a median of 0.02 CPUs."),
              std::string::npos)
        << md;

    const std::vector<compare::Run> without = {parsed("pbft-n4-c64-r1.json", run_json(3000, 2))};
    EXPECT_EQ(report_files(summarize(without), info)["summary.md"].find("Other work"), std::string::npos);
}

TEST(LoadMeasure, TheMachineSplitsIntoTheMeasuredSystemOtherWorkAndSteal) {
    const MachineCpu begin{10'000'000, 1'000'000, 2, 50'000'000};
    const MachineCpu end{13'000'000, 1'200'000, 2, 52'000'000};  // 3 CPU-seconds busy, 0.2 stolen, in 2 s
    auto use = machine_use(begin, end, 2.0);                      // the system used 2 of the 3
    ASSERT_TRUE(use);
    EXPECT_EQ(use->cpus, 2u);
    EXPECT_DOUBLE_EQ(use->busy_cpus, 1.5);
    EXPECT_DOUBLE_EQ(use->system_cpus, 1.0);
    EXPECT_DOUBLE_EQ(use->other_cpus, 0.5);
    EXPECT_DOUBLE_EQ(use->steal_cpus, 0.1);
    // Counted in whole ticks, the system can seem to exceed the machine: no negative other work.
    EXPECT_DOUBLE_EQ(machine_use(begin, end, 3.5)->other_cpus, 0.0);
    MachineCpu same_time = end;
    same_time.at_us = begin.at_us;
    EXPECT_FALSE(machine_use(begin, same_time, 1.0));  // no window
    EXPECT_FALSE(machine_use(end, begin, 1.0));        // counters that went back

    // The real /proc/stat: 100 ms of this process's CPU is in the machine's busy time.
    const auto before = machine_cpu();
    ASSERT_TRUE(before);
    EXPECT_GE(before->cpus, 1u);
    volatile uint64_t sink = 0;
    const uint64_t own = own_cpu_us();
    while (own_cpu_us() < own + 100'000)
        for (int i = 0; i < 100'000; ++i) sink = sink + static_cast<uint64_t>(i);
    const auto after = machine_cpu();
    ASSERT_TRUE(after);
    EXPECT_GE(after->busy_us, before->busy_us + 100'000 - 40'000);
    EXPECT_GE(after->at_us, before->at_us + 100'000);  // the readings' own times: the window
}

TEST(LoadMeasure, PercentilesAtTheCdfPointsAndCpuTimeFromProc) {
    std::vector<double> values;
    for (int i = 100; i >= 1; --i) values.push_back(i);
    const auto cdf = percentiles(values);
    ASSERT_EQ(cdf.size(), std::size(kCdfPoints));
    EXPECT_EQ(cdf.front(), (std::pair<double, double>{0.1, 1}));
    EXPECT_EQ(cdf[8], (std::pair<double, double>{50, 50}));
    EXPECT_EQ(cdf.back(), (std::pair<double, double>{100, 100}));
    std::vector<double> none;
    EXPECT_TRUE(percentiles(none).empty());

    // Burn 100 ms of CPU: /proc must have seen most of it. It counts user and system time
    // apart, each in whole clock ticks (10 ms), so each may lag by up to a tick.
    volatile uint64_t sink = 0;
    const auto proc_before = process_cpu_us(::getpid());
    ASSERT_TRUE(proc_before);
    const uint64_t before = own_cpu_us();
    while (own_cpu_us() < before + 100'000)
        for (int i = 0; i < 100'000; ++i) sink = sink + static_cast<uint64_t>(i);
    const auto from_proc = process_cpu_us(::getpid());
    ASSERT_TRUE(from_proc);
    EXPECT_GE(*from_proc, *proc_before + 100'000 - 40'000);
    EXPECT_FALSE(process_cpu_us(-1));
}

}  // namespace
}  // namespace tally::client::compare
