// `tally bench`: load on a running network, measured end to end at the client.
//
// C logical clients, each with a fresh account funded from the faucet, each with at most one
// transfer outstanding (to a random other bench account; its nonces go in order). All of them
// run in one thread over one Client (pipelined over its sockets). Two loads:
//   - closed loop (the default): each client sends its next transfer when the last one is
//     accepted by the protocol's quorum of replies. The load follows the network's speed;
//     latency is submit to acceptance.
//   - open loop (`rate` > 0): transfers arrive at `rate` per second in all, at exponentially
//     distributed intervals (a Poisson process, from `seed`), whether or not earlier ones
//     completed, as users who do not wait for each other would send them. Each arrival goes to
//     an idle client; when none is idle it waits, in arrival order, for the first to free up.
//     Latency is arrival to acceptance, so time spent waiting (for a client, or for the
//     client's 1 ms wait to release it) counts in full: a network slower than the offered rate
//     shows as growing latency, never as a lighter load (no coordinated omission).
// Throughput counts accepted transfers with result ok inside the measuring window (after a
// warm-up).
// Optionally it keeps when each transfer was accepted: a timeline of commits per interval, and
// the largest gap between consecutive commits (a view change shows up as one), so throughput
// before, during and after a fault can be read from one run.
//
// What it trusts: the faucet key file it is given and network.json, as any client.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "crypto/keys.h"
#include "client/load_measure.h"
#include "crypto/result.h"
#include "node/api/network_config.h"

namespace tally::client {

inline constexpr double kRateMin = 0.001, kRateMax = 1e7;  // BenchOptions::rate, when not 0

struct BenchOptions {
    uint32_t clients = 16;
    double duration_s = 10.0;  // measured
    double warmup_s = 1.0;     // run but not measured
    uint64_t fund_amount = 1'000'000'000;  // per bench account
    std::chrono::milliseconds request_timeout{10'000};
    // Stop early once this many transfers committed inside the window; 0: run the whole
    // duration. (Then BenchResult::duration_s is the time it took.)
    uint64_t stop_after = 0;
    bool timeline = false;                  // fill BenchResult::timeline
    std::chrono::milliseconds interval{1'000};  // the timeline's interval width
    bool commit_times = false;              // fill BenchResult::commit_times_s
    // A flooding client beside the load (`--flood-replica R`): `flood_connections` connections
    // to replica R's client port send well-formed transfers with bad signatures, each distinct
    // (so none is a cache hit), as fast as the sockets take them: each costs the replica a full
    // signature check. -1: no flood. What the honest clients' latency does under it, against a
    // run without it, is scripts/measure-flood.
    int flood_replica = -1;
    uint32_t flood_connections = 1;
    bool breakdown = false;  // fill BenchResult::breakdown
    // Open loop: arrivals per second in all (a Poisson process from `seed`); 0: closed loop.
    // Otherwise at least kRateMin and at most kRateMax.
    double rate = 0;
    uint64_t seed = 1;
};

// The arrival times of a Poisson process of `rate` per second: gaps exponential with mean
// 1/rate, drawn from `seed` (the same seed gives the same times on every machine and library:
// the gaps are computed here from the generator's 53 top bits, not by a std:: distribution,
// whose algorithm each standard library chooses). Times are seconds from the process's start,
// ascending. `rate` must be positive.
class PoissonArrivals {
public:
    PoissonArrivals(double rate, uint64_t seed) : random_(seed), rate_(rate) {}
    double next_s() {
        const double u = static_cast<double>(random_() >> 11) * 0x1p-53;  // in [0, 1)
        t_s_ += -std::log1p(-u) / rate_;
        return t_s_;
    }

private:
    std::mt19937_64 random_;
    double rate_;
    double t_s_ = 0;
};

// Open loop (BenchOptions::rate): what was offered inside the measured window.
struct OpenLoop {
    double rate = 0;           // asked for (per second)
    uint64_t seed = 0;
    uint64_t arrivals = 0;     // arrivals inside the window
    uint64_t waited = 0;       // of them, how many found no idle client and waited for one
    uint64_t backlog_max = 0;  // the most arrivals waiting for a client at once (whole run)
    uint64_t waiting_at_end = 0;  // arrivals still waiting for a client when the window closed:
                                  // their latency is in no percentile (the slowest of an overload)
    double lag_p50_ms = 0;     // arrival to send, inside the window: the client's own delay
    double lag_p99_ms = 0;
};

// `--breakdown`: where committed batches spent their time, phase by phase (client/phases.h), at
// each replica, over the measured window; and what the client itself spent signing. A second
// client polls every replica's most recent seqs (StatusRequest.recent_seqs) a few times a
// second; each seq a replica executed inside the window counts once for that replica. Each
// duration is one replica's own clock; the step from a replica's reply to the client's
// acceptance is in the end-to-end latency only (two machines' clocks never meet here).
struct PhaseSummary {
    double p50_ms = 0;
    double p99_ms = 0;
    uint64_t n = 0;
};
struct PhaseRow {
    std::string from, to;               // consecutive stages
    PhaseSummary all;                   // every replica's samples together
    std::vector<PhaseSummary> replicas; // by replica id
};
struct Breakdown {
    std::string protocol;
    std::vector<PhaseRow> rows;
    PhaseSummary batch_requests;  // requests per batch (p50/p99 in place of ms), seen at one replica
    double sign_p50_us = 0;       // the client: build and sign one transfer
    uint64_t polls = 0;
    uint64_t missed = 0;  // seqs that left a replica's recent window between two polls (not counted)
};

// Committed transfers in one interval of the timeline.
struct TimelinePoint {
    double t_s = 0;         // the interval's start, seconds from the window's start
    uint64_t committed = 0;
    double tps = 0;         // committed / interval width
};

// The longest time the benchmark saw no transfer accepted.
struct CommitGap {
    double start_s = 0;  // the last commit before the gap (or the window's start)
    double end_s = 0;    // the first commit after it (or the window's end)
    double length_s() const { return end_s - start_s; }
};

// What the measured window cost, per committed transfer: the CPU time of the replicas (all
// together, user and system, every thread of each process, as each reports it in its status)
// and of this benchmark process, and the messages and bytes the replicas sent one another.
// Read from every replica at the window's two edges; `replicas_known` is false when one did
// not answer at either edge (its figures are then left at 0).
struct BenchCost {
    bool replicas_known = false;
    double replica_cpu_ms = 0;
    double client_cpu_ms = 0;
    double messages = 0;
    double bytes = 0;
    bool messages_known = true;  // false for a system that does not count them (etcd)
};

struct BenchResult {
    uint32_t clients = 0;
    double duration_s = 0;
    uint64_t committed = 0;  // accepted with result ok inside the window
    uint64_t failed = 0;     // timed out or accepted with a failed result, inside the window
    double tps = 0;
    double p50_ms = 0;
    double p99_ms = 0;
    std::vector<std::pair<double, double>> latency_percentiles;  // (p, ms) at kCdfPoints
    BenchCost cost;
    uint64_t request_bytes = 0;  // one request as it goes on the wire (a signed transfer)
    uint64_t retransmits = 0;
    uint64_t rejected_replies = 0;
    // Wall clock (ms since the Unix epoch) at the window's start, to line the times below up
    // with events outside the benchmark (a replica killed by a script).
    int64_t window_start_unix_ms = 0;
    CommitGap max_gap;  // over the window, its edges included
    double interval_s = 0;
    std::vector<TimelinePoint> timeline;  // when asked for
    std::vector<double> commit_times_s;   // when asked for: each commit, from the window's start
    std::optional<Breakdown> breakdown;   // when asked for
    std::optional<OpenLoop> open_loop;    // when BenchOptions::rate > 0
    // The machine over the window (load_measure.h), when every replica runs on this machine
    // and reported its CPU: what else ran beside the benchmark.
    std::optional<MachineUse> machine;
    uint64_t flood_sent = 0;              // frames the flooding client sent (whole run)
    double flood_per_s = 0;               // of them, per second over the whole run
};

// Funds the bench accounts from `faucet`, runs the load, and reports. Progress lines go to
// `progress`. Errors: "timeout" / "failed" (funding did not complete), connection errors.
Result<BenchResult> run_bench(const node::api::NetworkConfig& config, const crypto::KeyPair& faucet,
                              const BenchOptions& options, std::ostream& progress);

// Commits per interval: `times_s` (ascending, seconds from 0) counted into intervals of
// `interval_s` covering [0, span_s); the last interval may be shorter and its tps is scaled to
// its width. Times outside [0, span_s) are ignored. Empty for a non-positive interval or span.
std::vector<TimelinePoint> timeline_of(const std::vector<double>& times_s, double interval_s,
                                       double span_s);

// The largest gap between consecutive times in `times_s` (ascending), counting the edges 0 and
// `span_s` as times too: a run that stops committing has its largest gap at the end.
CommitGap largest_gap(const std::vector<double>& times_s, double span_s);

}  // namespace tally::client
