// What a closed-loop load generator measures beside its own counts, shared by `tally bench` and
// `tally-etcd-load` so that Tally and etcd are summed up by the same code: latency percentiles
// (the CDF a report plots) and CPU time, this process's and another's.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace tally::client {

// The p-th percentile (0..100) of `values` by nearest rank; 0 for none. Sorts `values`.
double percentile(std::vector<double>& values, double p);

// (p, value) at the fixed points of kCdfPoints: enough for a latency CDF. Empty for none.
// Sorts `values`.
inline constexpr double kCdfPoints[] = {0.1, 1, 2.5, 5, 10, 20, 30, 40, 50, 60, 70,
                                        80, 90, 95, 97.5, 99, 99.5, 99.9, 100};
std::vector<std::pair<double, double>> percentiles(std::vector<double>& values);

// CPU time, user and system, of this process (every thread), in microseconds.
uint64_t own_cpu_us();
// CPU time of process `pid` (every thread) from /proc/PID/stat; nullopt when it cannot be read
// (no such process).
std::optional<uint64_t> process_cpu_us(pid_t pid);

}  // namespace tally::client
