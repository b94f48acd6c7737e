// `tally bench`: closed-loop load on a running network, measured end to end at the client.
//
// C logical clients, each with a fresh account funded from the faucet, each keeping exactly one
// transfer outstanding (to a random other bench account) and sending the next, with the next
// nonce, when the last one is accepted by f+1 matching replies. All of them run in one thread
// over one Client (pipelined over its sockets). Throughput counts accepted transfers with
// result ok inside the measuring window (after a warm-up); latency is submit to acceptance.
//
// What it trusts: the faucet key file it is given and network.json, as any client.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "crypto/keys.h"
#include "crypto/result.h"
#include "node/config.h"

namespace tally::client {

struct BenchOptions {
    uint32_t clients = 16;
    double duration_s = 10.0;  // measured
    double warmup_s = 1.0;     // run but not measured
    uint64_t fund_amount = 1'000'000'000;  // per bench account
    std::chrono::milliseconds request_timeout{10'000};
};

struct BenchResult {
    uint32_t clients = 0;
    double duration_s = 0;
    uint64_t committed = 0;  // accepted with result ok inside the window
    uint64_t failed = 0;     // timed out or accepted with a failed result, inside the window
    double tps = 0;
    double p50_ms = 0;
    double p99_ms = 0;
    uint64_t retransmits = 0;
    uint64_t rejected_replies = 0;
};

// Funds the bench accounts from `faucet`, runs the load, and reports. Progress lines go to
// `progress`. Errors: "timeout" / "failed" (funding did not complete), connection errors.
Result<BenchResult> run_bench(const node::NetworkConfig& config, const crypto::KeyPair& faucet,
                              const BenchOptions& options, std::ostream& progress);

// The p-th percentile (0..100) of `values` by nearest rank; 0 for none. Sorts `values`.
double percentile(std::vector<double>& values, double p);

}  // namespace tally::client
