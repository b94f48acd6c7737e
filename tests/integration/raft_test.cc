// Raft mode end to end, as a user runs it: `tally net up --consensus raft` starts three real
// tallyd processes in a fresh temporary folder; transfers commit (through the library and
// through `tally transfer`, each sent first to any replica and redirected to the leader); every
// replica's own ledger (`--consistency local`) shows the same balances, and a linearizable read
// is answered through the leader's ReadIndex without a log write; `tally net kill` takes
// the leader down, and a new leader, elected by the other two, commits the next transfer;
// `tally net start` brings the old leader back as a follower that catches up.
//
// Waits are on conditions with deadlines (the replicas' status, a client's answer); the
// network is always stopped (net down, then SIGKILL), and on a failure its folder is kept.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "client/curve.h"
#include "crypto/envelope.h"
#include "node/api/client.pb.h"
#include "tests/integration/live_network.h"

namespace tally::integration {
namespace {

constexpr uint64_t kGenesis = client::kGenesisAccountBalance;

// A network started by the CLI itself, always stopped.
class CliNetwork {
public:
    CliNetwork() {
        char pattern[] = "/tmp/tally-raft-XXXXXX";
        if (::mkdtemp(pattern) != nullptr) scratch_ = pattern;
        dir_ = scratch_ + "/net";
    }
    ~CliNetwork() {
        if (scratch_.empty()) return;
        std::ostringstream out;
        (void)client::net_down(dir_, out, 5000ms);
        for (uint32_t id = 0; id < 8; ++id)
            if (auto pid = client::replica_pid(dir_, id)) ::kill(*pid, SIGKILL);
        if (::testing::Test::HasFailure()) {
            std::cerr << "network folder kept for inspection: " << dir_ << "\n";
        } else {
            std::filesystem::remove_all(scratch_);
        }
    }
    const std::string& dir() const { return dir_; }
    CommandRun tally(const std::string& args, int timeout_seconds = 60) const {
        return run_command(bin_dir() + "/tally " + args + " --dir " + dir_, timeout_seconds);
    }

private:
    std::string scratch_;
    std::string dir_;
};

// Polls every replica's status until `holds` or the deadline (polling, not synchronisation).
bool wait_for_status(client::Client& c, const std::function<bool(const std::vector<client::ReplicaStatus>&)>& holds,
                     std::chrono::milliseconds deadline, std::vector<client::ReplicaStatus>* last = nullptr) {
    const auto until = Clock::now() + deadline;
    while (Clock::now() < until) {
        auto s = c.status(500ms);
        if (s && last) *last = *s;
        if (s && holds(*s)) return true;
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

// One leader among the live replicas, which every live one names, in one term.
std::optional<uint32_t> agreed_leader(const std::vector<client::ReplicaStatus>& s) {
    std::optional<uint32_t> leader;
    std::optional<uint64_t> term;
    for (const auto& r : s) {
        if (!r.up) continue;
        if (!r.reply.has_leader()) return std::nullopt;
        if (leader && (*leader != r.reply.leader() || *term != r.reply.view())) return std::nullopt;
        leader = r.reply.leader();
        term = r.reply.view();
    }
    if (!leader || *leader >= s.size() || !s[*leader].up || s[*leader].reply.role() != "leader")
        return std::nullopt;
    return leader;
}

// Every replica in `ids` answers `account`'s balance from its own ledger as `want`.
bool balances_equal(client::Client& c, const crypto::PublicKey& account, uint64_t want,
                    const std::vector<uint32_t>& ids, std::chrono::milliseconds deadline, std::string* seen) {
    const auto until = Clock::now() + deadline;
    while (Clock::now() < until) {
        std::ostringstream out;
        bool all = true;
        for (uint32_t id : ids) {
            auto b = c.balance(account, client::Consistency::kLocal, 1000ms, id);
            out << id << ":" << (b ? std::to_string(b->balance) + "@" + std::to_string(b->seq) : "none") << " ";
            all = all && b && b->balance == want;
        }
        *seen = out.str();
        if (all) return true;
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

TEST(RaftNetwork, TransfersCommitEveryReplicaAgreesAndANewLeaderCommitsAfterTheLeaderIsKilled) {
    const auto begin = Clock::now();
    CliNetwork net;
    auto up = net.tally("net up --consensus raft");
    ASSERT_EQ(up.exit_code, 0) << up.output;
    EXPECT_NE(up.output.find("network up: 3 raft replicas (f=1)"), std::string::npos) << up.output;
    auto config = node::api::load_network_config(net.dir() + "/network.json");
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_EQ(config->protocol, bft::Protocol::kRaft);
    ASSERT_EQ(config->n(), 3u);

    client::Client c;
    ASSERT_TRUE(c.connect(*config).ok());
    std::vector<client::ReplicaStatus> last;
    ASSERT_TRUE(wait_for_status(c, [](const auto& s) { return agreed_leader(s).has_value(); }, 15s, &last))
        << "no leader elected";
    const uint32_t leader = *agreed_leader(last);
    const uint64_t term = last[leader].reply.view();

    // A follower asked alone answers with a redirect, signed, naming the leader of its term.
    const uint32_t follower = (leader + 1) % 3;
    {
        zmq::context_t context(1);
        zmq::socket_t dealer(context, zmq::socket_type::dealer);
        dealer.set(zmq::sockopt::linger, 0);
        ASSERT_TRUE(client::secure_to_replica(dealer, config->replicas[follower]).ok());
        dealer.connect(config->replicas[follower].client_endpoint());
        const auto query = ledger::make_balance_query(crypto::KeyPair::generate(),
                                                      crypto::KeyPair::generate().public_key(), 1);
        dealer.send(zmq::buffer(query), zmq::send_flags::none);
        zmq::pollitem_t item{dealer.handle(), 0, ZMQ_POLLIN, 0};
        ASSERT_EQ(zmq::poll(&item, 1, std::chrono::milliseconds(3000)), 1) << "the follower did not answer";
        zmq::message_t answer;
        ASSERT_TRUE(dealer.recv(answer, zmq::recv_flags::none));
        crypto::OpenOptions options;
        options.expected_sender = config->replicas[follower].public_key;
        auto envelope = crypto::open(answer.to_string_view(), options);
        ASSERT_TRUE(envelope.ok()) << envelope.error().message;
        ASSERT_EQ(envelope->type, crypto::MessageType::kRedirect);
        node::api::pb::Redirect redirect;
        ASSERT_TRUE(redirect.ParseFromString(envelope->body));
        EXPECT_EQ(redirect.replica(), follower);
        EXPECT_TRUE(redirect.has_leader());
        EXPECT_EQ(redirect.leader(), leader);
        EXPECT_EQ(redirect.view(), term);
        EXPECT_EQ(redirect.tx_id(), std::string(crypto::as_bytes(ledger::tx_id(query))));
    }

    // Transfers through the library (the first request goes to every replica: the followers
    // redirect, the leader answers) and through the CLI.
    const auto alice = *crypto::read_key_file(net.dir() + "/accounts/alice.key");
    const auto bob = *crypto::read_key_file(net.dir() + "/accounts/bob.key");
    for (int i = 0; i < 3; ++i) {
        auto r = c.transfer(alice, bob.public_key(), 10, std::nullopt, 5000ms);
        ASSERT_TRUE(r.ok()) << r.error().message;
        EXPECT_TRUE(r->ok()) << client::result_text(r->result);
    }
    auto cli = net.tally("transfer --key alice --to bob --amount 10");
    ASSERT_EQ(cli.exit_code, 0) << cli.output;
    EXPECT_NE(cli.output.find("result  ok"), std::string::npos) << cli.output;

    std::string seen;
    EXPECT_TRUE(balances_equal(c, bob.public_key(), kGenesis + 40, {0, 1, 2}, 5000ms, &seen))
        << "balances per replica: " << seen;
    // A linearizable read is served by the leader's ReadIndex: the right balance, and nothing
    // written to the log for it.
    ASSERT_TRUE(wait_for_status(c, [](const auto& s) { return agreed_leader(s).has_value(); }, 5s, &last));
    const uint64_t log_before = last[leader].reply.last_log_index();
    auto linearizable = c.balance(bob.public_key(), client::Consistency::kLinearizable, 5000ms);
    ASSERT_TRUE(linearizable.ok()) << linearizable.error().message;
    EXPECT_EQ(linearizable->balance, kGenesis + 40);
    EXPECT_EQ(linearizable->served, client::Consistency::kLinearizable);
    ASSERT_TRUE(wait_for_status(c, [](const auto& s) { return agreed_leader(s).has_value(); }, 5s, &last));
    EXPECT_EQ(last[leader].reply.last_log_index(), log_before) << "the read wrote to the log";

    // The leader dies; the other two elect one of themselves, which commits the next transfer.
    auto kill = net.tally("net kill --node " + std::to_string(leader));
    ASSERT_EQ(kill.exit_code, 0) << kill.output;
    const auto killed_at = Clock::now();
    auto after = c.transfer(alice, bob.public_key(), 10, std::nullopt, 10000ms);
    ASSERT_TRUE(after.ok()) << after.error().message;
    EXPECT_TRUE(after->ok()) << client::result_text(after->result);
    const double failover_s = std::chrono::duration<double>(Clock::now() - killed_at).count();
    ASSERT_TRUE(wait_for_status(c, [](const auto& s) { return agreed_leader(s).has_value(); }, 5s, &last));
    const uint32_t new_leader = *agreed_leader(last);
    EXPECT_NE(new_leader, leader);
    EXPECT_GT(last[new_leader].reply.view(), term);
    EXPECT_GE(last[new_leader].reply.commit_index(), after->seq);
    std::vector<uint32_t> alive;
    for (uint32_t id = 0; id < 3; ++id)
        if (id != leader) alive.push_back(id);
    EXPECT_TRUE(balances_equal(c, bob.public_key(), kGenesis + 50, alive, 5000ms, &seen))
        << "balances per replica: " << seen;
    auto status = net.tally("net status");
    EXPECT_EQ(status.exit_code, 0) << status.output;
    EXPECT_NE(status.output.find("leader"), std::string::npos) << status.output;
    EXPECT_NE(status.output.find("down"), std::string::npos) << status.output;

    // The old leader comes back as a follower and catches up from the new leader's log.
    auto start = net.tally("net start --node " + std::to_string(leader));
    ASSERT_EQ(start.exit_code, 0) << start.output;
    EXPECT_TRUE(balances_equal(c, bob.public_key(), kGenesis + 50, {0, 1, 2}, 5000ms, &seen))
        << "balances per replica: " << seen;

    // `tally bench --breakdown` under Raft: Raft's two phases, at each replica, from samples.
    auto bench = net.tally("bench --clients 4 --duration 2 --warmup 0.5 --breakdown --json");
    ASSERT_EQ(bench.exit_code, 0) << bench.output;
    auto j = nlohmann::json::parse(bench.output.substr(bench.output.find('{')), nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << bench.output;
    ASSERT_TRUE(j.contains("breakdown")) << bench.output;
    const auto& phases = j["breakdown"]["phases"];
    ASSERT_EQ(phases.size(), 2u) << bench.output;
    EXPECT_EQ(phases[0]["from"], "appended");
    EXPECT_EQ(phases[1]["to"], "executed");
    for (const auto& phase : phases) {
        ASSERT_EQ(phase["replicas"].size(), 3u);
        for (const auto& r : phase["replicas"]) EXPECT_GT(r["n"].get<uint64_t>(), 0u) << phase.dump();
        EXPECT_LE(phase["all"]["p50_ms"].get<double>(), phase["all"]["p99_ms"].get<double>());
    }
    EXPECT_GT(j["breakdown"]["batch_requests"]["n"].get<uint64_t>(), 0u);
    EXPECT_GT(j["breakdown"]["client_sign_p50_us"].get<double>(), 0.0);
    std::cout << "[ raft     ] leader " << leader << " (term " << term << ") killed; the next transfer "
              << "committed " << failover_s << " s later under leader " << new_leader << " (term "
              << last[new_leader].reply.view() << "); whole test "
              << std::chrono::duration<double>(Clock::now() - begin).count() << " s\n";
}

// Log compaction and InstallSnapshot with real processes: with checkpoint_interval 4 the
// leader compacts its log every 256 entries at a ledger state it keeps (a multiple of 4),
// keeping the last 32. A follower down meanwhile comes back behind the compacted log: the
// leader offers it the newest state it keeps, the follower's node fetches that snapshot from
// the leader in pieces, installs it, and the log carries on from there.
TEST(RaftNetwork, AFollowerBehindTheCompactedLogCatchesUpByInstallSnapshot) {
    client::NetUpOptions options;
    options.protocol = "raft";
    LiveNetwork net(options, [](node::api::NetworkConfig& c) { c.consensus.checkpoint_interval = 4; });
    ASSERT_TRUE(net.ok());
    const auto alice = net.account("alice");
    const auto bob = net.account("bob");
    client::Client c;
    ASSERT_TRUE(c.connect(net.config()));
    std::optional<uint32_t> leader;
    ASSERT_TRUE(net.wait_for([&](const auto& s) { return (leader = agreed_leader(s)).has_value(); }, 15s))
        << "no leader elected";
    const uint32_t follower = (*leader + 1) % 3;
    net.kill(follower);

    constexpr uint64_t kTransfers = 300;
    for (uint64_t nonce = 1; nonce <= kTransfers; ++nonce) {
        auto r = c.transfer(alice, bob.public_key(), 1, nonce, 10s);
        ASSERT_TRUE(r.ok()) << "transfer " << nonce << ": " << r.error().message;
        ASSERT_TRUE(r->ok()) << client::result_text(r->result);
    }
    uint64_t compacted = 0;
    ASSERT_TRUE(net.wait_for(
        [&](const auto& s) {
            for (const auto& r : s)
                if (r.up && r.reply.role() == "leader") compacted = r.reply.low_water_mark();
            return compacted >= 256;
        },
        10s))
        << "the leader did not compact its log (snapshot index " << compacted << ")";
    EXPECT_EQ(compacted % 4, 0u) << "compacted at a state no peer keeps";

    net.start(follower);
    EXPECT_TRUE(net.wait_for(
        [&](const auto& s) {
            uint64_t top = 0;
            for (const auto& r : s)
                if (r.up) top = std::max(top, r.reply.executed());
            const auto& f = s[follower];
            return f.up && f.reply.executed() == top && top >= kTransfers && f.reply.low_water_mark() >= compacted;
        },
        30s))
        << "the follower did not catch up by a snapshot";
    // And it keeps up from there: the next transfer reaches its own ledger.
    auto next = c.transfer(alice, bob.public_key(), 1, kTransfers + 1, 10s);
    ASSERT_TRUE(next.ok()) << next.error().message;
    std::string seen;
    EXPECT_TRUE(balances_equal(c, bob.public_key(), kGenesis + kTransfers + 1, {0, 1, 2}, 10000ms, &seen))
        << "balances per replica: " << seen;
}

// `tallyd --recover` under Raft (bft/raft/raft.h, Config::recovering): a follower whose
// consensus store is lost rejoins with --recover, says it neither votes nor campaigns until it
// knows its peers' terms and holds a leader's entry of such a term, then says it caught up. Its
// vote then counts: with the leader killed, it and the third replica elect a new leader that
// commits.
TEST(RaftNetwork, AReplicaThatLostItsStoreRejoinsWithRecoverAndVotesAgainOnceCaughtUp) {
    client::NetUpOptions options;
    options.protocol = "raft";
    LiveNetwork net(options);
    ASSERT_TRUE(net.ok());
    std::optional<uint32_t> leader;
    ASSERT_TRUE(net.wait_for([&](const auto& s) { return (leader = agreed_leader(s)).has_value(); }, 15s))
        << "no leader elected";
    const uint32_t follower = (*leader + 1) % 3;
    const uint32_t other = (*leader + 2) % 3;
    {
        Load load(net.config(), net.account("alice"), net.account("bob").public_key());
        ASSERT_TRUE(load.wait_more(20, 60s));
        net.kill(follower);
        const std::string store = net.dir() + "/data/" + std::to_string(follower) + "/consensus.db";
        for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(store + suffix);
        std::ostringstream out, progress;
        auto recovered = client::net_start(net.dir(), follower, out, progress, 30000ms, bin_dir() + "/tallyd",
                                           /*recover=*/true);
        ASSERT_TRUE(recovered.ok()) << (recovered ? "" : recovered.error().message) << out.str();
        EXPECT_FALSE(wait_for_log_line(net, follower, std::regex("neither votes nor campaigns")).empty());
        EXPECT_FALSE(
            wait_for_log_line(net, follower, std::regex("has caught up: it votes again from term"), 30s).empty());
        ASSERT_TRUE(load.wait_more(20, 60s));

        net.kill(*leader);
        EXPECT_TRUE(load.wait_more(20, 60s)) << "no commit once the old leader was killed";
    }
    std::optional<uint32_t> next;
    EXPECT_TRUE(net.wait_for([&](const auto& s) { return (next = agreed_leader(s)).has_value(); }, 15s));
    EXPECT_NE(next.value_or(*leader), *leader);
    std::string last;
    EXPECT_TRUE(net.converged({follower, other}, 30s, &last)) << last;
    // Their ledgers replay from genesis: every block's entry record, transaction root and state
    // digest holds (`tally audit` under Raft, bft/raft/block_record.h).
    for (uint32_t id : {follower, other}) expect_audit_passes(net, id);
}

// A clean stop of the leader (`tally net stop`, SIGTERM) hands over first (thesis 3.10): the
// leader brings a follower up to date and tells it to campaign at once, and stops only once
// that follower leads. The transfers of a running client go on, to the new leader.
TEST(RaftNetwork, ACleanStopOfTheLeaderHandsOverToAFollowerBeforeItStops) {
    client::NetUpOptions options;
    options.protocol = "raft";
    LiveNetwork net(options);
    ASSERT_TRUE(net.ok());
    Load load(net.config(), net.account("alice"), net.account("bob").public_key());
    ASSERT_TRUE(load.wait_more(20, 60s));
    // The leader now, under load (the first one may have changed since the network started).
    std::optional<uint32_t> leader;
    ASSERT_TRUE(net.wait_for([&](const auto& s) { return (leader = agreed_leader(s)).has_value(); }, 15s))
        << "no leader elected";
    CommandRun stop = run_command(bin_dir() + "/tally net stop --node " + std::to_string(*leader) + " --dir " +
                                      net.dir(),
                                  30);
    ASSERT_EQ(stop.exit_code, 0) << stop.output;
    EXPECT_NE(stop.output.find("stopped replica " + std::to_string(*leader)), std::string::npos) << stop.output;
    EXPECT_FALSE(wait_for_log_line(net, *leader, std::regex("stops: it hands over as leader first")).empty());
    EXPECT_FALSE(wait_for_log_line(net, *leader, std::regex("handed over before it stops")).empty());
    std::optional<uint32_t> next;
    EXPECT_TRUE(net.wait_for([&](const auto& s) { return (next = agreed_leader(s)).has_value(); }, 15s));
    EXPECT_NE(next.value_or(*leader), *leader);
    EXPECT_TRUE(load.wait_more(20, 60s)) << "no commit after the hand-over";
}

}  // namespace
}  // namespace tally::integration
