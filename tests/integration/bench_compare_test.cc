// scripts/bench-compare end to end, as a user runs it (--quick: one short round): Tally PBFT,
// Tally Raft and etcd each start, take load and stop, and the report folder holds a summary
// with a row for each, well-formed raw runs, and the plots. What the figures are is not
// asserted (performance is measured by the benchmark, not by tests); that they exist is.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/integration/live_network.h"

namespace tally::integration {
namespace {

std::string read_all(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// True while process `pid` runs a program whose command line holds `program` (a pid the
// kernel gave to some other program since is not ours).
bool still_running(pid_t pid, const std::string& program) {
    const std::string cmdline = read_all("/proc/" + std::to_string(pid) + "/cmdline");
    return cmdline.find(program) != std::string::npos;
}

// Removes the report folder however the test ends.
struct TempFolder {
    std::filesystem::path path;
    ~TempFolder() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

TEST(BenchCompare, AQuickRunWritesASummaryRawRunsAndPlotsForEverySystem) {
    const TempFolder folder{std::filesystem::temp_directory_path() / ("tally-bench-compare-" + std::to_string(::getpid()))};
    const auto& out = folder.path;
    std::filesystem::remove_all(out);
    auto run = run_command(std::string(TALLY_SOURCE_DIR) + "/scripts/bench-compare --quick --bin " + bin_dir() +
                               " --out " + out.string(),
                           300);
    ASSERT_EQ(run.exit_code, 0) << run.output;

    const std::string md = read_all(out / "summary.md");
    for (const char* row : {"| 1 | Tally PBFT | 4 |", "| 4 | Tally Raft | 3 |", "| 1 | etcd | 3 |", "| Tally PBFT | 7 |",
                            "| Tally Raft | 5 |"})
        EXPECT_NE(md.find(row), std::string::npos) << row << "\n" << md;

    size_t runs = 0;
    for (const auto& entry : std::filesystem::directory_iterator(out / "raw")) {
        ++runs;
        const auto json = nlohmann::json::parse(read_all(entry.path()), nullptr, false);
        ASSERT_FALSE(json.is_discarded()) << entry.path();
        EXPECT_GT(json.value("tps", 0.0), 0) << entry.path();
        EXPECT_GT(json.value("request_bytes", 0), 0) << entry.path();
        EXPECT_EQ(json["latency_percentiles_ms"].size(), 19u) << entry.path();
        EXPECT_TRUE(json["cost_per_tx"].value("replicas_known", false)) << entry.path();
        // What else ran on the machine in the window: every system runs here, so each run says.
        ASSERT_TRUE(json.contains("machine")) << entry.path();
        EXPECT_GE(json["machine"].value("cpus", 0), 1) << entry.path();
        EXPECT_GT(json["machine"].value("busy_cpus", 0.0), 0.0) << entry.path();
        // The system's share is what its processes were charged: never more than a little above
        // the machine's busy time (both counted in whole ticks).
        EXPECT_GT(json["machine"].value("system_cpus", 0.0), 0.0) << entry.path();
        EXPECT_LE(json["machine"].value("system_cpus", 0.0), json["machine"].value("busy_cpus", 0.0) + 0.1)
            << entry.path();
    }
    EXPECT_NE(md.find("Other work on the machine during the measured windows"), std::string::npos) << md;
    // PBFT n=4 at 1 and 4 clients, n=7 at 4; Raft n=3 at 1 and 4, n=5 at 4; etcd at 1 and 4.
    EXPECT_EQ(runs, 8u);

    for (const char* plot : {"throughput", "latency-cdf-c1", "latency-cdf-c4", "scaling"}) {
        const std::string svg = read_all(out / (std::string(plot) + ".svg"));
        EXPECT_NE(svg.find("<svg"), std::string::npos) << plot;
        const std::string png = read_all(out / (std::string(plot) + ".png"));
        EXPECT_EQ(png.substr(0, 4), "\x89PNG") << plot;
    }
    // Every replica and etcd member it started is gone, and their folders with them.
    std::ifstream started(out / "started-pids");
    std::string program;
    pid_t pid = 0;
    size_t processes = 0;
    while (started >> program >> pid) {
        ++processes;
        EXPECT_FALSE(still_running(pid, program)) << program << " " << pid << " outlived bench-compare";
    }
    EXPECT_EQ(processes, 4u + 7u + 3u + 5u + 3u);  // PBFT 4 and 7, Raft 3 and 5, etcd 3
    EXPECT_FALSE(std::filesystem::exists(out / "work"));
}

}  // namespace
}  // namespace tally::integration
