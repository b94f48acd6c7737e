// network.json: strict reading and writing (format in config.h).
//
// What it trusts: nothing in the file. Every field is type- and range-checked, unknown fields
// are refused (a misspelt "tick_msec" silently ignored would be worse than an error), and every
// error names the file and the field, e.g. "net/network.json: replicas[2].public_key: ...".
#include "node/api/network_config.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "crypto/hash.h"
#include "bft/behaviours.h"

namespace tally::node::api {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A ledger of 100 million ballast accounts takes ~10 GB per replica: more is surely a typo.
constexpr uint64_t kBallastAccountsMax = 100'000'000;

// Reads one object's fields, remembering which were read so the rest can be refused.
class Fields {
public:
    Fields(const std::string& file, std::string where, const json& object)
        : file_(file), where_(std::move(where)), object_(object) {}

    Error error(const std::string& field, const std::string& what) const {
        return make_error("invalid", file_ + ": " + name(field) + ": " + what);
    }
    Error missing(const std::string& field) const {
        return make_error("invalid", file_ + ": " + name(field) + ": missing");
    }
    std::string name(const std::string& field) const {
        return where_.empty() ? field : where_ + "." + field;
    }
    bool has(const std::string& field) const { return object_.contains(field); }
    const json& at(const std::string& field) {
        seen_.insert(field);
        return object_.at(field);
    }

    // An unsigned integer in [min, max]; `fallback` when absent (nullopt: required).
    Result<uint64_t> unsigned_field(const std::string& field, uint64_t min, uint64_t max,
                                    std::optional<uint64_t> fallback = std::nullopt) {
        if (!has(field)) {
            if (fallback) return *fallback;
            return missing(field);
        }
        const json& v = at(field);
        if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
            return error(field, "expected a non-negative integer, got " + v.dump());
        const uint64_t x = v.get<uint64_t>();
        if (x < min || x > max)
            return error(field, "must be in [" + std::to_string(min) + ", " + std::to_string(max) +
                                    "], got " + std::to_string(x));
        return x;
    }

    // A boolean; `fallback` when absent.
    Result<bool> bool_field(const std::string& field, bool fallback) {
        if (!has(field)) return fallback;
        const json& v = at(field);
        if (!v.is_boolean()) return error(field, "expected true or false, got " + v.dump());
        return v.get<bool>();
    }

    Result<std::string> string_field(const std::string& field) {
        if (!has(field)) return missing(field);
        const json& v = at(field);
        if (!v.is_string()) return error(field, "expected a string, got " + v.dump());
        return v.get<std::string>();
    }

    Result<crypto::PublicKey> key_field(const std::string& field) {
        auto hex = string_field(field);
        if (!hex) return hex.error();
        auto key = crypto::key_from_hex(*hex);
        if (!key) return error(field, "not a public key (" + key.error().message + ")");
        return *key;
    }

    // Refuses any field that was not read.
    Status no_unknown_fields() const {
        for (const auto& [key, value] : object_.items()) {
            if (!seen_.count(key)) return error(key, "unknown field");
        }
        return Ok{};
    }

private:
    const std::string& file_;
    std::string where_;
    const json& object_;
    std::set<std::string> seen_;
};

// `path` absolute and normal: relative paths are relative to `base`.
std::string resolve(const std::string& base, const std::string& path) {
    fs::path p(path);
    if (p.is_relative()) p = fs::path(base) / p;
    return p.lexically_normal().string();
}

// `path` relative to `base` when it lies under it, else absolute.
std::string relativize(const std::string& base, const std::string& path) {
    fs::path abs = fs::path(resolve(base, path));
    fs::path rel = abs.lexically_relative(fs::path(base).lexically_normal());
    if (rel.empty() || *rel.begin() == "..") return abs.string();
    return rel.string();
}

Result<ReplicaConfig> parse_replica(const std::string& file, const std::string& dir, size_t index,
                                    const json& j) {
    const std::string where = "replicas[" + std::to_string(index) + "]";
    if (!j.is_object()) return make_error("invalid", file + ": " + where + ": expected an object");
    Fields fields(file, where, j);
    ReplicaConfig r;
    auto id = fields.unsigned_field("id", 0, std::numeric_limits<uint32_t>::max());
    if (!id) return id.error();
    r.id = static_cast<uint32_t>(*id);
    auto host = fields.string_field("host");
    if (!host) return host.error();
    if (host->empty() || host->find_first_of(" :/") != std::string::npos)
        return fields.error("host", "expected a host name or IP address, got \"" + *host + "\"");
    r.host = *host;
    auto port = fields.unsigned_field("port", 1, 65535);
    if (!port) return port.error();
    r.port = static_cast<uint16_t>(*port);
    if (fields.has("client_port")) {
        auto client_port = fields.unsigned_field("client_port", 1, 65535);
        if (!client_port) return client_port.error();
        r.client_port = static_cast<uint16_t>(*client_port);
    }
    if (fields.has("metrics_port")) {
        auto metrics_port = fields.unsigned_field("metrics_port", 1, 65535);
        if (!metrics_port) return metrics_port.error();
        r.metrics_port = static_cast<uint16_t>(*metrics_port);
    }
    auto key = fields.key_field("public_key");
    if (!key) return key.error();
    r.public_key = *key;
    auto key_file = fields.string_field("key_file");
    if (!key_file) return key_file.error();
    if (key_file->empty()) return fields.error("key_file", "empty path");
    r.key_file = resolve(dir, *key_file);
    auto data_dir = fields.string_field("data_dir");
    if (!data_dir) return data_dir.error();
    if (data_dir->empty()) return fields.error("data_dir", "empty path");
    r.data_dir = resolve(dir, *data_dir);
    if (fields.has("traitor")) {
        auto traitor = fields.string_field("traitor");
        if (!traitor) return traitor.error();
        if (auto behaviours = bft::parse_behaviours(*traitor); !behaviours)
            return fields.error("traitor", behaviours.error().message);
        r.traitor = *traitor;
    }
    if (auto s = fields.no_unknown_fields(); !s) return s.error();
    return r;
}

Status parse_replicas(const std::string& file, const json& j, NetworkConfig& config) {
    if (!j.contains("replicas")) return make_error("invalid", file + ": replicas: missing");
    const json& list = j.at("replicas");
    if (!list.is_array() || list.empty())
        return make_error("invalid", file + ": replicas: expected a non-empty array");
    for (size_t i = 0; i < list.size(); ++i) {
        auto r = parse_replica(file, config.dir, i, list[i]);
        if (!r) return r.error();
        config.replicas.push_back(std::move(r).value());
    }
    // Ids are exactly 0..n-1 (in any order in the file; sorted in memory).
    std::map<uint32_t, size_t> by_id;
    std::map<std::string, size_t> by_endpoint;
    std::map<crypto::PublicKey, size_t> by_key;
    const auto where = [&](size_t i) { return file + ": replicas[" + std::to_string(i) + "]"; };
    for (size_t i = 0; i < config.replicas.size(); ++i) {
        const ReplicaConfig& r = config.replicas[i];
        if (auto [it, fresh] = by_id.emplace(r.id, i); !fresh)
            return make_error("invalid", where(i) + ".id: duplicate id " + std::to_string(r.id) +
                                             " (also replicas[" + std::to_string(it->second) +
                                             "])");
        if (auto [it, fresh] = by_endpoint.emplace(r.endpoint(), i); !fresh)
            return make_error("invalid", where(i) + ".port: duplicate endpoint " + r.endpoint() +
                                             " (also replicas[" + std::to_string(it->second) +
                                             "])");
        // The optional ports take an address of their own too.
        for (const auto& [field, port] : {std::pair<const char*, uint16_t>{"client_port", r.client_port},
                                          std::pair<const char*, uint16_t>{"metrics_port", r.metrics_port}}) {
            if (port == 0) continue;
            const std::string endpoint = "tcp://" + r.host + ":" + std::to_string(port);
            if (auto [it, fresh] = by_endpoint.emplace(endpoint, i); !fresh)
                return make_error("invalid", where(i) + "." + field + ": duplicate endpoint " + endpoint +
                                                 " (also replicas[" + std::to_string(it->second) + "])");
        }
        if (auto [it, fresh] = by_key.emplace(r.public_key, i); !fresh)
            return make_error("invalid", where(i) + ".public_key: duplicate key (also replicas[" +
                                             std::to_string(it->second) + "])");
    }
    for (size_t i = 0; i < config.replicas.size(); ++i) {
        if (config.replicas[i].id >= config.replicas.size())
            return make_error("invalid", where(i) + ".id: ids must be 0.." +
                                             std::to_string(config.replicas.size() - 1) +
                                             ", got " + std::to_string(config.replicas[i].id));
    }
    std::sort(config.replicas.begin(), config.replicas.end(),
              [](const ReplicaConfig& a, const ReplicaConfig& b) { return a.id < b.id; });
    return Ok{};
}

// The ballast (ledger/account.h): {"accounts": N, "balance": B}, every balance within 64 bits.
Status parse_ballast(const std::string& file, const json& j, uint64_t listed_total, NetworkConfig& config) {
    if (!j.contains("genesis_ballast")) return Ok{};
    const json& object = j.at("genesis_ballast");
    if (!object.is_object()) return make_error("invalid", file + ": genesis_ballast: expected an object");
    Fields fields(file, "genesis_ballast", object);
    auto accounts = fields.unsigned_field("accounts", 0, kBallastAccountsMax);
    if (!accounts) return accounts.error();
    auto balance = fields.unsigned_field("balance", 0, std::numeric_limits<uint64_t>::max());
    if (!balance) return balance.error();
    if (auto s = fields.no_unknown_fields(); !s) return s.error();
    if (*accounts > 0 && *balance > (std::numeric_limits<uint64_t>::max() - listed_total) / *accounts)
        return fields.error("balance", "the genesis balances overflow 64 bits");
    config.genesis.ballast = ledger::Ballast{*accounts, *balance};
    return Ok{};
}

Status parse_genesis(const std::string& file, const json& j, NetworkConfig& config) {
    // No accounts: a network that only answers reads.
    if (!j.contains("genesis")) return parse_ballast(file, j, 0, config);
    const json& list = j.at("genesis");
    if (!list.is_array()) return make_error("invalid", file + ": genesis: expected an array");
    std::set<crypto::PublicKey> seen;
    uint64_t total = 0;
    for (size_t i = 0; i < list.size(); ++i) {
        const std::string where = "genesis[" + std::to_string(i) + "]";
        if (!list[i].is_object())
            return make_error("invalid", file + ": " + where + ": expected an object");
        Fields fields(file, where, list[i]);
        ledger::Account account;
        auto key = fields.key_field("account");
        if (!key) return key.error();
        account.key = *key;
        auto balance = fields.unsigned_field("balance", 0, std::numeric_limits<uint64_t>::max());
        if (!balance) return balance.error();
        account.balance = *balance;
        if (auto s = fields.no_unknown_fields(); !s) return s.error();
        if (!seen.insert(account.key).second)
            return fields.error("account", "duplicate account");
        if (account.balance > std::numeric_limits<uint64_t>::max() - total)
            return fields.error("balance", "the genesis balances overflow 64 bits");
        total += account.balance;
        config.genesis.accounts.push_back(account);
    }
    return parse_ballast(file, j, total, config);
}

Status parse_consensus(const std::string& file, const json& j, NetworkConfig& config) {
    if (!j.contains("consensus")) return Ok{};  // every field has a default
    const json& object = j.at("consensus");
    if (!object.is_object()) return make_error("invalid", file + ": consensus: expected an object");
    Fields fields(file, "consensus", object);
    ConsensusConfig& c = config.consensus;
    const uint64_t u32 = std::numeric_limits<uint32_t>::max();
    const uint64_t big = uint64_t{1} << 40;
    auto tick = fields.unsigned_field("tick_ms", 1, 60'000, c.tick_ms);
    if (!tick) return tick.error();
    c.tick_ms = static_cast<uint32_t>(*tick);
    auto batch = fields.unsigned_field("batch_size_max", 1, 100'000, c.batch_size_max);
    if (!batch) return batch.error();
    c.batch_size_max = static_cast<uint32_t>(*batch);
    // At least one request of any size a client may send; at most a quarter of an envelope.
    auto batch_bytes = fields.unsigned_field("batch_bytes_max", 4096, 2u << 20, c.batch_bytes_max);
    if (!batch_bytes) return batch_bytes.error();
    c.batch_bytes_max = static_cast<uint32_t>(*batch_bytes);
    auto depth = fields.unsigned_field("pipeline_depth", 1, u32, c.pipeline_depth);
    if (!depth) return depth.error();
    c.pipeline_depth = static_cast<uint32_t>(*depth);
    auto interval = fields.unsigned_field("checkpoint_interval", 1, big, c.checkpoint_interval);
    if (!interval) return interval.error();
    c.checkpoint_interval = *interval;
    auto window = fields.unsigned_field("watermark_window", 1, big, c.watermark_window);
    if (!window) return window.error();
    c.watermark_window = *window;
    if (c.watermark_window < c.checkpoint_interval)
        return fields.error("watermark_window",
                            "must be at least checkpoint_interval (" +
                                std::to_string(c.checkpoint_interval) + "), got " +
                                std::to_string(c.watermark_window));
    auto timeout = fields.unsigned_field("view_change_timeout_ticks", 1, big,
                                         c.view_change_timeout_ticks);
    if (!timeout) return timeout.error();
    c.view_change_timeout_ticks = *timeout;
    auto chunk = fields.unsigned_field("snapshot_chunk_bytes", 256, 1u << 20, c.snapshot_chunk_bytes);
    if (!chunk) return chunk.error();
    c.snapshot_chunk_bytes = static_cast<uint32_t>(*chunk);
    auto election = fields.unsigned_field("election_timeout_ticks", 2, big, c.election_timeout_ticks);
    if (!election) return election.error();
    c.election_timeout_ticks = *election;
    auto heartbeat = fields.unsigned_field("heartbeat_ticks", 1, big, c.heartbeat_ticks);
    if (!heartbeat) return heartbeat.error();
    c.heartbeat_ticks = *heartbeat;
    if (c.heartbeat_ticks >= c.election_timeout_ticks)
        return fields.error("heartbeat_ticks", "must be less than election_timeout_ticks (" +
                                                   std::to_string(c.election_timeout_ticks) + "), got " +
                                                   std::to_string(c.heartbeat_ticks));
    auto lease = fields.bool_field("lease_reads", c.lease_reads);
    if (!lease) return lease.error();
    c.lease_reads = *lease;
    // PBFT has no leader lease to read from: say so rather than ignore what was asked for.
    if (c.lease_reads && config.protocol != bft::Protocol::kRaft)
        return fields.error("lease_reads", "only Raft has lease reads (protocol is \"" +
                                               std::string(bft::protocol_name(config.protocol)) + "\")");
    return fields.no_unknown_fields();
}

Result<NetworkConfig> parse(const std::string& file, const std::string& dir, const json& j) {
    if (!j.is_object()) return make_error("invalid", file + ": expected a JSON object");
    NetworkConfig config;
    config.dir = dir;
    Fields fields(file, "", j);
    if (fields.has("protocol")) {  // absent: "pbft", as every network.json before the field
        auto protocol = fields.string_field("protocol");
        if (!protocol) return protocol.error();
        auto known = bft::protocol_from_name(*protocol);
        if (!known)
            return fields.error("protocol",
                                "expected \"pbft\" or \"raft\", got \"" + *protocol + "\"");
        config.protocol = *known;
    }
    auto f = fields.unsigned_field("f", 0, 1000);
    if (!f) return f.error();
    config.f = static_cast<uint32_t>(*f);
    if (fields.has("replicas")) fields.at("replicas");
    if (fields.has("genesis")) fields.at("genesis");
    if (fields.has("genesis_ballast")) fields.at("genesis_ballast");
    if (fields.has("consensus")) fields.at("consensus");
    if (auto s = fields.no_unknown_fields(); !s) return s.error();

    if (auto s = parse_replicas(file, j, config); !s) return s.error();
    // Raft takes any n (an even n tolerates no more crashes than n - 1: f = floor((n-1)/2));
    // PBFT exactly 3f+1.
    const uint32_t want = config.protocol == bft::Protocol::kRaft && config.n() > 0 &&
                                  bft::Quorums::max_faults(config.protocol, config.n()) == config.f
                              ? config.n()
                              : config.quorums().n();
    if (config.n() != want)
        return make_error("invalid", file + ": replicas: " +
                                         std::string(bft::protocol_name(config.protocol)) +
                                         " with f = " + std::to_string(config.f) + " needs n = " +
                                         std::string(bft::Quorums::size_rule(config.protocol)) +
                                         " = " + std::to_string(want) + " replicas, got " +
                                         std::to_string(config.n()));
    if (auto s = parse_genesis(file, j, config); !s) return s.error();
    if (auto s = parse_consensus(file, j, config); !s) return s.error();
    return config;
}

}  // namespace

Result<NetworkConfig> load_network_config(const std::string& path) {
    std::error_code ec;
    const fs::path abs = fs::absolute(fs::path(path), ec).lexically_normal();
    if (ec || !fs::is_regular_file(abs, ec))
        return make_error("not_found", path + ": no such file");
    std::ifstream in(abs, std::ios::binary);
    if (!in) return make_error("not_found", path + ": cannot open: " + std::strerror(errno));
    std::stringstream text;
    text << in.rdbuf();
    return parse_network_config(text.str(), path);
}

Result<NetworkConfig> parse_network_config(std::string_view text, const std::string& path) {
    std::error_code ec;
    const fs::path abs = fs::absolute(fs::path(path), ec).lexically_normal();
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {  // nlohmann reports where the JSON breaks
        return make_error("parse", path + ": not valid JSON: " + e.what());
    }
    return parse(path, abs.parent_path().string(), j);
}

Status save_network_config(const NetworkConfig& config, const std::string& path) {
    std::error_code ec;
    const fs::path abs = fs::absolute(fs::path(path), ec).lexically_normal();
    if (ec) return make_error("io", path + ": " + ec.message());
    const std::string base = abs.parent_path().string();
    // Relative paths in memory are relative to the config's folder (or the file's, if unset).
    const std::string from = config.dir.empty() ? base : config.dir;

    json j;
    j["protocol"] = std::string(bft::protocol_name(config.protocol));
    j["f"] = config.f;
    json replicas = json::array();
    for (const auto& r : config.replicas) {
        json replica = {{"id", r.id},
                        {"host", r.host},
                        {"port", r.port},
                        {"public_key", crypto::key_to_hex(r.public_key)},
                        {"key_file", relativize(base, resolve(from, r.key_file))},
                        {"data_dir", relativize(base, resolve(from, r.data_dir))}};
        if (r.client_port != 0) replica["client_port"] = r.client_port;
        if (r.metrics_port != 0) replica["metrics_port"] = r.metrics_port;
        if (!r.traitor.empty()) replica["traitor"] = r.traitor;
        replicas.push_back(std::move(replica));
    }
    j["replicas"] = std::move(replicas);
    json genesis = json::array();
    for (const auto& a : config.genesis.accounts)
        genesis.push_back({{"account", crypto::key_to_hex(a.key)}, {"balance", a.balance}});
    j["genesis"] = std::move(genesis);
    if (config.genesis.ballast.accounts > 0)
        j["genesis_ballast"] = {{"accounts", config.genesis.ballast.accounts},
                                {"balance", config.genesis.ballast.balance}};
    const ConsensusConfig& c = config.consensus;
    j["consensus"] = {{"tick_ms", c.tick_ms},
                      {"batch_size_max", c.batch_size_max},
                      {"batch_bytes_max", c.batch_bytes_max},
                      {"pipeline_depth", c.pipeline_depth},
                      {"checkpoint_interval", c.checkpoint_interval},
                      {"watermark_window", c.watermark_window},
                      {"view_change_timeout_ticks", c.view_change_timeout_ticks},
                      {"snapshot_chunk_bytes", c.snapshot_chunk_bytes}};
    if (config.protocol == bft::Protocol::kRaft) {
        j["consensus"]["election_timeout_ticks"] = c.election_timeout_ticks;
        j["consensus"]["heartbeat_ticks"] = c.heartbeat_ticks;
        j["consensus"]["lease_reads"] = c.lease_reads;
    }

    // Write a sibling, then rename: a reader never sees half a file.
    const fs::path tmp = abs.string() + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) return make_error("io", path + ": cannot write: " + std::strerror(errno));
        out << j.dump(2) << "\n";
        out.flush();
        if (!out) return make_error("io", path + ": write failed");
    }
    fs::rename(tmp, abs, ec);
    if (ec) {
        fs::remove(tmp, ec);
        return make_error("io", path + ": cannot rename into place: " + ec.message());
    }
    return Ok{};
}

}  // namespace tally::node::api
