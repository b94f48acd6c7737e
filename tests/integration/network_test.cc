// End to end, as a user runs Tally: `tally net up` starts four real tallyd processes in a fresh
// temporary folder; several client-library clients (one per thread, each with its own account
// funded from the faucet) and the `tally` CLI itself send transfers at the same time; then
// every live replica must report the same executed sequence number and state digest, and every
// balance must be exactly what the accepted transfers imply.
//
// The second test crashes one replica first (`tally net kill --node 3`): with f = 1 of 4 down the
// network must still commit everything.
//
// TearDown always runs `tally net down` and then SIGKILLs any replica still alive. On a failure
// the network folder (with the replicas' logs) is kept and its path printed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "client/net.h"
#include "crypto/key_file.h"
#include "crypto/keys.h"
#include "ledger/tx.h"
#include "node/api/network_config.h"

extern char** environ;

namespace tally::client {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr int kThreads = 4;
constexpr int kTransfersPerThread = 50;  // 200 through the library
constexpr int kCliTransfers = 5;
constexpr uint64_t kFunding = 10'000'000;
constexpr auto kCommandDeadline = 90s;
constexpr auto kConvergeDeadline = 30s;

struct Command {
    int exit_code = -1;
    std::string out;
    std::string err;
};

// Where tally and tallyd are: the build's bin folder, or $TALLY_BIN_DIR when set (to test
// other binaries without rebuilding the test).
std::string bin_dir() {
    const char* env = std::getenv("TALLY_BIN_DIR");
    return env != nullptr && *env != '\0' ? std::string(env) : std::string(TALLY_BIN_DIR);
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// Runs `tally ARGS...` with stdout and stderr captured; kills it after kCommandDeadline.
Command run_tally(const std::vector<std::string>& args, const std::string& scratch) {
    static std::atomic<int> counter{0};
    const std::string tag = scratch + "/cmd-" + std::to_string(::getpid()) + "-" +
                            std::to_string(counter.fetch_add(1));
    const std::string out_path = tag + ".out";
    const std::string err_path = tag + ".err";
    std::vector<std::string> argv_strings = {bin_dir() + "/tally"};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_strings) argv.push_back(a.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    Command result;
    if (rc != 0) {
        result.err = "cannot run " + argv_strings[0];
        return result;
    }
    const auto deadline = std::chrono::steady_clock::now() + kCommandDeadline;
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            result.err = "timed out: tally";
            for (const auto& a : args) result.err += " " + a;
            return result;
        }
        std::this_thread::sleep_for(10ms);
    }
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    result.out = read_file(out_path);
    result.err = read_file(err_path);
    fs::remove(out_path);
    fs::remove(err_path);
    return result;
}

std::string describe(const Command& c) {
    return "exit " + std::to_string(c.exit_code) + "\nstdout:\n" + c.out + "\nstderr:\n" + c.err;
}

class NetworkTest : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/tally-network-test-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        scratch_ = pattern;
        dir_ = scratch_ + "/net";
        ASSERT_TRUE(fs::exists(bin_dir() + "/tallyd"))
            << "build tallyd first: cmake --build <build> --target tallyd tally";
        ASSERT_TRUE(fs::exists(bin_dir() + "/tally"))
            << "build tally first: cmake --build <build> --target tallyd tally";

        const auto up = tally({"net", "up"});
        ASSERT_EQ(up.exit_code, 0) << describe(up);
        started_ = true;
        auto config = node::api::load_network_config(dir_ + "/network.json");
        ASSERT_TRUE(config.ok()) << config.error().message;
        config_ = *config;
        ASSERT_EQ(config_.n(), 4u);
        ASSERT_EQ(config_.f, 1u);
        for (const char* name : {"alice", "bob", "carol", "dave", "faucet"}) {
            auto key = crypto::read_key_file(dir_ + "/accounts/" + name + ".key");
            ASSERT_TRUE(key.ok()) << key.error().message;
            named_.emplace(name, key->public_key());
        }
        for (const auto& account : config_.genesis.accounts) expected_[account.key] = account.balance;
    }

    void TearDown() override {
        if (started_) {
            const auto down = tally({"net", "down"});
            EXPECT_EQ(down.exit_code, 0) << describe(down);
            // Whatever `net down` missed must not outlive the test.
            for (uint32_t id = 0; id < 4; ++id) {
                if (auto pid = replica_pid(dir_, id)) {
                    ADD_FAILURE() << "replica " << id << " survived `tally net down`";
                    ::kill(*pid, SIGKILL);
                }
            }
        }
        if (HasFailure()) {
            std::cerr << "network folder kept for inspection: " << dir_ << "\n";
        } else {
            std::error_code ec;
            fs::remove_all(scratch_, ec);
        }
    }

    Command tally(std::vector<std::string> args) {
        args.push_back("--dir");
        args.push_back(dir_);
        return run_tally(args, scratch_);
    }

    // Funds one fresh account per thread from the faucet, one transfer at a time.
    void fund(const std::vector<crypto::KeyPair>& keys) {
        Client client;
        ASSERT_TRUE(client.connect(config_).ok());
        const auto& faucet_key = named_.at("faucet");
        auto faucet = crypto::read_key_file(dir_ + "/accounts/faucet.key");
        ASSERT_TRUE(faucet.ok());
        auto account = client.balance(faucet_key, Consistency::kLinearizable);
        ASSERT_TRUE(account.ok()) << account.error().message;
        uint64_t nonce = account->nonce;
        for (const auto& key : keys) {
            auto r = client.transfer(*faucet, key.public_key(), kFunding, ++nonce);
            ASSERT_TRUE(r.ok()) << r.error().message;
            ASSERT_TRUE(r->ok()) << result_text(r->result);
            record(faucet_key, key.public_key(), kFunding);
        }
        EXPECT_EQ(client.counters().rejected(), 0u);
    }

    void record(const crypto::PublicKey& from, const crypto::PublicKey& to, uint64_t amount) {
        std::lock_guard<std::mutex> lock(mutex_);
        expected_[from] -= amount;
        expected_[to] += amount;
    }

    // Each thread: its own Client and account, kTransfersPerThread transfers to random
    // recipients, each one accepted before the next (explicit nonces 1, 2, ...).
    void run_clients(const std::vector<crypto::KeyPair>& keys) {
        std::vector<crypto::PublicKey> recipients;
        for (const auto& k : keys) recipients.push_back(k.public_key());
        for (const char* name : {"alice", "bob", "carol", "dave"}) recipients.push_back(named_.at(name));

        std::vector<std::string> errors;
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([&, t] {
                Client client;
                auto note = [&](const std::string& e) {
                    std::lock_guard<std::mutex> lock(mutex_);
                    errors.push_back("client " + std::to_string(t) + ": " + e);
                };
                if (auto s = client.connect(config_); !s) return note(s.error().message);
                std::mt19937_64 random(static_cast<uint64_t>(t) * 7919 + 1);
                const auto& me = keys[t];
                for (uint64_t nonce = 1; nonce <= kTransfersPerThread; ++nonce) {
                    crypto::PublicKey to;
                    do {
                        to = recipients[random() % recipients.size()];
                    } while (to == me.public_key());
                    const uint64_t amount = 1 + random() % 1000;
                    auto r = client.transfer(me, to, amount, nonce);
                    if (!r) return note(r.error().message);
                    if (!r->ok()) return note("transfer " + std::to_string(nonce) + ": " + result_text(r->result));
                    if (r->seq == 0 || r->block != r->seq) return note("a transfer without a block");
                    record(me.public_key(), to, amount);
                }
                if (client.counters().rejected() != 0)
                    note(std::to_string(client.counters().rejected()) + " rejected replies from honest replicas");
            });
        }

        // Meanwhile, transfers through the CLI, as a user types them. (No ASSERT here: the
        // threads must be joined whatever happens.)
        for (int i = 0; i < kCliTransfers; ++i) {
            const auto c = tally({"transfer", "--key", "alice", "--to", "bob", "--amount", "7", "--json"});
            auto j = nlohmann::json::parse(c.out, nullptr, false);
            if (c.exit_code != 0 || j.is_discarded() || !j.contains("tx")) {
                ADD_FAILURE() << describe(c);
                break;
            }
            EXPECT_EQ(j["result"], "ok");
            EXPECT_GT(j["seq"].get<uint64_t>(), 0u);
            EXPECT_EQ(j["block"], j["seq"]);
            EXPECT_EQ(j["tx"].get<std::string>().size(), 64u);
            record(named_.at("alice"), named_.at("bob"), 7);
            cli_txs_.emplace_back(j["tx"].get<std::string>(), j["seq"].get<uint64_t>());
        }
        for (auto& t : threads) t.join();
        for (const auto& e : errors) ADD_FAILURE() << e;
    }

    // Polls status until every replica in `live` reports the same executed seq and digest.
    void expect_replicas_converge(const std::vector<uint32_t>& live) {
        Client client;
        ASSERT_TRUE(client.connect(config_).ok());
        const auto deadline = std::chrono::steady_clock::now() + kConvergeDeadline;
        std::string last;
        while (std::chrono::steady_clock::now() < deadline) {
            auto statuses = client.status(1s);
            ASSERT_TRUE(statuses.ok());
            bool same = true;
            std::ostringstream seen;
            const auto& first = (*statuses)[live.front()];
            for (uint32_t id : live) {
                const auto& s = (*statuses)[id];
                seen << id << ":" << (s.up ? std::to_string(s.reply.executed()) : "down") << " ";
                same = same && s.up && first.up && s.reply.executed() == first.reply.executed() &&
                       s.reply.state_digest() == first.reply.state_digest();
            }
            last = seen.str();
            if (same && first.reply.executed() > 0) return;
        }
        ADD_FAILURE() << "replicas did not converge on one executed seq and digest: " << last;
    }

    void expect_balances() {
        Client client;
        ASSERT_TRUE(client.connect(config_).ok());
        uint64_t total_expected = 0;
        uint64_t total_read = 0;
        for (const auto& [account, balance] : expected_) {
            auto r = client.balance(account, Consistency::kLinearizable);
            ASSERT_TRUE(r.ok()) << r.error().message;
            EXPECT_EQ(r->balance, balance) << crypto::key_to_hex(account);
            total_expected += balance;
            total_read += r->balance;
        }
        uint64_t genesis_total = 0;
        for (const auto& a : config_.genesis.accounts) genesis_total += a.balance;
        EXPECT_EQ(total_expected, genesis_total);  // the bookkeeping itself conserves money
        EXPECT_EQ(total_read, genesis_total);      // and so does the ledger
        EXPECT_EQ(client.counters().rejected(), 0u);

        // And the CLI reads agree with the library.
        const auto bob = tally({"balance", "bob", "--json"});
        ASSERT_EQ(bob.exit_code, 0) << describe(bob);
        auto j = nlohmann::json::parse(bob.out, nullptr, false);
        ASSERT_FALSE(j.is_discarded()) << bob.out;
        EXPECT_EQ(j["balance"].get<uint64_t>(), expected_.at(named_.at("bob")));
        EXPECT_EQ(j["account"], crypto::key_to_hex(named_.at("bob")));
        EXPECT_TRUE(j.contains("nonce"));
    }

    void expect_cli_tx_lookup() {
        ASSERT_FALSE(cli_txs_.empty());
        const auto& [id, seq] = cli_txs_.front();
        const auto c = tally({"tx", id, "--json"});
        ASSERT_EQ(c.exit_code, 0) << describe(c);
        auto j = nlohmann::json::parse(c.out, nullptr, false);
        ASSERT_FALSE(j.is_discarded()) << c.out;
        EXPECT_EQ(j["result"], "ok");
        EXPECT_EQ(j["seq"].get<uint64_t>(), seq);
    }

    std::vector<crypto::KeyPair> fresh_keys() {
        std::vector<crypto::KeyPair> keys;
        for (int i = 0; i < kThreads; ++i) keys.push_back(crypto::KeyPair::generate());
        return keys;
    }

    std::string scratch_;
    std::string dir_;
    bool started_ = false;
    node::api::NetworkConfig config_;
    std::map<std::string, crypto::PublicKey> named_;
    std::mutex mutex_;
    std::map<crypto::PublicKey, uint64_t> expected_;  // what the accepted transfers imply
    std::vector<std::pair<std::string, uint64_t>> cli_txs_;
};

TEST_F(NetworkTest, ConcurrentClientsCommitAndEveryReplicaAgrees) {
    const auto keys = fresh_keys();
    fund(keys);
    if (HasFatalFailure()) return;
    run_clients(keys);
    if (HasFailure()) return;
    expect_balances();
    expect_cli_tx_lookup();
    expect_replicas_converge({0, 1, 2, 3});

    const auto status = tally({"net", "status", "--json"});
    ASSERT_EQ(status.exit_code, 0) << describe(status);
    auto j = nlohmann::json::parse(status.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << status.out;
    ASSERT_EQ(j["replicas"].size(), 4u);
    for (const auto& r : j["replicas"]) {
        EXPECT_EQ(r["up"], true);
        EXPECT_EQ(r["digest"].get<std::string>().size(), 64u);
    }
}

TEST_F(NetworkTest, WithOneReplicaCrashedTheNetworkStillCommits) {
    const auto kill = tally({"net", "kill", "--node", "3"});
    ASSERT_EQ(kill.exit_code, 0) << describe(kill);
    ASSERT_FALSE(replica_pid(dir_, 3).has_value());

    const auto keys = fresh_keys();
    fund(keys);
    if (HasFatalFailure()) return;
    run_clients(keys);
    if (HasFailure()) return;
    expect_balances();
    expect_cli_tx_lookup();
    expect_replicas_converge({0, 1, 2});

    const auto status = tally({"net", "status", "--json"});
    ASSERT_EQ(status.exit_code, 0) << describe(status);
    auto j = nlohmann::json::parse(status.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << status.out;
    EXPECT_EQ(j["replicas"][3]["up"], false);
    EXPECT_EQ(j["replicas"][0]["up"], true);
}

}  // namespace
}  // namespace tally::client
