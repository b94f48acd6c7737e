// The report of scripts/bench-compare: the runs it made (each a `tally bench --json` or
// `tally-etcd-load --json` result in RAW/SYSTEM-nN-cC-rR.json) summed up as medians over rounds,
// written as a Markdown summary, gnuplot data files and the gnuplot script that draws them.
// Pure functions over parsed runs, so a test can check the arithmetic without a network.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "crypto/result.h"

namespace tally::client::compare {

// What a run file's name says: "pbft-n4-c64-r2.json".
struct RunKey {
    std::string system;  // pbft, raft or etcd
    uint32_t n = 0;      // replicas or members
    uint32_t clients = 0;
    uint32_t round = 0;
};
std::optional<RunKey> parse_run_name(const std::string& file_name);

// One run's figures, from its JSON.
struct Run {
    RunKey key;
    double tps = 0, p50_ms = 0, p99_ms = 0;
    uint64_t request_bytes = 0;
    std::optional<double> replica_cpu_ms, client_cpu_ms, messages, bytes;  // per committed transfer
    std::vector<std::pair<double, double>> percentiles;                    // (p, ms)
    // The machine over the window (load_measure.h, MachineUse), when the run reported it.
    std::optional<double> other_cpus, steal_cpus;
};
// Error "format" naming the field when the JSON is not a benchmark's result.
Result<Run> parse_run(const RunKey& key, const nlohmann::json& json);

// The median of `values`: the middle one, or the mean of the two middle ones; nullopt for none.
std::optional<double> median(std::vector<double> values);

// Medians over the rounds of one (system, n, clients).
struct Point {
    std::string system;
    uint32_t n = 0, clients = 0, rounds = 0;
    double tps = 0, p50_ms = 0, p99_ms = 0;
    uint64_t request_bytes = 0;  // the largest of its rounds'
    std::optional<double> replica_cpu_ms, client_cpu_ms, messages, bytes;
    std::vector<std::pair<double, double>> percentiles;  // each p's median
    // Other work on the machine during its rounds' windows, in CPUs: the median and the
    // largest; and the hypervisor's steal, the median.
    std::optional<double> other_cpus, other_cpus_max, steal_cpus;
};
std::vector<Point> summarize(const std::vector<Run>& runs);

struct ReportInfo {
    std::string machine;  // what it ran on
    std::string commit;
    std::string date;
    double duration_s = 0, warmup_s = 0;
    uint32_t scaling_clients = 0;  // the client count of the n-scaling runs
};

// The files of the report, by name: summary.md, *.dat and plots.gp (gnuplot writes the SVG and
// PNG files next to them when run on plots.gp in that folder).
std::map<std::string, std::string> report_files(const std::vector<Point>& points, const ReportInfo& info);

}  // namespace tally::client::compare
