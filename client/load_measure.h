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

// The whole machine's CPU time since boot (/proc/stat's "cpu" line), in microseconds: `busy`
// is user, nice, system, irq and softirq time (guest time is inside user); `steal` is time
// the hypervisor gave this VM's CPUs to others while they wanted to run. nullopt when it
// cannot be read.
struct MachineCpu {
    uint64_t busy_us = 0;
    uint64_t steal_us = 0;
    uint32_t cpus = 0;   // online
    uint64_t at_us = 0;  // when it was read (CLOCK_MONOTONIC)
};
std::optional<MachineCpu> machine_cpu();

// The machine between two readings (the window): how many of its CPUs were busy on average,
// how many of them the measured system (its replicas or members, and the load generator
// itself: `system_cpu_s` CPU-seconds in all over the window) was charged for, and the rest,
// "other work": other processes sharing the machine, which make a run slower than the system
// is, and the kernel time charged to no process (interrupts, softirqs such as loopback
// traffic, writeback threads), part of which the measured system caused. A busy machine shows
// as other_cpus, a noisy VM as steal_cpus.
struct MachineUse {
    uint32_t cpus = 0;
    double busy_cpus = 0;
    double system_cpus = 0;
    double other_cpus = 0;  // busy_cpus - system_cpus, at least 0
    double steal_cpus = 0;
};
// nullopt when the readings do not make a window (a non-positive length, a counter that went
// back).
std::optional<MachineUse> machine_use(const MachineCpu& begin, const MachineCpu& end, double system_cpu_s);

}  // namespace tally::client
