// `tally bench`: closed- or open-loop clients over one pipelined Client. See bench.h.
#include "client/bench.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <thread>
#include <zmq.hpp>

#include "bft/quorum.h"
#include "client/client.h"
#include "client/net.h"
#include "client/phases.h"
#include "client/curve.h"
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

// The flooding client (BenchOptions::flood_replica): a thread of its own, with its own ZeroMQ
// context, so that the load's client is measured as it would be beside a flood from elsewhere.
class Flood {
public:
    static Result<std::unique_ptr<Flood>> start(const node::api::ReplicaConfig& replica,
                                                uint32_t connections) {
        std::unique_ptr<Flood> flood(new Flood());
        // One well-formed transfer whose signature's first half (R) carries a counter: every
        // frame is new bytes (no cached verdict) that decode and cost a full signature check
        // before they are refused as bad_signature. (A counter in the second half, S, would
        // make S non-canonical, which libsodium refuses without the curve arithmetic.)
        const auto stranger = crypto::KeyPair::generate();
        flood->frame_ = ledger::make_transfer(stranger, crypto::KeyPair::generate().public_key(), 1, 1);
        try {
            for (uint32_t i = 0; i < std::max<uint32_t>(connections, 1); ++i) {
                zmq::socket_t socket(flood->context_, zmq::socket_type::dealer);
                socket.set(zmq::sockopt::linger, 0);
                if (auto s = secure_to_replica(socket, replica); !s) return s.error();
                socket.connect(replica.client_endpoint());
                flood->sockets_.push_back(std::move(socket));
            }
        } catch (const zmq::error_t& e) {
            return make_error("network", std::string("flood: ") + e.what());
        }
        flood->began_ = std::chrono::steady_clock::now();
        flood->thread_ = std::thread([raw = flood.get()] { raw->run(); });
        return flood;
    }

    ~Flood() {
        stop_.store(true);
        if (thread_.joinable()) thread_.join();
        for (auto& s : sockets_) s.close();
        context_.close();
    }

    void stop(BenchResult& result) {
        stop_.store(true);
        if (thread_.joinable()) thread_.join();
        result.flood_sent = sent_;
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - began_).count();
        result.flood_per_s = s > 0 ? static_cast<double>(sent_) / s : 0;
    }

private:
    Flood() = default;

    void run() {
        std::vector<zmq::pollitem_t> items;
        for (auto& s : sockets_) items.push_back({s.handle(), 0, ZMQ_POLLIN | ZMQ_POLLOUT, 0});
        zmq::message_t reply;
        while (!stop_.load(std::memory_order_relaxed)) {
            try {
                zmq::poll(items.data(), items.size(), std::chrono::milliseconds(10));
                for (size_t i = 0; i < sockets_.size(); ++i) {
                    // Replies are read and dropped, so that they never hold the connection up.
                    while (sockets_[i].recv(reply, zmq::recv_flags::dontwait)) {
                    }
                    for (int burst = 0; burst < 64; ++burst) {
                        const uint64_t counter = sent_ + 1;
                        std::memcpy(frame_.data() + frame_.size() - sizeof(crypto::Signature), &counter,
                                    sizeof(counter));
                        if (!sockets_[i].send(zmq::const_buffer(frame_.data(), frame_.size()),
                                              zmq::send_flags::dontwait))
                            break;
                        ++sent_;
                    }
                }
            } catch (const zmq::error_t&) {
                // EINTR: go round again
            }
        }
    }

    zmq::context_t context_{1};
    std::vector<zmq::socket_t> sockets_;
    std::string frame_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    uint64_t sent_ = 0;  // the flood thread's until it is joined
    std::chrono::steady_clock::time_point began_;
};

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

namespace {

// The summary of `values` (sorted here).
PhaseSummary summarize(std::vector<double>& values) {
    PhaseSummary s;
    s.n = values.size();
    s.p50_ms = percentile(values, 50);
    s.p99_ms = percentile(values, 99);
    return s;
}

// `--breakdown`'s second client (BenchOptions::breakdown): on a thread of its own, it asks every
// replica for its most recent seqs a few times a second. Seqs executed while not counting
// (before and after the window: count()) only move where counting goes on from; while counting,
// each new executed seq's phase durations are kept, once per replica.
class BreakdownPoller {
public:
    explicit BreakdownPoller(const node::api::NetworkConfig& config)
        : config_(config),
          protocol_(bft::protocol_name(config.protocol)),
          order_(stages(protocol_)),
          samples_(order_.size() - 1, std::vector<std::vector<double>>(config.n())),
          through_(config.n(), 0) {}
    ~BreakdownPoller() { stop(); }

    Status start() {
        if (auto s = client_.connect(config_); !s) return s.error();
        thread_ = std::thread([this] { loop(); });
        return Ok{};
    }
    void count(bool on) { counting_.store(on); }
    void stop() {
        stop_.store(true);
        if (thread_.joinable()) thread_.join();
    }
    // At the window's end: stops the polling thread and polls once more, counting, so that
    // what executed since the last poll is in (a window shorter than one poll interval would
    // otherwise have nothing). The seqs executed between the window's end and this poll (a
    // round trip) are counted too: a few milliseconds' worth.
    void finish() {
        stop();
        poll(/*counting=*/true);
        counting_.store(false);
    }

    // After stop().
    Breakdown result() {
        Breakdown b;
        b.protocol = protocol_;
        for (size_t t = 0; t < samples_.size(); ++t) {
            PhaseRow row{order_[t], order_[t + 1], {}, {}};
            std::vector<double> all;
            for (auto& values : samples_[t]) {
                all.insert(all.end(), values.begin(), values.end());
                row.replicas.push_back(summarize(values));
            }
            row.all = summarize(all);
            b.rows.push_back(std::move(row));
        }
        b.batch_requests = summarize(batch_requests_);
        b.polls = polls_;
        b.missed = missed_;
        return b;
    }

private:
    // A sample per seq and replica: bounded for any window a benchmark runs (a million).
    static constexpr size_t kSamplesMax = 1'000'000;
    static constexpr Duration kPollEvery{200};

    void loop() {
        while (!stop_.load()) {
            const auto next = Clock::now() + kPollEvery;
            poll(counting_.load());
            while (!stop_.load() && Clock::now() < next) std::this_thread::sleep_for(Duration{10});  // the polling interval
        }
    }

    void poll(bool counting) {
        auto statuses = client_.status(Duration{500}, std::nullopt, kRecentSeqs);
        if (!statuses) return;
        ++polls_;
        for (uint32_t i = 0; i < statuses->size() && i < through_.size(); ++i)
            if ((*statuses)[i].up) observe(i, (*statuses)[i].reply, counting);
    }

    void observe(uint32_t replica, const node::api::pb::StatusReply& reply, bool counting) {
        uint64_t& through = through_[replica];
        if (reply.executed() < through) through = 0;  // its ledger went back (a fresh data folder)
        std::vector<const node::api::pb::SeqTimeline*> executed;
        for (const auto& seq : reply.recent())
            if (seq.executed_ms() != 0 && seq.seq() > through) executed.push_back(&seq);
        std::sort(executed.begin(), executed.end(), [](auto* a, auto* b) { return a->seq() < b->seq(); });
        for (const auto* seq : executed) {
            if (counting && through > 0 && seq->seq() > through + 1) missed_ += seq->seq() - through - 1;
            through = seq->seq();
            if (!counting) continue;
            for (const auto& [transition, ms] : phase_durations(*seq, order_))
                if (samples_[transition][replica].size() < kSamplesMax) samples_[transition][replica].push_back(ms);
            if (replica == 0 && batch_requests_.size() < kSamplesMax)
                batch_requests_.push_back(static_cast<double>(seq->requests()));
        }
    }

    static constexpr uint32_t kRecentSeqs = 64;  // what a replica sends at most
    const node::api::NetworkConfig& config_;
    const std::string protocol_;
    const std::vector<std::string>& order_;
    Client client_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> counting_{false};
    // Only the poller thread touches these until stop().
    std::vector<std::vector<std::vector<double>>> samples_;  // [transition][replica]
    std::vector<uint64_t> through_;                          // by replica: the last seq seen
    std::vector<double> batch_requests_;
    uint64_t polls_ = 0;
    uint64_t missed_ = 0;
};

// BenchCost's readings (bench.h): every replica's status, and this process's CPU, at the two
// edges of the window, over a client of its own (the load's is busy with the load). A replica
// that was down at either edge, or whose counters went back (it restarted in between), makes
// the replicas' cost unknown rather than wrong.
class CostMeter {
public:
    explicit CostMeter(const node::api::NetworkConfig& config) : config_(config) {}
    ~CostMeter() {
        if (begin_thread_.joinable()) begin_thread_.join();
    }

    Status connect() { return client_.connect(config_); }
    // At the window's start, on a thread of its own: a status round trip (up to a second when
    // a replica is down) must not hold the load up inside the measured window.
    void read_begin() {
        begin_thread_ = std::thread([this] { begin_ = read(); });
    }
    // At the window's end: the load stopped counting, so waiting here delays nothing measured.
    void read_end() {
        if (begin_thread_.joinable()) begin_thread_.join();
        end_ = read();
    }

    BenchCost cost(uint64_t committed) const {
        BenchCost c;
        if (committed == 0) return c;
        const double n = static_cast<double>(committed);
        c.client_cpu_ms = static_cast<double>(end_.own_cpu_us - begin_.own_cpu_us) / 1000.0 / n;
        if (begin_.replicas.size() != config_.n() || end_.replicas.size() != config_.n()) return c;
        uint64_t cpu_us = 0, messages = 0, bytes = 0;
        for (size_t i = 0; i < config_.n(); ++i) {
            const ReplicaReading& a = begin_.replicas[i];
            const ReplicaReading& b = end_.replicas[i];
            if (!a.up || !b.up || b.cpu_us < a.cpu_us || b.messages < a.messages || b.bytes < a.bytes) return c;
            cpu_us += b.cpu_us - a.cpu_us;
            messages += b.messages - a.messages;
            bytes += b.bytes - a.bytes;
        }
        c.replicas_known = true;
        c.replica_cpu_ms = static_cast<double>(cpu_us) / 1000.0 / n;
        c.messages = static_cast<double>(messages) / n;
        c.bytes = static_cast<double>(bytes) / n;
        return c;
    }

private:
    struct ReplicaReading {
        bool up = false;
        uint64_t cpu_us = 0, messages = 0, bytes = 0;
    };
    struct Reading {
        uint64_t own_cpu_us = 0;
        std::vector<ReplicaReading> replicas;  // by id; empty when the status call failed
    };

    Reading read() {
        Reading r;
        r.own_cpu_us = own_cpu_us();
        auto statuses = client_.status(Duration{1'000});
        if (!statuses) return r;
        r.replicas.resize(config_.n());
        for (const auto& s : *statuses) {
            if (s.id >= r.replicas.size()) continue;
            r.replicas[s.id] = ReplicaReading{s.up, s.reply.cpu_us(), s.reply.messages_sent(), s.reply.bytes_sent()};
        }
        return r;
    }

    const node::api::NetworkConfig& config_;
    Client client_;
    std::thread begin_thread_;
    Reading begin_, end_;
};

// The load itself: each bench account has at most one transfer in flight. Closed loop: the
// next leaves when the last is accepted. Open loop: arrivals come from a Poisson process and go
// to idle accounts, or wait in arrival order for one (bench.h). Counts what completes inside
// the window [window_begin, window_end).
class Load {
public:
    Load(Client& client, const crypto::KeyPair& faucet, const std::vector<crypto::KeyPair>& keys,
         const BenchOptions& options)
        : client_(client),
          faucet_(faucet),
          keys_(keys),
          options_(options),
          begin_(Clock::now()),
          begin_unix_(std::chrono::system_clock::now()),
          window_begin_(begin_ + std::chrono::duration_cast<Clock::duration>(Seconds(options.warmup_s))),
          window_end_(window_begin_ + std::chrono::duration_cast<Clock::duration>(Seconds(options.duration_s))),
          next_nonce_(keys.size(), 1),
          random_(std::random_device{}()),
          open_(options.rate > 0),
          to_send_(options.rate, options.seed),
          to_count_(options.rate, options.seed) {}

    // Runs until the window ends (or `stop_after` committed), reporting each second, then lets
    // what is in flight complete (uncounted) for at most kDrainMax.
    // `on_window` is called once, when the measured window begins.
    void run(std::ostream& progress, const std::function<void(bool begins)>& on_window) {
        if (open_)
            progress << "offering " << options_.rate << " transfers/s (Poisson arrivals, seed " << options_.seed
                     << ") over ";
        else
            progress << "running ";
        progress << options_.clients << " clients: " << options_.warmup_s << " s warm-up, then "
                 << options_.duration_s << " s measured" << std::endl;
        if (open_) {
            for (size_t i = 0; i < keys_.size(); ++i) idle_.push_back(i);
            next_to_send_ = arrival_time(to_send_.next_s());
            next_to_count_ = arrival_time(to_count_.next_s());
        } else {
            for (size_t i = 0; i < keys_.size(); ++i) issue(i, Clock::now());
        }
        auto next_report = window_begin_ + std::chrono::seconds(1);
        uint64_t last_committed = 0;
        bool window_begun = false;
        while (!done()) {
            Duration wait{50};
            if (open_) {
                admit_arrivals(Clock::now());
                // Released at most 1 ms late (the wait's grain); the latency counts from the arrival.
                const auto until_next = std::chrono::ceil<Duration>(next_to_count_ - Clock::now());
                wait = std::clamp(until_next, Duration{0}, wait);
            }
            client_.poll(wait);
            const auto now = Clock::now();
            if (!window_begun && now >= window_begin_) {
                window_begun = true;
                if (on_window) on_window(true);
            }
            if (now < next_report) continue;
            char line[160];
            std::snprintf(line, sizeof(line), "  %5.1f s  %8llu tx/s  (%llu committed)",
                          Seconds(now - window_begin_).count(),
                          static_cast<unsigned long long>(committed_ - last_committed),
                          static_cast<unsigned long long>(committed_));
            progress << line;
            if (open_) progress << "  " << arrived_ - sent_ << " arrivals waiting for a client";
            progress << std::endl;
            last_committed = committed_;
            next_report += std::chrono::seconds(1);
        }
        // Every arrival inside the window is offered, the last ones too (they complete uncounted).
        if (open_) {
            admit_arrivals(std::min(Clock::now(), window_end_));
            waiting_at_end_ = arrived_ - sent_;
        }
        stopping_ = true;
        window_end_ = std::min(window_end_, Clock::now());  // what completes while draining is not counted
        if (on_window) on_window(false);
        const auto drain_deadline = Clock::now() + kDrainMax;
        while (client_.outstanding() > 0 && Clock::now() < drain_deadline) client_.poll(Duration{50});
    }

    BenchResult result() {
        const double measured_s = std::max(Seconds(window_end_ - window_begin_).count(), 1e-9);
        BenchResult result;
        result.clients = options_.clients;
        result.duration_s = measured_s;
        result.committed = committed_;
        result.failed = failed_;
        result.tps = static_cast<double>(committed_) / measured_s;
        result.p50_ms = percentile(latencies_ms_, 50);
        result.p99_ms = percentile(latencies_ms_, 99);
        result.latency_percentiles = percentiles(latencies_ms_);
        result.request_bytes = request_bytes_;
        result.retransmits = client_.retransmits();
        result.rejected_replies = client_.counters().rejected();
        const auto window_begin_unix =
            begin_unix_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(window_begin_ - begin_);
        result.window_start_unix_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(window_begin_unix.time_since_epoch()).count();
        result.max_gap = largest_gap(commit_times_s_, measured_s);
        result.interval_s = std::chrono::duration<double>(options_.interval).count();
        if (options_.timeline) result.timeline = timeline_of(commit_times_s_, result.interval_s, measured_s);
        if (options_.commit_times) result.commit_times_s = std::move(commit_times_s_);
        if (open_) {
            OpenLoop open;
            open.rate = options_.rate;
            open.seed = options_.seed;
            open.arrivals = arrivals_in_window_;
            open.waited = waited_in_window_;
            open.backlog_max = backlog_max_;
            open.waiting_at_end = waiting_at_end_;
            open.lag_p50_ms = percentile(lags_ms_, 50);
            open.lag_p99_ms = percentile(lags_ms_, 99);
            result.open_loop = open;
        }
        return result;
    }

    double sign_p50_us() { return percentile(sign_us_, 50); }
    Clock::time_point window_begin() const { return window_begin_; }

private:
    bool in_window(Clock::time_point t) const { return t >= window_begin_ && t < window_end_; }
    bool done() const {
        return Clock::now() >= window_end_ || (options_.stop_after > 0 && committed_ >= options_.stop_after);
    }

    // To another bench account at random; a lone client pays the faucet back.
    crypto::PublicKey payee_of(size_t i) {
        if (keys_.size() < 2) return faucet_.public_key();
        std::uniform_int_distribution<size_t> pick(0, keys_.size() - 2);
        size_t to = pick(random_);
        if (to >= i) ++to;
        return keys_[to].public_key();
    }

    // A time of the arrival process; one past the run's end (and its drain) is never.
    Clock::time_point arrival_time(double s) const {
        const double horizon_s = options_.warmup_s + options_.duration_s + Seconds(kDrainMax).count() + 1;
        if (!(s < horizon_s)) return Clock::time_point::max();
        return begin_ + std::chrono::duration_cast<Clock::duration>(Seconds(s));
    }

    // Open loop: arrivals due by `now` go to idle accounts, in order; then those left count as
    // waiting (every arrival's time passes here first, within the 1 ms wait grain).
    void admit_arrivals(Clock::time_point now) {
        // (An idle account means nothing waits: free() sends a waiting arrival at once.)
        if (stopping_) return;
        while (next_to_count_ <= now) {
            ++arrived_;
            const bool counted = in_window(next_to_count_);
            arrivals_in_window_ += counted;
            if (!idle_.empty()) {
                const size_t i = idle_.front();
                idle_.pop_front();
                issue_arrival(i);  // this very arrival: nothing waits before it
            } else {
                waited_in_window_ += counted;
            }
            next_to_count_ = arrival_time(to_count_.next_s());
        }
        backlog_max_ = std::max(backlog_max_, arrived_ - sent_);
    }

    // The oldest arrival not yet sent, from account i.
    void issue_arrival(size_t i) {
        const auto arrived = next_to_send_;
        ++sent_;
        next_to_send_ = arrival_time(to_send_.next_s());
        issue(i, arrived);
    }

    // Account i is free again: closed loop, its next transfer leaves now; open loop, it takes
    // the oldest waiting arrival, or waits for the next.
    void free(size_t i) {
        if (!open_) return issue(i, Clock::now());
        if (sent_ < arrived_ && !stopping_) return issue_arrival(i);
        idle_.push_back(i);
    }

    // Account i's next transfer, counted from `start` (closed loop: now; open loop: its
    // arrival); when it completes, the account is free (or resyncs its nonce on failure).
    void issue(size_t i, Clock::time_point start) {
        if (stopping_) return;
        const auto signing = Clock::now();
        if (open_ && in_window(start) && lags_ms_.size() < 10'000'000)
            lags_ms_.push_back(std::chrono::duration<double, std::milli>(signing - start).count());
        std::string transfer = ledger::make_transfer(keys_[i], payee_of(i), 1, next_nonce_[i]);
        request_bytes_ = transfer.size();
        if (options_.breakdown && in_window(signing) && sign_us_.size() < 1'000'000)
            sign_us_.push_back(std::chrono::duration<double, std::micro>(Clock::now() - signing).count());
        auto submitted = client_.submit_async(
            std::move(transfer),
            [this, i, start](const Result<OrderedResult>& r) { on_transfer(i, start, r); },
            options_.request_timeout);
        if (!submitted) {
            ++failed_;
            resync(i);
        }
    }

    void on_transfer(size_t i, Clock::time_point start, const Result<OrderedResult>& r) {
        const auto now = Clock::now();
        if (r && r->ok()) {
            if (in_window(now)) {
                ++committed_;
                latencies_ms_.push_back(std::chrono::duration<double, std::milli>(now - start).count());
                commit_times_s_.push_back(Seconds(now - window_begin_).count());
            }
            ++next_nonce_[i];
            return free(i);
        }
        if (in_window(now)) ++failed_;
        resync(i);
    }

    // After a failure or a timeout the account's nonce is uncertain: ask the ledger, then go on.
    void resync(size_t i) {
        if (stopping_) return;
        const auto ephemeral = crypto::KeyPair::generate();
        auto submitted = client_.submit_async(
            ledger::make_balance_query(ephemeral, keys_[i].public_key(), 1),
            [this, i](const Result<OrderedResult>& r) {
                if (!r || !r->ok()) return resync(i);
                next_nonce_[i] = r->account_nonce + 1;
                free(i);
            },
            options_.request_timeout);
        (void)submitted;  // a fresh key's query cannot be in flight already
    }

    Client& client_;
    const crypto::KeyPair& faucet_;
    const std::vector<crypto::KeyPair>& keys_;
    const BenchOptions& options_;
    const Clock::time_point begin_;
    const std::chrono::system_clock::time_point begin_unix_;
    const Clock::time_point window_begin_;
    Clock::time_point window_end_;  // earlier once `stop_after` committed
    std::vector<uint64_t> next_nonce_;
    std::mt19937_64 random_;
    std::vector<double> latencies_ms_;
    std::vector<double> sign_us_;         // --breakdown: building and signing a transfer
    std::vector<double> commit_times_s_;  // from window_begin_, ascending
    uint64_t committed_ = 0;
    uint64_t failed_ = 0;
    uint64_t request_bytes_ = 0;
    bool stopping_ = false;
    // Open loop only. Arrivals wait in arrival order, so those waiting are always the latest
    // ones: two cursors over the same seeded process stand for the queue, and hold no memory
    // however far the offer outruns the network. `to_send_` is the next arrival to send (the
    // oldest waiting, or the next to come); `to_count_` runs ahead, counting arrivals as their
    // time comes.
    const bool open_;
    PoissonArrivals to_send_;
    PoissonArrivals to_count_;
    Clock::time_point next_to_send_;
    Clock::time_point next_to_count_;
    uint64_t sent_ = 0;     // arrivals sent
    uint64_t arrived_ = 0;  // arrivals whose time has come; arrived_ - sent_ wait for an account
    std::deque<size_t> idle_;  // accounts with nothing in flight
    uint64_t arrivals_in_window_ = 0;
    uint64_t waited_in_window_ = 0;
    uint64_t backlog_max_ = 0;
    uint64_t waiting_at_end_ = 0;
    std::vector<double> lags_ms_;  // arrival to send
};

// True when every replica listens on a loopback address: their CPU is this machine's.
bool replicas_on_this_machine(const node::api::NetworkConfig& config) {
    return std::all_of(config.replicas.begin(), config.replicas.end(),
                       [](const auto& r) { return is_loopback_host(r.host); });
}

}  // namespace

Result<BenchResult> run_bench(const node::api::NetworkConfig& config, const crypto::KeyPair& faucet,
                              const BenchOptions& options, std::ostream& progress) {
    if (options.clients < 1) return make_error("usage", "bench needs at least 1 client");
    if (!(options.duration_s > 0)) return make_error("usage", "bench needs a positive duration");
    if (options.interval.count() <= 0) return make_error("usage", "bench needs a positive interval");
    if (options.rate != 0 && !(options.rate >= kRateMin && options.rate <= kRateMax))
        return make_error("usage", "bench needs a rate of 0 (closed loop) or from " + std::to_string(kRateMin) +
                                       " to " + std::to_string(kRateMax) + " transfers per second");
    Client client;
    if (auto s = client.connect(config); !s) return s.error();
    std::vector<crypto::KeyPair> keys;
    keys.reserve(options.clients);
    for (uint32_t i = 0; i < options.clients; ++i) keys.push_back(crypto::KeyPair::generate());
    if (auto s = fund_accounts(client, faucet, keys, options, progress); !s) return s.error();
    std::unique_ptr<Flood> flood;
    if (options.flood_replica >= 0) {
        if (static_cast<size_t>(options.flood_replica) >= config.replicas.size())
            return make_error("usage", "--flood-replica " + std::to_string(options.flood_replica) +
                                           ": no such replica");
        auto started = Flood::start(config.replicas[static_cast<size_t>(options.flood_replica)],
                                    options.flood_connections);
        if (!started) return started.error();
        flood = std::move(*started);
        progress << "flooding replica " << options.flood_replica << " over "
                 << options.flood_connections << " connection(s)" << std::endl;
    }
    std::unique_ptr<BreakdownPoller> poller;
    if (options.breakdown) {
        poller = std::make_unique<BreakdownPoller>(config);
        if (auto s = poller->start(); !s) return s.error();
    }
    CostMeter meter(config);
    if (auto s = meter.connect(); !s) return s.error();
    Load load(client, faucet, keys, options);
    std::optional<MachineCpu> machine_begin, machine_end;
    load.run(progress, [&](bool begins) {
        if (begins) {
            machine_begin = machine_cpu();
            meter.read_begin();
            if (poller) poller->count(true);
        } else {
            machine_end = machine_cpu();
            meter.read_end();
            if (poller) poller->finish();  // what drains after the window is not counted
        }
    });
    if (poller) poller->stop();
    BenchResult result = load.result();
    result.cost = meter.cost(result.committed);
    if (machine_begin && machine_end && result.cost.replicas_known && replicas_on_this_machine(config)) {
        const double system_cpu_s = (result.cost.replica_cpu_ms + result.cost.client_cpu_ms) *
                                    static_cast<double>(result.committed) / 1000.0;
        result.machine = machine_use(*machine_begin, *machine_end, system_cpu_s);
    }
    if (poller) {
        result.breakdown = poller->result();
        result.breakdown->sign_p50_us = load.sign_p50_us();
    }
    if (flood) flood->stop(result);
    return result;
}

}  // namespace tally::client
