// A real network for integration tests: `net_up` in a fresh temporary folder (free ports),
// clients for its funded accounts, a background load, and waiting — with deadlines, never
// sleeps as synchronisation — for what the replicas report. The destructor always stops every
// replica (net_down, then SIGKILL for anything left); on a failure the folder is kept, with
// the replicas' logs, and its path printed.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "client/linearizability.h"
#include "client/net.h"
#include "crypto/hash.h"
#include "crypto/key_file.h"
#include "ledger/state.h"
#include "ledger/tx.h"
#include "node/api/network_config.h"

namespace tally::integration {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

inline std::string bin_dir() {
    const char* env = std::getenv("TALLY_BIN_DIR");
    return env != nullptr && *env != '\0' ? std::string(env) : std::string(TALLY_BIN_DIR);
}

class LiveNetwork {
public:
    // Starts `nodes` replicas. `edit` may change network.json before any replica starts.
    explicit LiveNetwork(client::NetUpOptions options = {},
                         std::function<void(node::api::NetworkConfig&)> edit = nullptr) {
        char pattern[] = "/tmp/tally-live-XXXXXX";
        if (::mkdtemp(pattern) == nullptr) {
            ADD_FAILURE() << "mkdtemp failed";
            return;
        }
        scratch_ = pattern;
        dir_ = scratch_ + "/net";
        options.dir = dir_;
        options.tallyd = bin_dir() + "/tallyd";
        options.edit_config = std::move(edit);
        std::ostringstream out, progress;
        auto up = client::net_up(options, out, progress);
        if (!up) {
            ADD_FAILURE() << "net up: " << up.error().message << "\n" << out.str() << progress.str();
            return;
        }
        auto config = node::api::load_network_config(dir_ + "/network.json");
        if (!config) {
            ADD_FAILURE() << config.error().message;
            return;
        }
        config_ = *config;
        ok_ = true;
    }

    ~LiveNetwork() {
        if (dir_.empty()) return;
        std::ostringstream out;
        (void)client::net_down(dir_, out, 5000ms);
        for (uint32_t id = 0; id < config_.n(); ++id)
            if (auto pid = client::replica_pid(dir_, id)) ::kill(*pid, SIGKILL);
        if (::testing::Test::HasFailure()) {
            std::cerr << "network folder kept for inspection: " << dir_ << "\n";
        } else {
            std::filesystem::remove_all(scratch_);
        }
    }

    bool ok() const { return ok_; }
    const std::string& dir() const { return dir_; }
    const node::api::NetworkConfig& config() const { return config_; }

    crypto::KeyPair account(const std::string& name) const {
        auto key = crypto::read_key_file(dir_ + "/accounts/" + name + ".key");
        EXPECT_TRUE(key.ok()) << name;
        return *key;
    }

    void kill(uint32_t id) {
        std::ostringstream out;
        EXPECT_TRUE(client::net_kill(dir_, id, out).ok()) << out.str();
    }

    void start(uint32_t id) {
        std::ostringstream out, progress;
        auto started = client::net_start(dir_, id, out, progress, 30000ms, bin_dir() + "/tallyd");
        EXPECT_TRUE(started.ok()) << (started ? "" : started.error().message) << out.str();
    }

    // Every replica's status (down ones marked so).
    std::vector<client::ReplicaStatus> status() {
        client::Client c;
        if (!c.connect(config_)) return {};
        auto s = c.status(1000ms);
        return s ? *s : std::vector<client::ReplicaStatus>{};
    }

    // Waits until `holds(statuses)` or the deadline; returns whether it held.
    bool wait_for(const std::function<bool(const std::vector<client::ReplicaStatus>&)>& holds,
                  std::chrono::milliseconds deadline) {
        auto until = Clock::now() + deadline;
        while (Clock::now() < until) {
            auto s = status();
            if (!s.empty() && holds(s)) return true;
            std::this_thread::sleep_for(100ms);  // polling interval, not synchronisation
        }
        return false;
    }

    // Waits until the given replicas report one executed seq and one digest.
    bool converged(const std::vector<uint32_t>& ids, std::chrono::milliseconds deadline, std::string* last) {
        return wait_for(
            [&](const std::vector<client::ReplicaStatus>& s) {
                std::ostringstream seen;
                std::optional<std::pair<uint64_t, std::string>> first;
                bool same = true;
                for (uint32_t id : ids) {
                    if (id >= s.size() || !s[id].up) {
                        seen << id << ":down ";
                        same = false;
                        continue;
                    }
                    auto mine = std::make_pair(s[id].reply.executed(), s[id].reply.state_digest());
                    seen << id << ":" << mine.first << "/" << crypto::to_hex(mine.second).substr(0, 8) << " ";
                    if (!first) first = mine;
                    same = same && mine == *first;
                }
                if (last) *last = seen.str();
                return same;
            },
            deadline);
    }

private:
    std::string scratch_;
    std::string dir_;
    node::api::NetworkConfig config_;
    bool ok_ = false;
};

// Transfers from one account, one at a time, on a thread of its own, until stopped, with an
// ordered read of the recipient's balance every few transfers; counts what committed and
// records every operation (invoke and return times, what the client saw) for the
// linearizability checker. A transfer that times out is recorded with an unknown outcome.
class Load {
public:
    Load(const node::api::NetworkConfig& config, crypto::KeyPair from, crypto::PublicKey to)
        : config_(config), from_(std::move(from)), to_(to) {
        thread_ = std::thread([this] { run(); });
    }
    ~Load() { stop(); }

    void stop() {
        stopping_ = true;
        if (thread_.joinable()) thread_.join();
    }
    uint64_t committed() const { return committed_; }
    uint64_t amount_moved() const { return moved_; }
    Clock::time_point last_commit() const {
        std::lock_guard lock(mu_);
        return last_commit_;
    }
    // Waits until `more` transfers committed after this call (with a deadline).
    bool wait_more(uint64_t more, std::chrono::milliseconds deadline) const {
        uint64_t target = committed_ + more;
        auto until = Clock::now() + deadline;
        while (committed_ < target && Clock::now() < until) std::this_thread::sleep_for(20ms);
        return committed_ >= target;
    }
    std::vector<client::Operation> history() const {
        std::lock_guard lock(mu_);
        return history_;
    }
    // The client's reply counters, once stopped.
    client::ReplyCounters reply_counters() const {
        std::lock_guard lock(mu_);
        return reply_counters_;
    }

private:
    static uint64_t now_us() {
        return static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count());
    }

    // The sender's next nonce, read through consensus (after a timeout the last transfer may or
    // may not have applied).
    std::optional<uint64_t> next_nonce(client::Client& c) {
        auto b = c.balance(from_.public_key(), client::Consistency::kLinearizable, 5000ms);
        if (!b) return std::nullopt;
        return b->nonce + 1;
    }

    void run() {
        client::Client c;
        if (!c.connect(config_)) return;
        uint64_t nonce = 0;
        bool nonce_known = false;
        for (uint64_t round = 0; !stopping_; ++round) {
            if (!nonce_known) {
                auto next = next_nonce(c);
                if (!next) continue;
                nonce = *next;
                nonce_known = true;
            }
            client::Operation op;
            op.client = 0;
            op.transfer = client::TransferOp{from_.public_key(), to_, 1, nonce};
            op.invoke = now_us();
            auto r = c.transfer(from_, to_, 1, nonce, 5000ms);
            if (r) {
                op.returned = now_us();
                op.result = static_cast<ledger::ResultCode>(r->result);
                if (ledger::consumes_nonce(op.result)) ++nonce;
                if (r->ok()) {
                    ++committed_;
                    ++moved_;
                    std::lock_guard lock(mu_);
                    last_commit_ = Clock::now();
                }
            } else {
                nonce_known = false;  // unknown outcome: re-read the nonce
            }
            record(op);
            if (round % 5 == 4) read_recipient(c);
        }
        std::lock_guard lock(mu_);
        reply_counters_ = c.counters();
    }

    void read_recipient(client::Client& c) {
        client::Operation op;
        op.is_transfer = false;
        op.balance.account = to_;
        op.invoke = now_us();
        auto b = c.balance(to_, client::Consistency::kLinearizable, 5000ms);
        if (!b) return;  // a read that never answered tells nothing: left out
        op.returned = now_us();
        op.result = b->exists ? ledger::ResultCode::kOk : ledger::ResultCode::kUnknownAccount;
        op.read_balance = b->balance;
        op.read_nonce = b->nonce;
        record(op);
    }

    void record(const client::Operation& op) {
        std::lock_guard lock(mu_);
        history_.push_back(op);
    }

    node::api::NetworkConfig config_;
    crypto::KeyPair from_;
    crypto::PublicKey to_;
    std::atomic<bool> stopping_{false};
    std::atomic<uint64_t> committed_{0};
    std::atomic<uint64_t> moved_{0};
    mutable std::mutex mu_;
    Clock::time_point last_commit_{};
    std::vector<client::Operation> history_;
    client::ReplyCounters reply_counters_;
    std::thread thread_;
};

// Checks the loads' merged history against the ledger's model from the network's genesis.
inline void expect_linearizable(const node::api::NetworkConfig& config, const std::vector<const Load*>& loads) {
    std::map<crypto::PublicKey, uint64_t> genesis;
    for (const auto& a : config.genesis.accounts) genesis[a.key] = a.balance;
    std::vector<client::Operation> all;
    uint32_t client = 0;
    for (const Load* load : loads) {
        for (auto op : load->history()) {
            op.client = client;
            all.push_back(op);
        }
        ++client;
    }
    auto verdict = client::check_linearizable(all, client::LedgerModel(genesis));
    EXPECT_TRUE(verdict.complete) << verdict.explanation;
    EXPECT_TRUE(verdict.linearizable) << "the clients' history (" << all.size()
                                      << " operations) is not linearizable: " << verdict.explanation;
}

// A command's exit code and what it printed (stdout and stderr), with a deadline.
struct CommandRun {
    int exit_code = -1;
    std::string output;
};
// Runs `command` with a deadline (a program that wrongly keeps running fails the test, not
// hangs it), stdout and stderr together.
inline CommandRun run_command(const std::string& command, int timeout_seconds = 60) {
    CommandRun r;
    FILE* pipe = ::popen(("timeout " + std::to_string(timeout_seconds) + " " + command + " 2>&1").c_str(), "r");
    if (pipe == nullptr) return r;
    char buffer[4096];
    size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) r.output.append(buffer, n);
    const int status = ::pclose(pipe);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

// Waits until replica `id`'s log holds a match of `line` (tallyd flushes its log every second),
// with a deadline. Returns the match and its groups; empty when none came in time.
inline std::vector<std::string> wait_for_log_line(const LiveNetwork& net, uint32_t id, const std::regex& line,
                                                  std::chrono::seconds deadline = std::chrono::seconds(10)) {
    const auto until = Clock::now() + deadline;
    while (true) {
        std::ifstream log(net.dir() + "/logs/replica-" + std::to_string(id) + ".log");
        const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
        std::smatch match;
        if (std::regex_search(text, match, line)) return {match.begin(), match.end()};
        if (Clock::now() >= until) return {};
        std::this_thread::sleep_for(100ms);  // polling interval, not synchronisation
    }
}

// How many of the `acknowledged` transfers from `from` to `to` the ledger at `ledger_path` lacks
// (or holds with another result than ok); -1 when the ledger does not open (a test failure).
inline long missing_acknowledged(const std::string& ledger_path, const ledger::Genesis& genesis,
                                 const crypto::KeyPair& from, const crypto::PublicKey& to,
                                 const std::vector<client::Operation>& acknowledged, uint64_t* last_seq) {
    auto ledger = ledger::State::open(ledger_path, genesis);
    EXPECT_TRUE(ledger.ok()) << (ledger ? "" : ledger.error().message);
    if (!ledger) return -1;
    if (last_seq) *last_seq = (*ledger)->last_seq();
    long missing = 0;
    for (const auto& op : acknowledged) {
        auto tx = ledger::decode_tx(ledger::make_transfer(from, to, op.transfer.amount, op.transfer.nonce));
        EXPECT_TRUE(tx.ok());
        if (!tx) return -1;
        auto found = (*ledger)->transaction(tx->id);
        if (!found || found->code != ledger::ResultCode::kOk) ++missing;
    }
    return missing;
}

// `tally audit` passes on replica `id`'s data folder within `patience` (a replica installed by
// state transfer fetches the blocks below the snapshot in the background): the whole chain,
// every block's hash link, transaction root, commit certificate and state digest.
inline void expect_audit_passes(const LiveNetwork& net, uint32_t id,
                                std::chrono::seconds patience = std::chrono::seconds(60)) {
    const std::string command = bin_dir() + "/tally audit --dir " + net.dir() + " --data " +
                                net.config().replicas[id].data_dir;
    CommandRun audit;
    const auto until = Clock::now() + patience;
    do {
        audit = run_command(command);
        if (audit.exit_code == 0) break;
        std::this_thread::sleep_for(200ms);  // polling interval, not synchronisation
    } while (Clock::now() < until);
    EXPECT_EQ(audit.exit_code, 0) << "replica " << id << ": " << audit.output;
    EXPECT_NE(audit.output.find("the chain is whole and valid"), std::string::npos) << audit.output;
    std::cout << "[ audit    ] replica " << id << ":\n" << audit.output;
}

}  // namespace tally::integration
