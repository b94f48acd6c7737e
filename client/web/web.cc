// The live view's server. See web.h.
#include "client/web/web.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "bft/quorum.h"
#include "client/cli.h"
#include "client/client.h"
#include "client/net.h"
#include "client/phases.h"
#include "client/web/assets.h"

namespace tally::client::web {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;
using SystemClock = std::chrono::system_clock;

constexpr milliseconds kHistory{60'000};        // the charts' window
constexpr size_t kMaxSamples = 1'000;           // whatever the poll interval
constexpr size_t kMaxEvents = 60;
constexpr milliseconds kDetectedEventEvery{3'000};  // one "detected" line per replica and kind at most this often
constexpr time_t kHttpTimeoutS = 5;
constexpr size_t kMaxBody = 4 * 1024;
constexpr int kListenBacklog = 64;
// The timeline: each poll asks every replica for its most recent seqs' steps (a replica sends
// at most 64 whatever is asked); each seq executed there gives its phase durations once.
constexpr uint32_t kTimelineSeqs = 16;
constexpr size_t kMaxLatencySamples = 30'000;  // a minute of 16 new seqs per replica per poll

int64_t unix_ms() {
    return std::chrono::duration_cast<milliseconds>(SystemClock::now().time_since_epoch()).count();
}

// httplib's ThreadPool queues without a bound; this one holds at most `max_queued` accepted
// connections waiting for a worker, and past that makes the accept loop wait.
class BoundedPool : public httplib::TaskQueue {
public:
    BoundedPool(size_t threads, size_t max_queued) : max_queued_(max_queued) {
        for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
    }
    void enqueue(std::function<void()> fn) override {
        std::unique_lock lock(mutex_);
        room_.wait(lock, [&] { return jobs_.size() < max_queued_ || shutdown_; });
        jobs_.push_back(std::move(fn));
        ready_.notify_one();
    }
    void shutdown() override {
        {
            std::lock_guard lock(mutex_);
            shutdown_ = true;
        }
        ready_.notify_all();
        room_.notify_all();
        for (auto& t : threads_) t.join();
    }

private:
    void work() {
        while (true) {
            std::function<void()> fn;
            {
                std::unique_lock lock(mutex_);
                ready_.wait(lock, [&] { return !jobs_.empty() || shutdown_; });
                if (jobs_.empty()) return;  // shutting down, nothing left
                fn = std::move(jobs_.front());
                jobs_.pop_front();
                room_.notify_one();
            }
            fn();
        }
    }
    const size_t max_queued_;
    std::vector<std::thread> threads_;
    std::list<std::function<void()>> jobs_;
    std::mutex mutex_;
    std::condition_variable ready_;
    std::condition_variable room_;
    bool shutdown_ = false;
};

// One poll of one replica.
struct Observed {
    bool up = false;
    node::api::pb::StatusReply reply;
    std::optional<uint64_t> transactions;  // tally_committed_transactions_total, from its metrics
};

struct Sample {
    int64_t t_ms = 0;
    std::vector<std::optional<uint64_t>> executed;
    double transactions_per_s = 0;  // the fastest replica's rate since the previous sample
    double batches_per_s = 0;
    bool has_transactions = false;  // some replica's metrics answered both times
};

// The committed-transaction counter from a replica's Prometheus text, when it has one.
std::optional<uint64_t> scrape_transactions(const node::api::ReplicaConfig& replica) {
    if (replica.metrics_port == 0) return std::nullopt;
    httplib::Client http(replica.host, replica.metrics_port);
    http.set_connection_timeout(0, 200'000);
    http.set_read_timeout(0, 300'000);
    http.set_write_timeout(0, 200'000);
    auto res = http.Get("/metrics");
    if (!res || res->status != 200) return std::nullopt;
    std::istringstream in(res->body);
    std::string line;
    const std::string name = "tally_committed_transactions_total";
    while (std::getline(in, line)) {
        if (line.compare(0, name.size(), name) != 0) continue;
        if (line.size() > name.size() && line[name.size()] != '{' && line[name.size()] != ' ') continue;
        const auto space = line.rfind(' ');
        if (space == std::string::npos) continue;
        try {
            return static_cast<uint64_t>(std::stod(line.substr(space + 1)));
        } catch (const std::exception&) {
            return std::nullopt;
        }
    }
    return std::nullopt;
}

// The (f+1)-th highest of `rates` (the lowest when fewer), 0 for none.
double honest_rate(std::vector<double> rates, uint32_t f) {
    if (rates.empty()) return 0;
    std::sort(rates.begin(), rates.end(), std::greater<>());
    return rates[std::min<size_t>(f, rates.size() - 1)];
}

// One phase duration of one seq at one replica.
struct LatencySample {
    int64_t t_ms = 0;  // when the poller saw it (the window's clock)
    uint32_t replica = 0;
    size_t transition = 0;  // stages()[transition] -> stages()[transition + 1]
    double ms = 0;
};

// {median_ms, p90_ms, n} of `values` (sorted here); null when empty.
json summary(std::vector<double> values) {
    if (values.empty()) return nullptr;
    std::sort(values.begin(), values.end());
    const auto at = [&](double q) {
        return values[std::min(values.size() - 1,
                               static_cast<size_t>(q * static_cast<double>(values.size())))];
    };
    return json{{"median_ms", at(0.5)}, {"p90_ms", at(0.9)}, {"n", values.size()}};
}

json trace_step(const node::api::pb::TraceStep& s) {
    return json{{"phase", s.phase()},
                {"view", s.view()},
                {"at_ms", s.at_ms()},
                {"mono_us", s.mono_us()},
                {"votes", std::vector<uint32_t>(s.votes().begin(), s.votes().end())}};
}

// What the poller keeps and the HTTP side reads: the JSON answer of /api/state, rebuilt after
// each poll or action, and the kill/start queue (one at a time).
class LiveView {
public:
    LiveView(node::api::NetworkConfig config, std::string dir, milliseconds interval)
        : config_(std::move(config)), dir_(std::move(dir)), interval_(interval) {
        last_.resize(config_.n());
        last_detected_event_.resize(config_.n());
        latency_counted_through_.resize(config_.n());
    }

    void start() {
        poller_ = std::thread([this] { poll_loop(); });
        actor_ = std::thread([this] { action_loop(); });
    }
    void stop() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        if (poller_.joinable()) poller_.join();
        if (actor_.joinable()) actor_.join();
    }

    std::string state_json() {
        std::lock_guard lock(mutex_);
        return state_;
    }

    // Queues a kill or start of replica `id`. False when one is already queued or running.
    bool request(const std::string& verb, uint32_t id) {
        std::lock_guard lock(mutex_);
        if (action_) return false;
        action_ = Action{verb, id};
        add_event_locked("action", verb + " replica " + std::to_string(id) + " (from the web view)");
        rebuild_locked();
        wake_.notify_all();
        return true;
    }

    uint32_t n() const { return config_.n(); }

private:
    struct Action {
        std::string verb;
        uint32_t id = 0;
    };
    struct Event {
        int64_t t_ms = 0;
        std::string kind;  // "down", "up", "view", "detected", "action", "error"
        std::string text;
    };

    void poll_loop() {
        Client client;
        const bool connected = static_cast<bool>(client.connect(config_));
        while (true) {
            const auto begin = Clock::now();
            std::vector<Observed> now(config_.n());
            if (connected) {
                // A silent replica costs the whole wait: keep it under the interval.
                auto statuses = client.status(std::max(milliseconds{100}, interval_ * 4 / 5),
                                              std::nullopt, kTimelineSeqs);
                if (statuses) {
                    for (const auto& s : *statuses) {
                        if (s.id >= now.size()) continue;
                        now[s.id].up = s.up;
                        now[s.id].reply = s.reply;
                    }
                }
            }
            for (uint32_t i = 0; i < config_.n(); ++i)
                if (now[i].up) now[i].transactions = scrape_transactions(config_.replicas[i]);
            const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - begin);
            {
                std::lock_guard lock(mutex_);
                observe_locked(std::move(now), took);
                rebuild_locked();
            }
            std::unique_lock lock(mutex_);
            if (wake_.wait_until(lock, begin + interval_, [&] { return stopping_; })) return;
        }
    }

    void action_loop() {
        while (true) {
            Action action;
            {
                std::unique_lock lock(mutex_);
                // Replicas this server started are its children: when one dies (killed here, by
                // `tally net kill` or `net down`), it is reaped here, the only thread that
                // starts or waits for them (net.cc's reaping is not thread-safe).
                while (!wake_.wait_for(lock, milliseconds{1'000},
                                       [&] { return stopping_ || (action_ && !action_running_); })) {
                    lock.unlock();
                    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
                    }
                    lock.lock();
                }
                if (stopping_) return;
                action = *action_;
                action_running_ = true;
                rebuild_locked();
            }
            std::ostringstream out;
            std::ostringstream progress;
            Status result = action.verb == "kill"
                                ? net_kill(dir_, action.id, out)
                                : net_start(dir_, action.id, out, progress, milliseconds{30'000});
            std::lock_guard lock(mutex_);
            std::string text = out.str();
            while (!text.empty() && text.back() == '\n') text.pop_back();
            if (result) {
                add_event_locked("action", text.empty() ? action.verb + " replica " + std::to_string(action.id) + ": done" : text);
            } else {
                add_event_locked("error", action.verb + " replica " + std::to_string(action.id) +
                                              " failed: " + result.error().message);
            }
            last_action_ = json{{"verb", action.verb}, {"id", action.id}, {"ok", static_cast<bool>(result)},
                                {"text", result ? text : result.error().message}, {"t_ms", unix_ms()}};
            action_.reset();
            action_running_ = false;
            rebuild_locked();
        }
    }

    void add_event_locked(const std::string& kind, const std::string& text) {
        events_.push_back(Event{unix_ms(), kind, text});
        while (events_.size() > kMaxEvents) events_.pop_front();
    }

    // Compares this poll with the last one: events, and the history's next sample.
    void observe_locked(std::vector<Observed> now, milliseconds took) {
        const int64_t t = unix_ms();
        const auto steady = Clock::now();
        Sample sample;
        sample.t_ms = t;
        for (uint32_t i = 0; i < now.size(); ++i) {
            const auto& cur = now[i];
            const auto& old = last_[i];
            const std::string who = "replica " + std::to_string(i);
            sample.executed.push_back(cur.up ? std::optional<uint64_t>(cur.reply.executed()) : std::nullopt);
            if (polls_ > 0 && cur.up != old.up)
                add_event_locked(cur.up ? "up" : "down", who + (cur.up ? " answers again" : " stopped answering"));
            if (!cur.up) continue;
            if (old.up && cur.reply.view() > old.reply.view())
                add_event_locked("view", who + " moved to " +
                                             (cur.reply.protocol() == "raft" ? "term " : "view ") +
                                             std::to_string(cur.reply.view()) + " (" + cur.reply.role() + ")");
            // New detections, per kind, summed into one line every few seconds.
            std::map<std::string, uint64_t> before;
            for (const auto& d : old.reply.detected()) before[d.kind()] = d.count();
            for (const auto& d : cur.reply.detected()) {
                const uint64_t was = old.up ? before[d.kind()] : d.count();
                if (polls_ == 0 || d.count() <= was) continue;
                auto& pending = last_detected_event_[i][d.kind()];
                pending.unreported += d.count() - was;
                if (steady - pending.at >= kDetectedEventEvery) {
                    add_event_locked("detected", who + " detected " + d.kind() + " ×" +
                                                     std::to_string(pending.unreported) + " (" +
                                                     std::to_string(d.count()) + " in all)");
                    pending.unreported = 0;
                    pending.at = steady;
                }
            }
        }
        observe_latency_locked(now, t);
        // Rates between this sample and the last: each replica's, then the (f+1)-th highest,
        // a rate at least one honest replica reached whatever f traitors report, and one that
        // a replica catching up (executing a backlog at once) does not inflate. A restarted
        // replica's counters start again and are skipped.
        if (!history_.empty()) {
            const double dt = static_cast<double>(t - history_.back().t_ms) / 1000.0;
            std::vector<double> batches;
            std::vector<double> transactions;
            for (uint32_t i = 0; dt > 0 && i < now.size(); ++i) {
                const auto& was = history_.back().executed[i];
                if (now[i].up && was && now[i].reply.executed() >= *was)
                    batches.push_back(static_cast<double>(now[i].reply.executed() - *was) / dt);
                if (now[i].transactions && last_[i].transactions && *now[i].transactions >= *last_[i].transactions)
                    transactions.push_back(static_cast<double>(*now[i].transactions - *last_[i].transactions) / dt);
            }
            sample.batches_per_s = honest_rate(batches, config_.f);
            sample.has_transactions = !transactions.empty();
            sample.transactions_per_s = honest_rate(transactions, config_.f);
        }
        history_.push_back(std::move(sample));
        while (history_.size() > kMaxSamples || (history_.size() > 1 && history_.front().t_ms < t - kHistory.count()))
            history_.pop_front();
        last_ = std::move(now);
        last_poll_ms_ = t;
        last_took_ = took;
        ++polls_;
    }

    // Each replica's seqs executed since the last poll give their phase durations, once; the
    // window keeps the last minute's (and at most kMaxLatencySamples).
    void observe_latency_locked(const std::vector<Observed>& now, int64_t t) {
        const auto& order = stages(std::string(bft::protocol_name(config_.protocol)));
        for (uint32_t i = 0; i < now.size(); ++i) {
            if (!now[i].up) continue;
            uint64_t& through = latency_counted_through_[i];
            // A replica whose ledger went back (a fresh data dir) starts counting again.
            if (now[i].reply.executed() < through) through = 0;
            for (const auto& seq : now[i].reply.recent()) {
                if (seq.executed_ms() == 0 || seq.seq() <= through) continue;
                through = seq.seq();
                for (const auto& [transition, ms] : phase_durations(seq, order))
                    latency_.push_back(LatencySample{t, i, transition, ms});
            }
        }
        while (latency_.size() > kMaxLatencySamples ||
               (!latency_.empty() && latency_.front().t_ms < t - kHistory.count()))
            latency_.pop_front();
    }

    json latency_json_locked() const {
        const auto& order = stages(std::string(bft::protocol_name(config_.protocol)));
        json rows = json::array();
        for (size_t k = 0; k + 1 < order.size(); ++k) {
            std::vector<double> all;
            std::vector<std::vector<double>> by_replica(config_.n());
            for (const auto& s : latency_) {
                if (s.transition != k) continue;
                all.push_back(s.ms);
                if (s.replica < by_replica.size()) by_replica[s.replica].push_back(s.ms);
            }
            json replicas = json::array();
            for (auto& values : by_replica) replicas.push_back(summary(std::move(values)));
            rows.push_back(json{{"from", order[k]},
                                {"to", order[k + 1]},
                                {"all", summary(std::move(all))},
                                {"replicas", std::move(replicas)}});
        }
        return json{{"window_s", kHistory.count() / 1000}, {"rows", std::move(rows)}};
    }

    void rebuild_locked() {
        json replicas = json::array();
        for (uint32_t i = 0; i < config_.n(); ++i) {
            const auto& o = last_[i];
            const auto& rc = config_.replicas[i];
            // What `tally net status --json` shows of it, and the live view's own.
            json r = o.up ? replica_status_json(o.reply) : json::object();
            r["id"] = i;
            r["up"] = o.up;
            r["address"] = rc.host + ":" + std::to_string(rc.port);
            // The traitor's behaviours as network.json says, also while it is down (in place of
            // replica_status_json's, which an answering traitor says itself).
            std::vector<std::string> traitor;
            if (!rc.traitor.empty()) {
                std::stringstream list(rc.traitor);
                std::string b;
                while (std::getline(list, b, ',')) traitor.push_back(b);
            }
            if (o.up) {
                const auto& p = o.reply;
                if (p.traitor_size() > 0) traitor.assign(p.traitor().begin(), p.traitor().end());
                r["transactions"] = o.transactions ? json(*o.transactions) : json(nullptr);
                json recent = json::array();
                for (const auto& seq : p.recent()) {
                    json steps = json::array();
                    for (const auto& step : seq.steps()) steps.push_back(trace_step(step));
                    recent.push_back(json{{"seq", seq.seq()},
                                          {"view", seq.view()},
                                          {"steps", std::move(steps)},
                                          {"executed_ms", seq.executed_ms()},
                                          {"executed_mono_us", seq.executed_mono_us()},
                                          {"requests", seq.requests()}});
                }
                r["recent"] = std::move(recent);
                json view_changes = json::array();
                for (const auto& step : p.recent_view_changes())
                    view_changes.push_back(trace_step(step));
                r["view_changes"] = std::move(view_changes);
            }
            r["traitor"] = traitor;
            replicas.push_back(std::move(r));
        }
        json history = json::array();
        for (const auto& s : history_) {
            json executed = json::array();
            for (const auto& e : s.executed) executed.push_back(e ? json(*e) : json(nullptr));
            history.push_back(json{{"t_ms", s.t_ms},
                                   {"executed", std::move(executed)},
                                   {"batches_per_s", s.batches_per_s},
                                   {"transactions_per_s", s.has_transactions ? json(s.transactions_per_s) : json(nullptr)}});
        }
        json events = json::array();
        for (const auto& e : events_) events.push_back(json{{"t_ms", e.t_ms}, {"kind", e.kind}, {"text", e.text}});
        json action = nullptr;
        if (action_) action = json{{"verb", action_->verb}, {"id", action_->id}, {"running", action_running_}};
        state_ = json{{"dir", dir_},
                      {"protocol", std::string(bft::protocol_name(config_.protocol))},
                      {"n", config_.n()},
                      {"f", config_.f},
                      {"now_ms", unix_ms()},
                      {"poll_ms", interval_.count()},
                      {"last_poll_ms", last_poll_ms_},
                      {"last_poll_took_ms", last_took_.count()},
                      {"polls", polls_},
                      {"history_s", kHistory.count() / 1000},
                      {"replicas", std::move(replicas)},
                      {"history", std::move(history)},
                      {"events", std::move(events)},
                      {"stages", stages(std::string(bft::protocol_name(config_.protocol)))},
                      {"latency", latency_json_locked()},
                      {"action", std::move(action)},
                      {"last_action", last_action_}}
                     .dump();
    }

    const node::api::NetworkConfig config_;
    const std::string dir_;
    const milliseconds interval_;

    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread poller_;
    std::thread actor_;

    std::vector<Observed> last_;
    struct DetectedEvent {
        Clock::time_point at{};
        uint64_t unreported = 0;
    };
    std::vector<std::map<std::string, DetectedEvent>> last_detected_event_;
    std::deque<Sample> history_;
    std::deque<Event> events_;
    std::deque<LatencySample> latency_;
    std::vector<uint64_t>
        latency_counted_through_;  // per replica: the last seq whose phases were counted
    std::optional<Action> action_;
    bool action_running_ = false;
    json last_action_ = nullptr;
    int64_t last_poll_ms_ = 0;
    milliseconds last_took_{0};
    uint64_t polls_ = 0;
    std::string state_ = "{}";
};

// True when the Host header names this server by a name no DNS rebinding can use: localhost,
// an IP address (v4, or v6 in brackets), or the --host given; with this server's port. A page of
// another site that made its own name resolve to 127.0.0.1 sends its own name, and is refused.
bool host_allowed(const std::string& host_header, const std::string& bound_host, int port) {
    const std::string suffix = ":" + std::to_string(port);
    if (host_header.size() <= suffix.size() ||
        host_header.compare(host_header.size() - suffix.size(), suffix.size(), suffix) != 0)
        return false;
    const std::string name = host_header.substr(0, host_header.size() - suffix.size());
    if (name == "localhost" || name == bound_host) return true;
    unsigned char address[16];
    if (::inet_pton(AF_INET, name.c_str(), address) == 1) return true;
    return name.size() > 2 && name.front() == '[' && name.back() == ']' &&
           ::inet_pton(AF_INET6, name.substr(1, name.size() - 2).c_str(), address) == 1;
}

void send_error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
    res.status = status;
    res.set_content(json{{"error", code}, {"message", message}}.dump(), "application/json");
}

}  // namespace

Status serve(const WebOptions& options, std::ostream& out) {
    auto config = load_network(options.dir);
    if (!config) return config.error();
    if (options.poll_interval < milliseconds{100} || options.poll_interval > milliseconds{60'000})
        return make_error("usage", "--poll-ms must be between 100 and 60000");

    // SIGINT and SIGTERM end the server through one thread that waits for them; every thread
    // started after this inherits the mask.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    httplib::Server server;
    server.new_task_queue = [] { return new BoundedPool(kHttpThreads, kHttpQueue); };
    // One request per connection: httplib holds a worker thread for each open connection, so
    // a browser's idle keep-alive connections would occupy the few workers. A connection on
    // 127.0.0.1 costs little next to a 500 ms poll.
    server.set_keep_alive_max_count(1);
    server.set_read_timeout(kHttpTimeoutS, 0);
    server.set_write_timeout(kHttpTimeoutS, 0);
    server.set_payload_max_length(kMaxBody);
    // httplib's default sets SO_REUSEPORT, which lets a second server bind a port already
    // served (and take half its connections): SO_REUSEADDR only, so a taken port is an error.
    socket_t listening = INVALID_SOCKET;
    server.set_socket_options([&listening](socket_t sock) {
        int yes = 1;
        ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
        listening = sock;
    });

    const int port = options.port == 0 ? server.bind_to_any_port(options.host)
                                        : (server.bind_to_port(options.host, options.port) ? options.port : -1);
    if (port <= 0)
        return make_error("bind", "cannot serve on " + options.host + ":" + std::to_string(options.port) +
                                      " (in use? choose another --port)");

    // httplib listens with a backlog of 5: a burst of browsers past that waits for a SYN
    // retransmission (a second). Listening again raises it (Linux updates the backlog).
    if (listening != INVALID_SOCKET) ::listen(listening, kListenBacklog);

    LiveView view(std::move(*config), options.dir, options.poll_interval);
    const std::string bound_host = options.host;

    server.set_pre_routing_handler([&](const httplib::Request& req, httplib::Response& res) {
        if (!host_allowed(req.get_header_value("Host"), bound_host, port)) {
            send_error(res, 403, "bad_host", "this server answers only to its own address");
            return httplib::Server::HandlerResponse::Handled;
        }
        res.set_header("Cache-Control", "no-store");
        res.set_header("X-Content-Type-Options", "nosniff");
        res.set_header("X-Frame-Options", "DENY");
        res.set_header("Content-Security-Policy",
                       "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                       "connect-src 'self'; frame-ancestors 'none'");
        return httplib::Server::HandlerResponse::Unhandled;
    });

    auto serve_asset = [](const std::string& path, httplib::Response& res) {
        for (size_t i = 0; i < kAssetCount; ++i) {
            if (path == kAssets[i].path) {
                res.set_content(reinterpret_cast<const char*>(kAssets[i].data), kAssets[i].size,
                                kAssets[i].content_type);
                return;
            }
        }
        send_error(res, 404, "not_found", "no such page");
    };
    server.Get("/", [&](const httplib::Request&, httplib::Response& res) { serve_asset("/index.html", res); });
    server.Get(R"(/([a-z]+\.(html|js|css)))",
               [&](const httplib::Request& req, httplib::Response& res) { serve_asset(req.path, res); });
    server.Get("/api/state", [&](const httplib::Request&, httplib::Response& res) {
        res.set_content(view.state_json(), "application/json");
    });
    server.Post(R"(/api/replicas/(\d{1,4})/(kill|start))", [&](const httplib::Request& req, httplib::Response& res) {
        // Only the page's own fetch: a JSON body (a cross-site form cannot send one, a
        // cross-site fetch needs a preflight we never grant), and the browser's own word on where
        // it comes from when it gives one.
        const std::string type = req.get_header_value("Content-Type");
        if (type.rfind("application/json", 0) != 0)
            return send_error(res, 415, "json_only", "POST with Content-Type: application/json");
        const std::string origin = req.get_header_value("Origin");
        if (!origin.empty() && origin != "http://" + req.get_header_value("Host"))
            return send_error(res, 403, "cross_origin", "requests from other origins are refused");
        const std::string site = req.get_header_value("Sec-Fetch-Site");
        if (!site.empty() && site != "same-origin")
            return send_error(res, 403, "cross_site", "requests from other sites are refused");
        const uint32_t id = static_cast<uint32_t>(std::stoul(req.matches[1].str()));
        if (id >= view.n()) return send_error(res, 404, "no_replica", "no replica " + req.matches[1].str());
        if (!view.request(req.matches[2].str(), id))
            return send_error(res, 409, "busy", "another kill or start is still running");
        res.status = 202;
        res.set_content(json{{"queued", req.matches[2].str()}, {"id", id}}.dump(), "application/json");
    });
    server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        send_error(res, 500, "internal", "internal error");
    });

    view.start();
    std::atomic<bool> signalled{false};
    std::thread signals([&] {
        int sig = 0;
        sigwait(&stop_signals, &sig);
        signalled = true;
        server.stop();
    });
    out << "live view of " << options.dir << " at http://"
        << (options.host.find(':') != std::string::npos ? "[" + options.host + "]" : options.host) << ":" << port
        << "/ (Ctrl-C stops it)" << std::endl;
    server.listen_after_bind();
    // Listening ended without a signal (an error): wake the signal thread ourselves.
    if (!signalled) pthread_kill(signals.native_handle(), SIGTERM);
    signals.join();
    view.stop();
    out << "live view stopped" << std::endl;
    return Ok{};
}

}  // namespace tally::client::web
