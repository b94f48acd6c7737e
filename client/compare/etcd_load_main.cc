// `tally-etcd-load`: the project's own closed-loop load generator for etcd, so that
// scripts/bench-compare puts etcd under the same workload as `tally bench`: C clients, each with
// one put in flight and the next sent when the last is acknowledged, a warm-up, then a measured
// window; latency from send to acknowledgement. It speaks etcd v3's JSON gateway
// (POST /v3/kv/put over HTTP/1.1 keep-alive, cpp-httplib), not gRPC: no gRPC library is among
// the project's packages, and the gateway costs etcd more CPU per put than its own gRPC
// benchmark would (a JSON decode and a loopback gRPC call in the member), which the report says.
//
// Its result is a BenchResult printed by the same code as `tally bench --json` (client/cli.h):
// the same fields, the same percentiles (client/load_measure.h). The cost per put is the CPU
// of the etcd processes named by --pids (from /proc) and of this program, and the bytes the
// members sent one another (etcd's own counter, etcd_network_peer_sent_bytes_total, from each
// member's /metrics); etcd counts no messages, so "messages" stays unknown.
#include <httplib.h>
#include <sodium.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/bench.h"
#include "client/cli.h"
#include "client/load_measure.h"

namespace {

using Clock = std::chrono::steady_clock;
using Seconds = std::chrono::duration<double>;
namespace tc = tally::client;

struct Endpoint {
    std::string host;
    int port = 0;
};

// "http://HOST:PORT" (the only form etcd's --listen-client-urls gives here).
std::optional<Endpoint> parse_endpoint(const std::string& url) {
    const std::string scheme = "http://";
    if (url.rfind(scheme, 0) != 0) return std::nullopt;
    const std::string rest = url.substr(scheme.size());
    const auto colon = rest.rfind(':');
    if (colon == std::string::npos || colon == 0) return std::nullopt;
    Endpoint e{rest.substr(0, colon), 0};
    try {
        size_t used = 0;
        e.port = std::stoi(rest.substr(colon + 1), &used);
        if (used != rest.size() - colon - 1 || e.port <= 0 || e.port > 65535) return std::nullopt;
    } catch (const std::exception&) {
        return std::nullopt;
    }
    return e;
}

std::string base64(const std::string& bytes) {
    std::string out(sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                      bytes.size(), sodium_base64_VARIANT_ORIGINAL);
    out.resize(out.size() - 1);  // the terminating NUL
    return out;
}

// The sum of etcd_network_peer_sent_bytes_total over its peers, from one member's /metrics.
std::optional<double> peer_sent_bytes(const Endpoint& e) {
    httplib::Client http(e.host, e.port);
    http.set_connection_timeout(2, 0);
    http.set_read_timeout(2, 0);
    auto response = http.Get("/metrics");
    if (!response || response->status != 200) return std::nullopt;
    std::istringstream lines(response->body);
    std::string line;
    double sum = 0;
    const std::string name = "etcd_network_peer_sent_bytes_total";
    while (std::getline(lines, line)) {
        if (line.rfind(name, 0) != 0) continue;
        const auto space = line.rfind(' ');
        if (space == std::string::npos) continue;
        sum += std::strtod(line.c_str() + space + 1, nullptr);
    }
    return sum;
}

// One edge of the window: per etcd process its CPU, per member the bytes it sent its peers
// (nullopt where it could not be read), and this program's CPU.
struct Reading {
    std::vector<std::optional<uint64_t>> cpu_us;
    std::vector<std::optional<double>> bytes;
    uint64_t own_cpu_us = 0;
};

Reading read_costs(const std::vector<Endpoint>& endpoints, const std::vector<pid_t>& pids) {
    Reading r;
    r.own_cpu_us = tc::own_cpu_us();
    for (pid_t pid : pids) r.cpu_us.push_back(tc::process_cpu_us(pid));
    for (const auto& e : endpoints) r.bytes.push_back(peer_sent_bytes(e));
    return r;
}

// The members' CPU and peer bytes over the window, or nullopt when any could not be read at
// either edge or went back (a member restarted in between): unknown rather than wrong.
std::optional<std::pair<uint64_t, double>> members_cost(const Reading& first, const Reading& last) {
    uint64_t cpu = 0;
    double bytes = 0;
    if (first.cpu_us.empty()) return std::nullopt;
    for (size_t i = 0; i < first.cpu_us.size(); ++i) {
        if (!first.cpu_us[i] || !last.cpu_us[i] || *last.cpu_us[i] < *first.cpu_us[i]) return std::nullopt;
        cpu += *last.cpu_us[i] - *first.cpu_us[i];
    }
    for (size_t i = 0; i < first.bytes.size(); ++i) {
        if (!first.bytes[i] || !last.bytes[i] || *last.bytes[i] < *first.bytes[i]) return std::nullopt;
        bytes += *last.bytes[i] - *first.bytes[i];
    }
    return std::pair{cpu, bytes};
}

// Each member answers GET /version, or the error names it: before any load starts.
bool members_answer(const std::vector<Endpoint>& endpoints) {
    for (const auto& e : endpoints) {
        httplib::Client http(e.host, e.port);
        http.set_connection_timeout(2, 0);
        http.set_read_timeout(2, 0);
        auto response = http.Get("/version");
        if (!response || response->status != 200) {
            std::cerr << "tally-etcd-load: http://" << e.host << ":" << e.port << " does not answer GET /version ("
                      << (response ? "HTTP " + std::to_string(response->status) : httplib::to_string(response.error()))
                      << "): is etcd running there?\n";
            return false;
        }
    }
    return true;
}

// One closed-loop client: its own keep-alive connection to one member, its own samples.
struct Worker {
    std::vector<double> latencies_ms;
    std::vector<double> commit_times_s;  // from the window's start
    uint64_t committed = 0;
    uint64_t failed = 0;
    uint64_t request_bytes = 0;  // the HTTP body of a put
    std::string last_error;
};

void run_worker(const Endpoint& e, uint32_t id, const std::string& value, Clock::time_point window_begin,
                Clock::time_point window_end, Worker& w) {
    httplib::Client http(e.host, e.port);
    http.set_keep_alive(true);
    http.set_tcp_nodelay(true);  // else Nagle and the delayed ACK add ~40 ms to each put
    http.set_connection_timeout(5, 0);
    http.set_read_timeout(10, 0);
    const std::string value64 = base64(value);
    for (uint64_t i = 0;; ++i) {
        const auto start = Clock::now();
        if (start >= window_end) return;
        // A bounded key space (1,024 keys per client): the store does not grow with the run.
        const std::string key = "tally-bench/" + std::to_string(id) + "/" + std::to_string(i % 1024);
        const std::string body = nlohmann::json{{"key", base64(key)}, {"value", value64}}.dump();
        w.request_bytes = body.size();
        auto response = http.Post("/v3/kv/put", body, "application/json");
        const auto now = Clock::now();
        const bool ok = response && response->status == 200 &&
                        response->body.find("\"header\"") != std::string::npos;
        if (!ok) {
            w.last_error = response ? "HTTP " + std::to_string(response->status) + ": " + response->body.substr(0, 200)
                                    : httplib::to_string(response.error());
            if (now >= window_begin && now < window_end) ++w.failed;
            // A refused put is answered at once: pause before the next, so that a member down
            // does not turn this client into a busy loop on the cores the members share.
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            continue;
        }
        if (now < window_begin || now >= window_end) continue;
        ++w.committed;
        w.latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - start).count());
        w.commit_times_s.push_back(Seconds(now - window_begin).count());
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"closed-loop put load on an etcd cluster, reported as `tally bench --json` reports"};
    std::string endpoints_arg;
    uint32_t clients = 16;
    double duration_s = 10, warmup_s = 1;
    size_t value_bytes = 256;
    std::vector<int> pids_arg;
    bool json = false;
    app.add_option("--endpoints", endpoints_arg, "the members' client URLs, comma-separated (http://HOST:PORT)")
        ->required();
    app.add_option("--clients", clients, "logical clients (one put in flight each), spread over the members")
        ->capture_default_str()
        ->check(CLI::Range(1u, 10'000u));
    app.add_option("--duration", duration_s, "measured seconds")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--warmup", warmup_s, "unmeasured seconds first")->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--value-bytes", value_bytes, "bytes of each put's value")
        ->capture_default_str()
        ->check(CLI::Range(size_t{1}, size_t{1} << 20));
    app.add_option("--pids", pids_arg, "the etcd processes whose CPU the cost counts")->delimiter(',');
    app.add_flag("--json", json, "machine-readable output (as `tally bench --json`)");
    CLI11_PARSE(app, argc, argv);
    if (sodium_init() < 0) {
        std::cerr << "tally-etcd-load: libsodium failed to initialise\n";
        return 1;
    }

    std::vector<Endpoint> endpoints;
    std::stringstream list(endpoints_arg);
    for (std::string url; std::getline(list, url, ',');) {
        auto e = parse_endpoint(url);
        if (!e) {
            std::cerr << "tally-etcd-load: --endpoints: '" << url << "' is not http://HOST:PORT\n";
            return 2;
        }
        endpoints.push_back(*e);
    }
    if (endpoints.empty()) {
        std::cerr << "tally-etcd-load: --endpoints names no member\n";
        return 2;
    }
    const std::vector<pid_t> pids(pids_arg.begin(), pids_arg.end());
    if (!members_answer(endpoints)) return 3;
    const std::string value(value_bytes, 'v');

    std::cerr << "running " << clients << " clients on " << endpoints.size() << " etcd member(s): "
              << warmup_s << " s warm-up, then " << duration_s << " s measured" << std::endl;
    const auto begin = Clock::now();
    const auto window_begin = begin + std::chrono::duration_cast<Clock::duration>(Seconds(warmup_s));
    const auto window_end = window_begin + std::chrono::duration_cast<Clock::duration>(Seconds(duration_s));
    std::vector<Worker> workers(clients);
    std::vector<std::thread> threads;
    threads.reserve(clients);
    for (uint32_t i = 0; i < clients; ++i)
        threads.emplace_back(run_worker, std::cref(endpoints[i % endpoints.size()]), i, std::cref(value),
                             window_begin, window_end, std::ref(workers[i]));
    // The window's edges are the benchmark's own schedule: this thread only reads the costs there.
    std::this_thread::sleep_until(window_begin);
    const auto machine_first = tc::machine_cpu();
    const Reading first = read_costs(endpoints, pids);
    std::this_thread::sleep_until(window_end);
    const auto machine_last = tc::machine_cpu();
    const Reading last = read_costs(endpoints, pids);
    for (auto& t : threads) t.join();

    tc::BenchResult result;
    result.clients = clients;
    result.duration_s = duration_s;
    std::vector<double> latencies, times;
    std::string last_error;
    for (auto& w : workers) {
        result.committed += w.committed;
        result.failed += w.failed;
        latencies.insert(latencies.end(), w.latencies_ms.begin(), w.latencies_ms.end());
        times.insert(times.end(), w.commit_times_s.begin(), w.commit_times_s.end());
        if (!w.last_error.empty()) last_error = w.last_error;
        result.request_bytes = std::max(result.request_bytes, w.request_bytes);
    }
    result.tps = static_cast<double>(result.committed) / duration_s;
    result.p50_ms = tc::percentile(latencies, 50);
    result.p99_ms = tc::percentile(latencies, 99);
    result.latency_percentiles = tc::percentiles(latencies);
    std::sort(times.begin(), times.end());
    result.max_gap = tc::largest_gap(times, duration_s);
    if (result.committed > 0) {
        const double n = static_cast<double>(result.committed);
        result.cost.client_cpu_ms = static_cast<double>(last.own_cpu_us - first.own_cpu_us) / 1000.0 / n;
        if (auto members = members_cost(first, last)) {
            result.cost.replicas_known = true;
            result.cost.replica_cpu_ms = static_cast<double>(members->first) / 1000.0 / n;
            result.cost.bytes = members->second / n;
            // The members run on this machine (scripts/bench-compare starts them here).
            if (machine_first && machine_last)
                result.machine = tc::machine_use(*machine_first, *machine_last,
                                                 static_cast<double>(members->first + last.own_cpu_us - first.own_cpu_us) / 1e6);
        }
        result.cost.messages_known = false;
    }
    if (!last_error.empty()) std::cerr << "tally-etcd-load: last failed put: " << last_error << "\n";
    if (json) {
        std::cout << tc::bench_json(result).dump() << "\n";
    } else {
        std::printf("clients      %u\nduration     %.1f s\ncommitted    %llu\nfailed       %llu\n"
                    "throughput   %.1f puts/s\nlatency p50  %.2f ms\nlatency p99  %.2f ms\n",
                    result.clients, result.duration_s, static_cast<unsigned long long>(result.committed),
                    static_cast<unsigned long long>(result.failed), result.tps, result.p50_ms, result.p99_ms);
    }
    return result.committed > 0 ? 0 : 1;
}
