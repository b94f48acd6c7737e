// Helpers behind the `tally` command line. See cli.h.
#include "client/cli.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "client/net.h"
#include "crypto/key_file.h"

namespace tally::client {
namespace fs = std::filesystem;

namespace {

bool is_hex_digit(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool all_hex(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_hex_digit);
}

// A plain account name: what may stand for DIR/accounts/NAME.key.
bool is_plain_name(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    });
}

std::string known_names(const std::string& dir) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir + "/accounts", ec)) {
        if (entry.path().extension() == ".key") names.push_back(entry.path().stem().string());
    }
    std::sort(names.begin(), names.end());
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
}

Error usage(std::string message) { return make_error("usage", std::move(message)); }

// The key file an argument names: the path itself, else DIR/accounts/NAME.key.
std::optional<std::string> key_file_for(std::string_view arg, const std::string& dir) {
    const std::string path(arg);
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) return path;
    if (is_plain_name(arg)) {
        const std::string named = dir + "/accounts/" + path + ".key";
        if (fs::is_regular_file(named, ec)) return named;
    }
    return std::nullopt;
}

std::string short_hex(const std::string& bytes) {
    return crypto::to_hex(bytes).substr(0, 12);
}

nlohmann::json counts_json(const google::protobuf::RepeatedPtrField<node::api::pb::DetectedCount>& counts) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& c : counts) out[c.kind()] = c.count();
    return out;
}

}  // namespace

int exit_code_for(const Error& error) {
    const auto& c = error.code;
    if (c == "failed") return kExitFailed;
    if (c == "timeout" || c == "network" || c == "not_connected" || c == "spawn" || c == "io")
        return kExitUnreachable;
    return kExitUsage;
}

Result<crypto::PublicKey> resolve_account(std::string_view arg, const std::string& dir) {
    if (arg.size() == 64 && all_hex(arg)) {
        auto key = crypto::key_from_hex(arg);
        if (!key) return usage("malformed account id '" + std::string(arg) + "': " + key.error().message);
        return *key;
    }
    if (auto file = key_file_for(arg, dir)) {
        auto key = crypto::read_key_file(*file);
        if (!key) return usage("bad key file " + *file + ": " + key.error().message);
        return key->public_key();
    }
    if (all_hex(arg))
        return usage("malformed account id '" + std::string(arg) + "': expected 64 hex digits, got " +
                     std::to_string(arg.size()));
    std::string known = known_names(dir);
    return usage("unknown account '" + std::string(arg) +
                 "': not 64 hex digits, a key file, or a name in " + dir + "/accounts" +
                 (known.empty() ? std::string() : " (" + known + ")"));
}

Result<crypto::KeyPair> resolve_key(std::string_view arg, const std::string& dir) {
    auto file = key_file_for(arg, dir);
    if (!file) {
        std::string known = known_names(dir);
        return usage("no key file '" + std::string(arg) + "' (give a key file, or a name in " + dir +
                     "/accounts" + (known.empty() ? std::string() : ": " + known) + ")");
    }
    auto key = crypto::read_key_file(*file);
    if (!key) return usage("bad key file " + *file + ": " + key.error().message);
    return std::move(*key);
}

Result<uint64_t> parse_u64(std::string_view text, std::string_view what, uint64_t min) {
    const std::string name(what);
    if (text.empty() || text.size() > 20 ||
        !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return usage(name + " must be a whole number, not '" + std::string(text) + "'");
    uint64_t value = 0;
    for (char c : text) {
        const auto digit = static_cast<uint64_t>(c - '0');
        if (value > (UINT64_MAX - digit) / 10) return usage(name + " " + std::string(text) + " is too large");
        value = value * 10 + digit;
    }
    if (value < min) return usage(name + " must be at least " + std::to_string(min));
    return value;
}

Result<crypto::Hash> parse_tx_id(std::string_view text) {
    if (text.size() != 64 || !all_hex(text))
        return usage("malformed transaction id '" + std::string(text) +
                     "': expected 64 hex digits, got " + std::to_string(text.size()) +
                     (all_hex(text) || text.empty() ? "" : " characters, not all hex"));
    auto id = crypto::array_from_hex<32>(text);
    if (!id) return usage("malformed transaction id: " + id.error().message);
    return *id;
}

Result<Duration> parse_timeout_s(double seconds, std::string_view option) {
    if (!(seconds > 0) || seconds > 86'400)
        return usage(std::string(option) + " must be between 0 and 86400 seconds");
    return Duration{static_cast<int64_t>(seconds * 1000.0 + 0.5)};
}

Result<node::api::NetworkConfig> load_network(const std::string& dir) {
    const std::string path = absolute_dir(dir) + "/network.json";
    std::error_code ec;
    if (!fs::exists(path, ec)) {
        const std::string flag = dir == kDefaultDir ? "" : " --dir " + dir;
        return make_error("not_found", "no network in " + dir +
                                           " (no network.json); start one with `tally net up" +
                                           flag + "`, or pass --dir");
    }
    return node::api::load_network_config(path);
}

nlohmann::json replica_status_json(const node::api::pb::StatusReply& p) {
    nlohmann::json r;
    r["protocol"] = p.protocol();
    r["role"] = p.role();
    r["view"] = p.view();
    r["executed"] = p.executed();
    r["digest"] = crypto::to_hex(p.state_digest());
    r["low_water_mark"] = p.low_water_mark();
    r["stable_checkpoint"] = p.stable_checkpoint();
    r["view_changing"] = p.view_changing();
    r["catching_up_to"] = p.catching_up_to();
    r["recovering"] = p.recovering();
    r["view_changes_withheld_through"] = p.view_changes_withheld_through();
    r["commit_index"] = p.commit_index();
    r["applied"] = p.applied();
    r["last_log_index"] = p.last_log_index();
    r["messages_sent"] = p.messages_sent();
    r["bytes_sent"] = p.bytes_sent();
    r["cpu_ms"] = static_cast<double>(p.cpu_us()) / 1000.0;
    if (p.has_leader()) r["leader"] = p.leader();
    r["traitor"] = std::vector<std::string>(p.traitor().begin(), p.traitor().end());
    r["detected"] = counts_json(p.detected());
    r["rejected"] = counts_json(p.rejected());
    return r;
}

nlohmann::json status_json(const std::vector<ReplicaStatus>& statuses) {
    nlohmann::json replicas = nlohmann::json::array();
    for (const auto& s : statuses) {
        nlohmann::json r = s.up ? replica_status_json(s.reply) : nlohmann::json::object();
        r["id"] = s.id;
        r["up"] = s.up;
        replicas.push_back(std::move(r));
    }
    return nlohmann::json{{"replicas", std::move(replicas)}};
}

namespace {

std::string replica_notes(const node::api::pb::StatusReply& p) {
    std::string notes;
    if (p.view_changing()) notes += "view-changing ";
    if (p.catching_up_to() > 0) notes += "catching-up-to:" + std::to_string(p.catching_up_to()) + " ";
    if (p.recovering()) notes += "recovering ";
    // (A replica that lost its store: bft/pbft/engine.h, forgot_through_.)
    if (!p.recovering() && p.view_changes_withheld_through() > 0)
        notes += "no-view-change-until-checkpoint:" + std::to_string(p.view_changes_withheld_through()) + " ";
    for (const auto& t : p.traitor()) notes += "traitor:" + t + " ";
    for (const auto& d : p.detected()) notes += "detected:" + d.kind() + "=" + std::to_string(d.count()) + " ";
    // Input the replica refused (admission, garbage), by reason.
    for (const auto& r : p.rejected()) notes += "refused:" + r.kind() + "=" + std::to_string(r.count()) + " ";
    return notes;
}

// Raft's columns: the term, the commit index (what it knows committed), applied (what its
// ledger executed), the last index its log holds, and the leader it believes in.
// Replicas that executed one seq to different state digests: a fork. Said plainly under the
// table, since no honest PBFT replica can be in one (2f+1 quorums intersect in an honest
// replica) while Raft, which trusts every replica, cannot even notice one.
std::string fork_warning(const std::vector<ReplicaStatus>& statuses) {
    std::map<uint64_t, std::map<std::string, std::vector<uint32_t>>> at;  // seq -> digest -> ids
    for (const auto& s : statuses)
        if (s.up) at[s.reply.executed()][s.reply.state_digest()].push_back(s.id);
    std::string out;
    for (const auto& [seq, digests] : at) {
        if (digests.size() < 2) continue;
        out += "FORK: at seq " + std::to_string(seq) + " the replicas hold " + std::to_string(digests.size()) +
               " different states:";
        for (const auto& [digest, ids] : digests) {
            out += " {";
            for (size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
            out += "} " + short_hex(digest) + ";";
        }
        out.back() = '.';
        const bool raft = statuses.end() != std::find_if(statuses.begin(), statuses.end(), [](const auto& s) {
                              return s.up && s.reply.protocol() == "raft";
                          });
        out += raft ? " Raft trusts every replica and does not detect this (a traitor, or a bug).\n"
                    : " More than f replicas are faulty, or a bug: PBFT's honest replicas cannot part.\n";
    }
    return out;
}

std::string raft_status_table(const std::vector<ReplicaStatus>& statuses) {
    std::ostringstream out;
    char line[256];
    std::snprintf(line, sizeof(line), "%-4s %-5s %-13s %6s %9s %9s %9s %6s  %-12s  %s\n", "id", "state",
                  "role", "term", "commit", "applied", "last-log", "leader", "digest", "notes");
    out << line;
    for (const auto& s : statuses) {
        if (!s.up) {
            std::snprintf(line, sizeof(line), "%-4u %-5s %-13s %6s %9s %9s %9s %6s  %-12s\n", s.id, "down",
                          "-", "-", "-", "-", "-", "-", "-");
            out << line;
            continue;
        }
        const auto& p = s.reply;
        const std::string leader = p.has_leader() ? std::to_string(p.leader()) : "-";
        std::snprintf(line, sizeof(line), "%-4u %-5s %-13s %6llu %9llu %9llu %9llu %6s  %-12s  ", s.id, "up",
                      p.role().empty() ? "-" : p.role().c_str(), static_cast<unsigned long long>(p.view()),
                      static_cast<unsigned long long>(p.commit_index()),
                      static_cast<unsigned long long>(p.executed()),
                      static_cast<unsigned long long>(p.last_log_index()), leader.c_str(),
                      short_hex(p.state_digest()).c_str());
        out << line << replica_notes(p) << "\n";
    }
    out << fork_warning(statuses);
    return out.str();
}

}  // namespace

std::string status_table(const std::vector<ReplicaStatus>& statuses) {
    for (const auto& s : statuses)
        if (s.up && s.reply.protocol() == "raft") return raft_status_table(statuses);
    std::ostringstream out;
    char line[256];
    // stable(h): the last stable checkpoint, which in PBFT is also the low water mark.
    std::snprintf(line, sizeof(line), "%-4s %-5s %-10s %6s %10s %10s  %-12s  %s\n", "id", "state", "role",
                  "view", "executed", "stable(h)", "digest", "notes");
    out << line;
    for (const auto& s : statuses) {
        if (!s.up) {
            std::snprintf(line, sizeof(line), "%-4u %-5s %-10s %6s %10s %10s  %-12s\n", s.id, "down", "-",
                          "-", "-", "-", "-");
            out << line;
            continue;
        }
        const auto& p = s.reply;
        const std::string notes = replica_notes(p);
        std::snprintf(line, sizeof(line), "%-4u %-5s %-10s %6llu %10llu %10llu  %-12s  ", s.id, "up",
                      p.role().empty() ? "-" : p.role().c_str(),
                      static_cast<unsigned long long>(p.view()),
                      static_cast<unsigned long long>(p.executed()),
                      static_cast<unsigned long long>(p.stable_checkpoint()),
                      short_hex(p.state_digest()).c_str());
        out << line << notes << "\n";  // notes apart: they may be longer than `line`
    }
    out << fork_warning(statuses);
    return out.str();
}

std::string lease_reads_line(const node::api::NetworkConfig& config) {
    if (config.protocol != bft::Protocol::kRaft) return "";
    return config.consensus.lease_reads
               ? "lease reads: on (the leader answers linearizable reads from its lease; assumes "
                 "bounded clock drift)\n"
               : "lease reads: off (linearizable reads confirm leadership with a heartbeat round: "
                 "ReadIndex)\n";
}

nlohmann::json transfer_json(const TransferResult& r) {
    return nlohmann::json{{"tx", crypto::to_hex(r.tx_id)},
                          {"seq", r.seq},
                          {"block", r.block},
                          {"nonce", r.nonce},
                          {"result", result_text(r.result)},
                          {"final", r.final()},
                          {"status", r.ok() ? "applied" : r.final() ? "failed" : "not_ordered_may_still_apply"}};
}

std::string not_final_advice(const TransferResult& r) {
    const std::string tx = crypto::to_hex(r.tx_id);
    const std::string why =
        r.result == static_cast<uint32_t>(ledger::ResultCode::kUnknownSender)
            ? "the sending account does not exist yet; it applies if the account is credited"
            : "nonce " + std::to_string(r.nonce) +
                  " is ahead of the account's; it applies once the nonces before it have";
    // A seq: the network ordered it there and it moved nothing; none: refused before ordering.
    const std::string what = r.seq > 0 ? "the transfer was ordered at seq " + std::to_string(r.seq) +
                                             " but moved no money, and may still apply ("
                                       : "the transfer was not ordered, and may still apply (";
    return what + result_text(r.result) + "): " + why + ". Its signed bytes stay valid: do not pay again with another nonce. Check it with "
           "`tally tx " + tx + "`, or send this same transfer again with `--nonce " +
           std::to_string(r.nonce) + "` (the same bytes apply at most once).";
}

nlohmann::json balance_json(const BalanceResult& r) {
    nlohmann::json out{{"account", crypto::key_to_hex(r.account)},
                       {"exists", r.exists},
                       {"balance", r.balance},
                       {"nonce", r.nonce},
                       {"seq", r.seq},
                       {"consistency", std::string(consistency_name(r.served))}};
    if (r.replica) out["replica"] = *r.replica;
    return out;
}

nlohmann::json tx_json(const TxResult& r) {
    const char* status = "failed";
    if (r.result == static_cast<uint32_t>(ledger::ResultCode::kOk))
        status = "applied";
    else if (r.result == static_cast<uint32_t>(ledger::ResultCode::kUnknownTx))
        status = "unknown";
    else if (!TransferResult::is_final(r.result))
        status = "executed_not_applied_may_still_apply";
    return nlohmann::json{
        {"tx", crypto::to_hex(r.tx_id)}, {"result", result_text(r.result)}, {"seq", r.seq}, {"status", status}};
}

std::string tx_not_final_advice(const TxResult& r) {
    // Replicas keep only nonce_too_high executions (ledger/schema.cc, not_yet_outcomes).
    return "ordered at seq " + std::to_string(r.seq) + " and executed as " + result_text(r.result) +
           " (its nonce was ahead of the account's): it moved no money. Its signed bytes stay valid and apply if sent again once "
           "they can: do not pay again with another nonce.";
}

nlohmann::json bench_json(const BenchResult& r) {
    nlohmann::json out{{"clients", r.clients},       {"duration_s", r.duration_s},
                       {"committed", r.committed},   {"failed", r.failed},
                       {"tps", r.tps},               {"p50_ms", r.p50_ms},
                       {"p99_ms", r.p99_ms},         {"retransmits", r.retransmits},
                       {"rejected_replies", r.rejected_replies},
                       {"window_start_unix_ms", r.window_start_unix_ms},
                       {"max_gap", {{"start_s", r.max_gap.start_s},
                                    {"end_s", r.max_gap.end_s},
                                    {"length_ms", r.max_gap.length_s() * 1000.0}}}};
    nlohmann::json cdf = nlohmann::json::array();
    for (const auto& [p, ms] : r.latency_percentiles) cdf.push_back({p, ms});
    out["latency_percentiles_ms"] = std::move(cdf);
    out["request_bytes"] = r.request_bytes;
    out["cost_per_tx"] = {{"replicas_known", r.cost.replicas_known},
                          {"replica_cpu_ms", r.cost.replica_cpu_ms},
                          {"client_cpu_ms", r.cost.client_cpu_ms},
                          {"messages", r.cost.messages_known ? nlohmann::json(r.cost.messages) : nlohmann::json()},
                          {"bytes", r.cost.bytes}};
    if (!r.timeline.empty()) {
        out["interval_ms"] = r.interval_s * 1000.0;
        nlohmann::json points = nlohmann::json::array();
        for (const auto& p : r.timeline)
            points.push_back({{"t_s", p.t_s}, {"committed", p.committed}, {"tps", p.tps}});
        out["timeline"] = std::move(points);
    }
    if (!r.commit_times_s.empty()) out["commit_times_s"] = r.commit_times_s;
    if (const auto& m = r.machine)
        out["machine"] = {{"cpus", m->cpus},
                          {"busy_cpus", m->busy_cpus},
                          {"system_cpus", m->system_cpus},
                          {"other_cpus", m->other_cpus},
                          {"steal_cpus", m->steal_cpus}};
    if (const auto& open = r.open_loop)
        out["open_loop"] = {{"rate", open->rate},
                            {"seed", open->seed},
                            {"arrivals", open->arrivals},
                            {"waited_for_client", open->waited},
                            {"backlog_max", open->backlog_max},
                            {"waiting_at_end", open->waiting_at_end},
                            {"arrival_to_send_p50_ms", open->lag_p50_ms},
                            {"arrival_to_send_p99_ms", open->lag_p99_ms}};
    if (r.flood_sent > 0) out["flood"] = {{"sent", r.flood_sent}, {"per_s", r.flood_per_s}};
    if (r.breakdown) {
        auto summary = [](const PhaseSummary& s) {
            return nlohmann::json{{"p50_ms", s.p50_ms}, {"p99_ms", s.p99_ms}, {"n", s.n}};
        };
        nlohmann::json rows = nlohmann::json::array();
        for (const auto& row : r.breakdown->rows) {
            nlohmann::json replicas = nlohmann::json::array();
            for (const auto& s : row.replicas) replicas.push_back(summary(s));
            rows.push_back({{"from", row.from}, {"to", row.to}, {"all", summary(row.all)}, {"replicas", replicas}});
        }
        out["breakdown"] = {{"protocol", r.breakdown->protocol},
                            {"phases", rows},
                            {"batch_requests", {{"p50", r.breakdown->batch_requests.p50_ms},
                                                {"p99", r.breakdown->batch_requests.p99_ms},
                                                {"n", r.breakdown->batch_requests.n}}},
                            {"client_sign_p50_us", r.breakdown->sign_p50_us},
                            {"polls", r.breakdown->polls},
                            {"missed_seqs", r.breakdown->missed}};
    }
    return out;
}

std::string breakdown_table(const Breakdown& b) {
    std::ostringstream out;
    char line[256];
    std::snprintf(line, sizeof(line), "%-26s %14s", "phase (ms, p50 / p99)", "all replicas");
    out << line;
    const size_t replicas = b.rows.empty() ? 0 : b.rows.front().replicas.size();
    for (size_t i = 0; i < replicas; ++i) {
        std::snprintf(line, sizeof(line), " %14s", ("replica " + std::to_string(i)).c_str());
        out << line;
    }
    out << "\n";
    auto cell = [&](const PhaseSummary& s) {
        if (s.n == 0) return std::string("-");
        char c[64];
        std::snprintf(c, sizeof(c), "%.2f / %.2f", s.p50_ms, s.p99_ms);
        return std::string(c);
    };
    for (const auto& row : b.rows) {
        std::snprintf(line, sizeof(line), "%-26s %14s", (row.from + " -> " + row.to).c_str(), cell(row.all).c_str());
        out << line;
        for (const auto& s : row.replicas) {
            std::snprintf(line, sizeof(line), " %14s", cell(s).c_str());
            out << line;
        }
        out << "\n";
    }
    std::snprintf(line, sizeof(line),
                  "requests per batch p50 %.0f, p99 %.0f (%llu batches); the client signs a transfer in "
                  "%.0f us (p50)\n",
                  b.batch_requests.p50_ms, b.batch_requests.p99_ms,
                  static_cast<unsigned long long>(b.batch_requests.n), b.sign_p50_us);
    out << line;
    if (b.missed > 0)
        out << b.missed << " seqs executed between two polls beyond the 64 a replica reports were not counted\n";
    return out.str();
}

}  // namespace tally::client
