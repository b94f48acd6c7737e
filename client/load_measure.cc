// Percentiles and CPU time for the load generators. See load_measure.h.
#include "client/load_measure.h"

#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace tally::client {

namespace {

// The nearest-rank p-th percentile of `sorted` (ascending, not empty).
double of_sorted(const std::vector<double>& sorted, double p) {
    const double rank = std::ceil(p / 100.0 * static_cast<double>(sorted.size()));
    const size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
    return sorted[std::min(index, sorted.size() - 1)];
}

}  // namespace

double percentile(std::vector<double>& values, double p) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    return of_sorted(values, p);
}

std::vector<std::pair<double, double>> percentiles(std::vector<double>& values) {
    std::vector<std::pair<double, double>> out;
    if (values.empty()) return out;
    std::sort(values.begin(), values.end());
    for (double p : kCdfPoints) out.emplace_back(p, of_sorted(values, p));
    return out;
}

uint64_t own_cpu_us() {
    rusage usage{};
    if (::getrusage(RUSAGE_SELF, &usage) != 0) return 0;
    auto us = [](const timeval& t) {
        return static_cast<uint64_t>(t.tv_sec) * 1'000'000 + static_cast<uint64_t>(t.tv_usec);
    };
    return us(usage.ru_utime) + us(usage.ru_stime);
}

std::optional<uint64_t> process_cpu_us(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(in, line)) return std::nullopt;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so fields are counted
    // from the last ')'. utime and stime are fields 14 and 15, in clock ticks.
    const auto close = line.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream fields(line.substr(close + 2));
    std::string field;
    uint64_t utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
        if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
        if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
    }
    if (!fields) return std::nullopt;
    const long ticks = ::sysconf(_SC_CLK_TCK);
    if (ticks <= 0) return std::nullopt;
    return (utime + stime) * 1'000'000 / static_cast<uint64_t>(ticks);
}

std::optional<MachineCpu> machine_cpu() {
    std::ifstream in("/proc/stat");
    std::string label;
    uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    if (!(in >> label >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) || label != "cpu")
        return std::nullopt;
    const long ticks = ::sysconf(_SC_CLK_TCK);
    const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    if (ticks <= 0 || cpus <= 0) return std::nullopt;
    const auto us = [ticks](uint64_t t) { return t * 1'000'000 / static_cast<uint64_t>(ticks); };
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    MachineCpu m;
    m.at_us = static_cast<uint64_t>(now.tv_sec) * 1'000'000 + static_cast<uint64_t>(now.tv_nsec) / 1000;
    m.busy_us = us(user + nice + system + irq + softirq);
    m.steal_us = us(steal);
    m.cpus = static_cast<uint32_t>(cpus);
    return m;
}

std::optional<MachineUse> machine_use(const MachineCpu& begin, const MachineCpu& end, double system_cpu_s) {
    if (end.at_us <= begin.at_us || end.busy_us < begin.busy_us || end.steal_us < begin.steal_us) return std::nullopt;
    const double window_s = static_cast<double>(end.at_us - begin.at_us) / 1e6;
    MachineUse u;
    u.cpus = end.cpus;
    u.busy_cpus = static_cast<double>(end.busy_us - begin.busy_us) / 1e6 / window_s;
    u.steal_cpus = static_cast<double>(end.steal_us - begin.steal_us) / 1e6 / window_s;
    u.system_cpus = std::max(system_cpu_s, 0.0) / window_s;
    u.other_cpus = std::max(u.busy_cpus - u.system_cpus, 0.0);
    return u;
}

}  // namespace tally::client
