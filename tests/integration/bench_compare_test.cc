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

TEST(BenchCompare, AQuickRunWritesASummaryRawRunsAndPlotsForEverySystem) {
    const auto out = std::filesystem::temp_directory_path() / ("tally-bench-compare-" + std::to_string(::getpid()));
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
    }
    // PBFT n=4 at 1 and 4 clients, n=7 at 4; Raft n=3 at 1 and 4, n=5 at 4; etcd at 1 and 4.
    EXPECT_EQ(runs, 8u);

    for (const char* plot : {"throughput", "latency-cdf-c1", "latency-cdf-c4", "scaling"}) {
        const std::string svg = read_all(out / (std::string(plot) + ".svg"));
        EXPECT_NE(svg.find("<svg"), std::string::npos) << plot;
        const std::string png = read_all(out / (std::string(plot) + ".png"));
        EXPECT_EQ(png.substr(0, 4), "\x89PNG") << plot;
    }
    // The networks it started are gone with their folders.
    EXPECT_FALSE(std::filesystem::exists(out / "work"));
    std::filesystem::remove_all(out);
}

}  // namespace
}  // namespace tally::integration
