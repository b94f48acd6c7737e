// `tally-bench-report`: scripts/bench-compare's last step. Reads the runs in --raw (files named
// SYSTEM-nN-cC-rR.json, each a `tally bench --json` or `tally-etcd-load --json` result), and
// writes into --out the Markdown summary, the gnuplot data files and plots.gp (report.h).
#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "client/compare/report.h"

namespace fs = std::filesystem;
namespace cmp = tally::client::compare;

int main(int argc, char** argv) {
    CLI::App app{"sum scripts/bench-compare's runs up: medians, a Markdown summary, gnuplot data and script"};
    std::string raw, out;
    cmp::ReportInfo info;
    app.add_option("--raw", raw, "the folder of run files (SYSTEM-nN-cC-rR.json)")->required();
    app.add_option("--out", out, "where the report goes")->required();
    app.add_option("--machine", info.machine, "what the runs ran on")->required();
    app.add_option("--commit", info.commit, "the commit measured")->required();
    app.add_option("--date", info.date, "when")->required();
    app.add_option("--duration", info.duration_s, "measured seconds per run")->required();
    app.add_option("--warmup", info.warmup_s, "warm-up seconds per run")->required();
    app.add_option("--scaling-clients", info.scaling_clients, "the client count of the n-scaling runs")->required();
    CLI11_PARSE(app, argc, argv);

    std::vector<cmp::Run> runs;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(raw, ec)) {
        const std::string name = entry.path().filename().string();
        auto key = cmp::parse_run_name(name);
        if (!key) {
            std::cerr << "tally-bench-report: " << entry.path().string() << ": not a run file (SYSTEM-nN-cC-rR.json); skipped\n";
            continue;
        }
        std::ifstream in(entry.path());
        const auto json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
        auto run = cmp::parse_run(*key, json);
        if (json.is_discarded() || !run) {
            std::cerr << "tally-bench-report: " << entry.path().string() << ": "
                      << (json.is_discarded() ? std::string("not JSON") : run.error().message) << "\n";
            return 2;
        }
        runs.push_back(std::move(*run));
    }
    if (ec) {
        std::cerr << "tally-bench-report: --raw " << raw << ": " << ec.message() << "\n";
        return 2;
    }
    if (runs.empty()) {
        std::cerr << "tally-bench-report: no runs in " << raw << "\n";
        return 1;
    }
    fs::create_directories(out, ec);
    for (const auto& [name, text] : cmp::report_files(cmp::summarize(runs), info)) {
        std::ofstream file(fs::path(out) / name);
        file << text;
        if (!file.flush()) {
            std::cerr << "tally-bench-report: cannot write " << (fs::path(out) / name).string() << "\n";
            return 1;
        }
    }
    std::cerr << "tally-bench-report: " << runs.size() << " runs summed up in " << out << "/summary.md\n";
    return 0;
}
