// scripts/bench-compare's report: medians, Markdown, gnuplot data and script. See report.h.
#include "client/compare/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <regex>
#include <set>
#include <sstream>

namespace tally::client::compare {
namespace {

// The systems in the order every table and plot shows them, with their names for people.
const std::vector<std::pair<std::string, std::string>>& systems() {
    static const std::vector<std::pair<std::string, std::string>> all = {
        {"pbft", "Tally PBFT"}, {"raft", "Tally Raft"}, {"etcd", "etcd"}};
    return all;
}

std::string title_of(const std::string& system) {
    for (const auto& [name, title] : systems())
        if (name == system) return title;
    return system;
}

std::string number(double v, int decimals) {
    char text[64];
    std::snprintf(text, sizeof(text), "%.*f", decimals, v);
    return text;
}
// Thousands separated, as README's tables write throughput: "3,225".
std::string count(double v) {
    const auto whole = static_cast<long long>(std::llround(v));
    std::string digits = std::to_string(std::llabs(whole));
    for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(static_cast<size_t>(i), ",");
    return (whole < 0 ? "-" : "") + digits;
}
std::string maybe(const std::optional<double>& v, int decimals) { return v ? number(*v, decimals) : "-"; }
std::string dat(const std::optional<double>& v) { return v ? number(*v, 4) : "NaN"; }

std::optional<double> optional_median(const std::vector<std::optional<double>>& values) {
    std::vector<double> known;
    for (const auto& v : values)
        if (v) known.push_back(*v);
    if (known.size() != values.size()) return std::nullopt;  // a round that did not know: unknown
    return median(known);
}

std::optional<double> field(const nlohmann::json& object, const char* name) {
    if (!object.contains(name) || !object[name].is_number()) return std::nullopt;
    return object[name].get<double>();
}

// Each system's smallest network: its default one, which the sweep over clients runs on.
std::map<std::string, uint32_t> sweep_sizes(const std::vector<Point>& points) {
    std::map<std::string, uint32_t> smallest;
    for (const auto& p : points) {
        auto [it, fresh] = smallest.try_emplace(p.system, p.n);
        if (!fresh) it->second = std::min(it->second, p.n);
    }
    return smallest;
}

const Point* find(const std::vector<Point>& points, const std::string& system, uint32_t n, uint32_t clients) {
    for (const auto& p : points)
        if (p.system == system && p.n == n && p.clients == clients) return &p;
    return nullptr;
}

// What else the machine did while the runs were measured: a run beside other work is slower
// than the system is, so the report says how much there was. Empty when no run reported it.
std::string machine_sentence(const std::vector<Point>& points) {
    std::vector<double> others, steals;
    const Point* busiest = nullptr;
    for (const auto& p : points) {
        if (p.other_cpus) others.push_back(*p.other_cpus);
        if (p.steal_cpus) steals.push_back(*p.steal_cpus);
        if (p.other_cpus_max && (!busiest || *p.other_cpus_max > *busiest->other_cpus_max)) busiest = &p;
    }
    if (others.empty() || !busiest) return "";
    std::ostringstream s;
    s << "Other work on the machine during the measured windows (CPU time, from /proc/stat, not charged "
      << "to the measured system's processes or its load generator: other processes, and interrupts "
      << "and kernel threads, part of them the system's own traffic and writeback): a median of " << number(*median(others), 2)
      << " CPUs over the rows below, at most " << number(*busiest->other_cpus_max, 2) << " in one run ("
      << title_of(busiest->system) << ", n=" << busiest->n << ", " << busiest->clients
      << (busiest->clients == 1 ? " client)" : " clients)");
    if (!steals.empty()) s << "; the hypervisor took a median of " << number(*median(steals), 2) << " CPUs";
    s << ".\n\n";
    return s.str();
}

}  // namespace

std::optional<RunKey> parse_run_name(const std::string& file_name) {
    static const std::regex pattern(R"(^([a-z]+)-n([0-9]{1,4})-c([0-9]{1,6})-r([0-9]{1,4})\.json$)");
    std::smatch m;
    if (!std::regex_match(file_name, m, pattern)) return std::nullopt;
    RunKey key{m[1], static_cast<uint32_t>(std::stoul(m[2])), static_cast<uint32_t>(std::stoul(m[3])),
               static_cast<uint32_t>(std::stoul(m[4]))};
    if (key.n == 0 || key.clients == 0) return std::nullopt;
    return key;
}

Result<Run> parse_run(const RunKey& key, const nlohmann::json& json) {
    Run run;
    run.key = key;
    if (!json.is_object()) return make_error("format", "a run is a JSON object");
    for (auto [name, out] : {std::pair{"tps", &run.tps}, std::pair{"p50_ms", &run.p50_ms}, std::pair{"p99_ms", &run.p99_ms}}) {
        auto v = field(json, name);
        if (!v) return make_error("format", std::string("the run has no number '") + name + "'");
        *out = *v;
    }
    // A run that committed nothing measured no latency: it is a failed run, not a fast one.
    if (auto committed = field(json, "committed"); !committed || *committed < 1)
        return make_error("format", "the run committed nothing (a stalled network, or no 'committed')");
    if (auto bytes = field(json, "request_bytes"); bytes && *bytes >= 0) run.request_bytes = static_cast<uint64_t>(*bytes);
    if (json.contains("cost_per_tx") && json["cost_per_tx"].is_object()) {
        const auto& cost = json["cost_per_tx"];
        run.client_cpu_ms = field(cost, "client_cpu_ms");
        if (cost.value("replicas_known", false)) {
            run.replica_cpu_ms = field(cost, "replica_cpu_ms");
            run.messages = field(cost, "messages");
            run.bytes = field(cost, "bytes");
        }
    }
    if (json.contains("machine") && json["machine"].is_object()) {
        run.other_cpus = field(json["machine"], "other_cpus");
        run.steal_cpus = field(json["machine"], "steal_cpus");
    }
    if (json.contains("latency_percentiles_ms") && json["latency_percentiles_ms"].is_array()) {
        for (const auto& pair : json["latency_percentiles_ms"]) {
            if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number() || !pair[1].is_number())
                return make_error("format", "latency_percentiles_ms holds [p, ms] pairs");
            run.percentiles.emplace_back(pair[0].get<double>(), pair[1].get<double>());
        }
    }
    return run;
}

std::optional<double> median(std::vector<double> values) {
    if (values.empty()) return std::nullopt;
    std::sort(values.begin(), values.end());
    const size_t mid = values.size() / 2;
    return values.size() % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

std::vector<Point> summarize(const std::vector<Run>& runs) {
    std::map<std::tuple<std::string, uint32_t, uint32_t>, std::vector<const Run*>> groups;
    for (const auto& r : runs) groups[{r.key.system, r.key.n, r.key.clients}].push_back(&r);
    std::vector<Point> points;
    for (const auto& [key, members] : groups) {
        // A named reference: clang 14 cannot capture a structured binding in a lambda.
        const std::vector<const Run*>& group = members;
        Point p;
        std::tie(p.system, p.n, p.clients) = key;
        p.rounds = static_cast<uint32_t>(group.size());
        auto med = [&](auto member) {
            std::vector<double> v;
            for (const Run* r : group) v.push_back(r->*member);
            return *median(v);
        };
        auto opt_med = [&](auto member) {
            std::vector<std::optional<double>> v;
            for (const Run* r : group) v.push_back(r->*member);
            return optional_median(v);
        };
        for (const Run* r : group) p.request_bytes = std::max(p.request_bytes, r->request_bytes);
        p.tps = med(&Run::tps);
        p.p50_ms = med(&Run::p50_ms);
        p.p99_ms = med(&Run::p99_ms);
        p.replica_cpu_ms = opt_med(&Run::replica_cpu_ms);
        p.client_cpu_ms = opt_med(&Run::client_cpu_ms);
        p.messages = opt_med(&Run::messages);
        p.bytes = opt_med(&Run::bytes);
        p.other_cpus = opt_med(&Run::other_cpus);
        p.steal_cpus = opt_med(&Run::steal_cpus);
        for (const Run* r : group)
            if (r->other_cpus) p.other_cpus_max = std::max(p.other_cpus_max.value_or(0.0), *r->other_cpus);
        // Each percentile's median over the rounds that have the same points as the first.
        const auto& first = group.front()->percentiles;
        for (size_t i = 0; i < first.size(); ++i) {
            std::vector<double> v;
            for (const Run* r : group)
                if (r->percentiles.size() == first.size() && r->percentiles[i].first == first[i].first)
                    v.push_back(r->percentiles[i].second);
            p.percentiles.emplace_back(first[i].first, *median(v));
        }
        points.push_back(std::move(p));
    }
    return points;
}

std::map<std::string, std::string> report_files(const std::vector<Point>& points, const ReportInfo& info) {
    std::map<std::string, std::string> files;
    const auto sizes = sweep_sizes(points);
    std::vector<std::string> present;  // systems run, in display order
    for (const auto& [name, title] : systems())
        if (sizes.count(name)) present.push_back(name);
    std::set<uint32_t> sweep_clients;
    for (const auto& p : points)
        if (sizes.at(p.system) == p.n) sweep_clients.insert(p.clients);
    uint32_t rounds = 0;
    for (const auto& p : points) rounds = std::max(rounds, p.rounds);

    std::ostringstream md;
    md << "# Tally PBFT, Tally Raft and etcd under one closed-loop load\n\n"
       << "Made by `scripts/bench-compare` on " << info.date << ", commit `" << info.commit << "`, on "
       << info.machine << ". Each figure is the median of " << rounds << " round(s); in each round every "
       << "system ran on a fresh network, one after the other, " << number(info.duration_s, 0)
       << " s measured after " << number(info.warmup_s, info.warmup_s < 1 ? 1 : 0) << " s of warm-up. A client keeps one request "
       << "in flight and sends the next when the last is accepted.\n\n"
       << "Requests: Tally's is a transfer signed by its client (Ed25519), which every replica verifies";
    std::map<std::string, uint64_t> request_bytes;
    for (const auto& p : points) request_bytes[p.system] = std::max(request_bytes[p.system], p.request_bytes);
    std::string tally_sizes;
    for (const auto& s : {"pbft", "raft"})
        if (request_bytes.count(s))
            tally_sizes += (tally_sizes.empty() ? "" : ", ") + title_of(s) + ": " + std::to_string(request_bytes[s]) + " bytes";
    if (!tally_sizes.empty()) md << " (" << tally_sizes << ")";
    if (request_bytes.count("etcd"))
        md << "; etcd's is an unsigned put through its v3 JSON gateway, " << request_bytes["etcd"]
           << " bytes of HTTP body (`tally-etcd-load`; the gateway costs etcd more CPU than its own gRPC "
              "benchmark would)";
    md << ".\n\n"
       << "CPU is per committed request: the replicas' (members') processes together, and the load "
       << "generator's; all share this machine's cores.\n\n";
    md << machine_sentence(points);

    md << "## Throughput and latency against clients\n\n";
    md << "| clients | system | n | committed/s | vs etcd | p50 ms | p99 ms | CPU ms/req, replicas | CPU ms/req, client |\n"
       << "|---:|---|---:|---:|---:|---:|---:|---:|---:|\n";
    std::ostringstream throughput;
    throughput << "# clients";
    for (const auto& s : present) throughput << " " << s << "_tps";
    for (const auto& s : present) throughput << " " << s << "_p50_ms";
    throughput << "\n";
    for (uint32_t c : sweep_clients) {
        const Point* etcd = sizes.count("etcd") ? find(points, "etcd", sizes.at("etcd"), c) : nullptr;
        throughput << c;
        std::ostringstream p50s;
        for (const auto& s : present) {
            const Point* p = find(points, s, sizes.at(s), c);
            throughput << " " << (p ? number(p->tps, 2) : "NaN");
            p50s << " " << (p ? number(p->p50_ms, 4) : "NaN");
            if (!p) continue;
            const std::string ratio = etcd && etcd->tps > 0 ? number(p->tps / etcd->tps, 2) + "×" : "-";
            md << "| " << c << " | " << title_of(s) << " | " << p->n << " | " << count(p->tps) << " | " << ratio
               << " | " << number(p->p50_ms, 2) << " | " << number(p->p99_ms, 1) << " | "
               << maybe(p->replica_cpu_ms, 3) << " | " << maybe(p->client_cpu_ms, 3) << " |\n";
        }
        throughput << p50s.str() << "\n";
    }
    files["throughput.dat"] = throughput.str();

    // Latency CDFs, one file per client count: percentile, then each system's ms.
    for (uint32_t c : sweep_clients) {
        std::ostringstream cdf;
        cdf << "# percentile";
        for (const auto& s : present) cdf << " " << s << "_ms";
        cdf << "\n";
        std::vector<double> ps;
        for (const auto& s : present)
            if (const Point* p = find(points, s, sizes.at(s), c); p && ps.empty())
                for (const auto& [pct, ms] : p->percentiles) ps.push_back(pct);
        for (size_t i = 0; i < ps.size(); ++i) {
            cdf << number(ps[i], 1);
            for (const auto& s : present) {
                const Point* p = find(points, s, sizes.at(s), c);
                const bool has = p && i < p->percentiles.size() && p->percentiles[i].first == ps[i];
                cdf << " " << (has ? number(p->percentiles[i].second, 4) : "NaN");
            }
            cdf << "\n";
        }
        files["cdf-c" + std::to_string(c) + ".dat"] = cdf.str();
    }

    // How cost grows with n, at the scaling client count.
    md << "\n## How cost grows with the number of replicas (" << info.scaling_clients << " clients)\n\n"
       << "| system | n | committed/s | p50 ms | p99 ms | messages/req | bytes/req | CPU ms/req, replicas |\n"
       << "|---|---:|---:|---:|---:|---:|---:|---:|\n";
    std::vector<std::string> scaled;
    for (const auto& s : present) {
        std::ostringstream table;
        table << "# n tps p50_ms messages_per_req bytes_per_req replica_cpu_ms_per_req\n";
        size_t rows = 0;
        for (const auto& p : points) {
            if (p.system != s || p.clients != info.scaling_clients) continue;
            ++rows;
            md << "| " << title_of(s) << " | " << p.n << " | " << count(p.tps) << " | " << number(p.p50_ms, 2)
               << " | " << number(p.p99_ms, 1) << " | " << maybe(p.messages, 1) << " | "
               << (p.bytes ? count(*p.bytes) : "-") << " | " << maybe(p.replica_cpu_ms, 3) << " |\n";
            table << p.n << " " << number(p.tps, 2) << " " << number(p.p50_ms, 4) << " " << dat(p.messages) << " "
                  << dat(p.bytes) << " " << dat(p.replica_cpu_ms) << "\n";
        }
        if (rows > 1) {
            files["scaling-" + s + ".dat"] = table.str();
            scaled.push_back(s);
        }
    }

    md << "\n## Plots\n\n![committed per second against clients](throughput.svg)\n\n";
    for (uint32_t c : sweep_clients)
        md << "![latency CDF at " << c << " client(s)](latency-cdf-c" << c << ".svg)\n";
    if (!scaled.empty()) md << "\n![cost against n](scaling.svg)\n";
    files["summary.md"] = md.str();

    // The gnuplot script: each plot as SVG and PNG.
    std::ostringstream gp;
    gp << "# Drawn by gnuplot from the .dat files beside it (scripts/bench-compare runs it).\n"
       << "# Each plot starts from gnuplot's defaults (reset), so none inherits another's settings.\n";
    auto each_format = [&](const std::string& name, const std::string& body) {
        gp << "\nreset\nset datafile missing 'NaN'\nset grid\nset key top left\n"
           << "set terminal svg size 760,460 dynamic font 'sans,12'\nset output '" << name << ".svg'\n" << body
           << "set terminal pngcairo size 960,580 font 'sans,11'\nset output '" << name << ".png'\nreplot\nset output\n";
    };
    {
        std::ostringstream body;
        body << "set logscale x 2\nset xlabel 'clients (one request in flight each)'\n"
             << "set ylabel 'committed per second'\nset yrange [0:*]\nset title 'Throughput against clients'\nplot ";
        for (size_t i = 0; i < present.size(); ++i)
            body << (i ? ", " : "") << "'throughput.dat' using 1:" << i + 2 << " with linespoints lw 2 title '"
                 << title_of(present[i]) << " (n=" << sizes.at(present[i]) << ")'";
        body << "\n";
        each_format("throughput", body.str());
    }
    for (uint32_t c : sweep_clients) {
        std::ostringstream body;
        body << "set logscale x 10\nset xlabel 'latency (ms)'\n"
             << "set ylabel 'percentile'\nset yrange [0:100]\nset key bottom right\nset title 'Latency CDF, " << c
             << " client(s)'\nplot ";
        for (size_t i = 0; i < present.size(); ++i)
            body << (i ? ", " : "") << "'cdf-c" << c << ".dat' using " << i + 2 << ":1 with lines lw 2 title '"
                 << title_of(present[i]) << "'";
        body << "\n";
        each_format("latency-cdf-c" + std::to_string(c), body.str());
    }
    if (!scaled.empty()) {
        std::ostringstream body;
        body << "set xtics 1\nset key below horizontal maxrows 2 width 2\nset xlabel 'replicas (n)'\nset ylabel 'committed per second'\nset yrange [0:*]\n"
             << "set y2label 'messages between replicas per request'\nset y2range [0:*]\nset y2tics\n"
             << "set title 'Cost against n, " << info.scaling_clients << " clients'\nplot ";
        for (size_t i = 0; i < scaled.size(); ++i)
            body << (i ? ", " : "") << "'scaling-" << scaled[i] << ".dat' using 1:2 with linespoints lw 2 title '"
                 << title_of(scaled[i]) << " committed/s'";
        for (const auto& s : scaled)
            body << ", 'scaling-" << s << ".dat' using 1:4 axes x1y2 with linespoints dt 2 lw 2 title '" << title_of(s)
                 << " messages/request'";
        body << "\n";
        each_format("scaling", body.str());
    }
    files["plots.gp"] = gp.str();
    return files;
}

}  // namespace tally::client::compare
