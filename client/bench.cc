// `tally bench`: closed-loop clients over one pipelined Client. See bench.h.
#include "client/bench.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>

#include "client/client.h"
#include "ledger/tx.h"

namespace tally::client {
namespace {

// Faucet transfers in flight at once while funding: one. Requests from one sender that are in
// flight together may be ordered in any order (replicas verify them in parallel), and a
// transfer that arrives before its predecessor fails kNonceTooHigh and may still apply later
// from another replica's copy: funding one at a time avoids that churn.
constexpr size_t kFundWave = 1;
constexpr int kFundRoundsMax = 20;
constexpr Duration kDrainMax{5'000};

using Seconds = std::chrono::duration<double>;

Status fund_accounts(Client& client, const crypto::KeyPair& faucet,
                     const std::vector<crypto::KeyPair>& keys, const BenchOptions& options,
                     std::ostream& progress) {
    std::vector<size_t> todo(keys.size());
    for (size_t i = 0; i < todo.size(); ++i) todo[i] = i;
    std::string last_failure;
    for (int round = 0; round < kFundRoundsMax && !todo.empty(); ++round) {
        auto account = client.balance(faucet.public_key(), Consistency::kFast, options.request_timeout);
        if (!account) return account.error();
        if (!account->exists)
            return make_error("failed", "the faucet account does not exist in this network");
        uint64_t nonce = account->nonce;
        std::vector<size_t> retry;
        for (size_t start = 0; start < todo.size(); start += kFundWave) {
            const size_t end = std::min(todo.size(), start + kFundWave);
            size_t pending = 0;
            std::vector<size_t> failed;
            for (size_t k = start; k < end; ++k) {
                const size_t index = todo[k];
                auto envelope = ledger::make_transfer(faucet, keys[index].public_key(),
                                                      options.fund_amount, ++nonce);
                auto submitted = client.submit_async(
                    std::move(envelope),
                    [&, index](const Result<OrderedResult>& r) {
                        --pending;
                        if (r && r->ok()) return;
                        failed.push_back(index);
                        last_failure = r ? result_text(r->result) : r.error().message;
                    },
                    options.request_timeout);
                if (!submitted) return submitted.error();
                ++pending;
            }
            while (pending > 0) client.poll(Duration{100});
            if (!failed.empty()) {
                // Later nonces may now be wrong: re-read the faucet's nonce and retry the rest.
                retry.insert(retry.end(), failed.begin(), failed.end());
                retry.insert(retry.end(), todo.begin() + static_cast<std::ptrdiff_t>(end), todo.end());
                break;
            }
            const size_t funded = keys.size() - todo.size() + end;
            if (funded % 16 == 0 || funded == keys.size())
                progress << "funding bench accounts: " << funded << "/" << keys.size() << std::endl;
        }
        todo = std::move(retry);
    }
    if (!todo.empty())
        return make_error("failed", "could not fund the bench accounts from the faucet (" +
                                        last_failure + ")");
    return Ok{};
}

}  // namespace

std::vector<TimelinePoint> timeline_of(const std::vector<double>& times_s, double interval_s,
                                       double span_s) {
    std::vector<TimelinePoint> points;
    if (!(interval_s > 0) || !(span_s > 0)) return points;
    // A hair below the exact quotient, so a span of exactly k intervals is k of them.
    const auto count = static_cast<size_t>(std::ceil(span_s / interval_s - 1e-9));
    points.resize(std::max<size_t>(count, 1));
    for (size_t i = 0; i < points.size(); ++i) points[i].t_s = static_cast<double>(i) * interval_s;
    for (double t : times_s) {
        if (!(t >= 0) || !(t < span_s)) continue;
        const auto index = std::min(static_cast<size_t>(t / interval_s), points.size() - 1);
        ++points[index].committed;
    }
    for (auto& p : points) {
        const double width = std::min(interval_s, span_s - p.t_s);
        p.tps = width > 0 ? static_cast<double>(p.committed) / width : 0;
    }
    return points;
}

CommitGap largest_gap(const std::vector<double>& times_s, double span_s) {
    CommitGap best{0, span_s};
    if (times_s.empty()) return best;
    best = CommitGap{0, times_s.front()};
    for (size_t i = 1; i < times_s.size(); ++i) {
        const CommitGap gap{times_s[i - 1], times_s[i]};
        if (gap.length_s() > best.length_s()) best = gap;
    }
    const CommitGap tail{times_s.back(), std::max(span_s, times_s.back())};
    if (tail.length_s() > best.length_s()) best = tail;
    return best;
}

double percentile(std::vector<double>& values, double p) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    const double rank = std::ceil(p / 100.0 * static_cast<double>(values.size()));
    const size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
    return values[std::min(index, values.size() - 1)];
}

Result<BenchResult> run_bench(const node::api::NetworkConfig& config, const crypto::KeyPair& faucet,
                              const BenchOptions& options, std::ostream& progress) {
    if (options.clients < 1) return make_error("usage", "bench needs at least 1 client");
    if (!(options.duration_s > 0)) return make_error("usage", "bench needs a positive duration");
    if (options.interval.count() <= 0) return make_error("usage", "bench needs a positive interval");
    Client client;
    if (auto s = client.connect(config); !s) return s.error();

    std::vector<crypto::KeyPair> keys;
    keys.reserve(options.clients);
    for (uint32_t i = 0; i < options.clients; ++i) keys.push_back(crypto::KeyPair::generate());
    if (auto s = fund_accounts(client, faucet, keys, options, progress); !s) return s.error();

    const auto begin = Clock::now();
    const auto begin_unix = std::chrono::system_clock::now();
    const auto window_begin = begin + std::chrono::duration_cast<Clock::duration>(Seconds(options.warmup_s));
    // The window ends at its duration, or earlier once `stop_after` transfers committed.
    auto window_end =
        window_begin + std::chrono::duration_cast<Clock::duration>(Seconds(options.duration_s));
    std::vector<uint64_t> next_nonce(options.clients, 1);
    std::vector<double> latencies_ms;
    std::vector<double> commit_times_s;  // from window_begin, ascending
    uint64_t committed = 0;
    uint64_t failed = 0;
    bool stopping = false;
    std::mt19937_64 random(std::random_device{}());
    auto in_window = [&](Clock::time_point t) { return t >= window_begin && t < window_end; };
    auto done = [&] {
        return Clock::now() >= window_end || (options.stop_after > 0 && committed >= options.stop_after);
    };

    std::function<void(size_t)> issue;
    std::function<void(size_t)> resync;
    issue = [&](size_t i) {
        if (stopping) return;
        // To another bench account at random; a lone client pays the faucet back.
        crypto::PublicKey to_key = faucet.public_key();
        if (keys.size() > 1) {
            std::uniform_int_distribution<size_t> pick(0, keys.size() - 2);
            size_t to = pick(random);
            if (to >= i) ++to;
            to_key = keys[to].public_key();
        }
        const auto start = Clock::now();
        auto envelope = ledger::make_transfer(keys[i], to_key, 1, next_nonce[i]);
        auto submitted = client.submit_async(
            std::move(envelope),
            [&, i, start](const Result<OrderedResult>& r) {
                const auto now = Clock::now();
                if (r && r->ok()) {
                    if (in_window(now)) {
                        ++committed;
                        latencies_ms.push_back(
                            std::chrono::duration<double, std::milli>(now - start).count());
                        commit_times_s.push_back(Seconds(now - window_begin).count());
                    }
                    ++next_nonce[i];
                    issue(i);
                    return;
                }
                if (in_window(now)) ++failed;
                resync(i);
            },
            options.request_timeout);
        if (!submitted) {
            ++failed;
            resync(i);
        }
    };
    // After a failure or a timeout the account's nonce is uncertain: ask the ledger.
    resync = [&](size_t i) {
        if (stopping) return;
        const auto ephemeral = crypto::KeyPair::generate();
        auto submitted = client.submit_async(
            ledger::make_balance_query(ephemeral, keys[i].public_key(), 1),
            [&, i](const Result<OrderedResult>& r) {
                if (r && r->ok()) {
                    next_nonce[i] = r->account_nonce + 1;
                    issue(i);
                } else {
                    resync(i);
                }
            },
            options.request_timeout);
        (void)submitted;  // a fresh key's query cannot be in flight already
    };

    progress << "running " << options.clients << " clients: " << options.warmup_s
             << " s warm-up, then " << options.duration_s << " s measured" << std::endl;
    for (size_t i = 0; i < keys.size(); ++i) issue(i);
    auto next_report = window_begin + std::chrono::seconds(1);
    uint64_t last_committed = 0;
    while (!done()) {
        client.poll(Duration{50});
        const auto now = Clock::now();
        if (now >= next_report) {
            char line[128];
            std::snprintf(line, sizeof(line), "  %5.1f s  %8llu tx/s  (%llu committed)",
                          Seconds(now - window_begin).count(),
                          static_cast<unsigned long long>(committed - last_committed),
                          static_cast<unsigned long long>(committed));
            progress << line << std::endl;
            last_committed = committed;
            next_report += std::chrono::seconds(1);
        }
    }
    stopping = true;
    window_end = std::min(window_end, Clock::now());  // what completes while draining is not counted
    const double measured_s = std::max(Seconds(window_end - window_begin).count(), 1e-9);
    const auto drain_deadline = Clock::now() + kDrainMax;
    while (client.outstanding() > 0 && Clock::now() < drain_deadline) client.poll(Duration{50});

    BenchResult result;
    result.clients = options.clients;
    result.duration_s = measured_s;
    result.committed = committed;
    result.failed = failed;
    result.tps = static_cast<double>(committed) / measured_s;
    result.p50_ms = percentile(latencies_ms, 50);
    result.p99_ms = percentile(latencies_ms, 99);
    result.retransmits = client.retransmits();
    result.rejected_replies = client.counters().rejected();
    result.window_start_unix_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(
            (begin_unix + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                              window_begin - begin))
                .time_since_epoch())
            .count();
    result.max_gap = largest_gap(commit_times_s, measured_s);
    result.interval_s = std::chrono::duration<double>(options.interval).count();
    if (options.timeline) result.timeline = timeline_of(commit_times_s, result.interval_s, measured_s);
    if (options.commit_times) result.commit_times_s = std::move(commit_times_s);
    return result;
}

}  // namespace tally::client
