// Issue 11 §2 and §5 with real processes.
//
// A replica whose consensus store is deleted, replaced by another file, or restored from a
// backup older than its ledger refuses to start, naming the file and `--recover`; started with
// --recover it rejoins, silent until it has caught up, and then starts normally again.
//
// A transfer answered nonce_too_high is not final: `tally transfer` says "not ordered, may
// still apply" (exit 4), and indeed a later copy of its bytes applies — so the user who paid
// again with the next nonce (as the old "the transfer failed", exit 1, invited) paid twice.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "client/cli.h"
#include "tests/integration/live_network.h"

namespace tally::integration {
namespace {

namespace fs = std::filesystem;

using Ran = CommandRun;

// A tallyd that wrongly starts must fail the test, not hang it.
Ran run(const std::string& command) { return run_command(command, 20); }

void copy_store(const std::string& from, const std::string& to) {
    for (const char* suffix : {"", "-wal"}) {
        std::error_code ec;
        fs::remove(to + suffix, ec);
        if (fs::exists(from + suffix)) fs::copy_file(from + suffix, to + suffix);
    }
    std::error_code ec;
    fs::remove(to + "-shm", ec);
}

void remove_store(const std::string& path) {
    for (const char* suffix : {"", "-wal", "-shm"}) {
        std::error_code ec;
        fs::remove(path + suffix, ec);
    }
}

uint64_t executed(LiveNetwork& net, uint32_t id) {
    auto s = net.status();
    return id < s.size() && s[id].up ? s[id].reply.executed() : 0;
}

TEST(Recovery, AReplicaRefusesAMissingForeignOrOlderConsensusStoreAndRejoinsWithRecover) {
    LiveNetwork net(client::NetUpOptions{}, [](node::api::NetworkConfig& c) {
        c.consensus.checkpoint_interval = 8;  // the store's ledger_seq_max runs 8 ahead
        c.consensus.watermark_window = 32;
    });
    ASSERT_TRUE(net.ok());
    const std::string store = net.dir() + "/data/3/consensus.db";
    const std::string backup = net.dir() + "/consensus-3-backup.db";
    const std::string tallyd =
        bin_dir() + "/tallyd --config " + net.dir() + "/network.json --id 3";
    {
        Load load(net.config(), net.account("alice"), net.account("bob").public_key());
        // Past the first start's ledger_seq_max (made under net up's default interval, 128).
        auto until = Clock::now() + 60s;
        while (executed(net, 3) < 140 && Clock::now() < until) std::this_thread::sleep_for(50ms);
        ASSERT_GE(executed(net, 3), 140u);
        net.kill(3);
        copy_store(store, backup);  // a backup of the store, as of now
        const uint64_t at_backup = executed(net, 0);
        net.start(3);
        // The ledger moves well past what the backup allowed it (8 ahead at most).
        until = Clock::now() + 60s;
        while (executed(net, 3) < at_backup + 40 && Clock::now() < until) std::this_thread::sleep_for(50ms);
        ASSERT_GE(executed(net, 3), at_backup + 40);
        net.kill(3);
    }

    // Its port held by another program meanwhile (this one, or another test that picked it when
    // it was free): the store is checked before the ports are bound, so each refusal below is
    // about the store, whatever holds them.
    const int squatter = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(squatter, 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(net.config().replicas[3].port);
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(squatter, reinterpret_cast<sockaddr*>(&at), sizeof(at)) == 0) (void)::listen(squatter, 1);

    // Deleted: refused, with the file and the way out named.
    remove_store(store);
    Ran missing = run(tallyd);
    EXPECT_EQ(missing.exit_code, 2) << missing.output;
    EXPECT_NE(missing.output.find(store), std::string::npos) << missing.output;
    EXPECT_NE(missing.output.find("missing"), std::string::npos) << missing.output;
    EXPECT_NE(missing.output.find("tallyd --config " + net.dir() + "/network.json --id 3 --recover"),
              std::string::npos)
        << missing.output;
    EXPECT_FALSE(fs::exists(store)) << "a refused start must not make a store";

    // Replaced by another file (the replica's own ledger): refused.
    copy_store(net.dir() + "/data/3/ledger.db", store);
    Ran foreign = run(tallyd);
    EXPECT_EQ(foreign.exit_code, 2) << foreign.output;
    EXPECT_NE(foreign.output.find("not this replica's consensus store"), std::string::npos) << foreign.output;

    // Restored from the backup, older than the ledger: refused.
    copy_store(backup, store);
    Ran older = run(tallyd);
    EXPECT_EQ(older.exit_code, 2) << older.output;
    EXPECT_NE(older.output.find("older than the ledger"), std::string::npos) << older.output;
    EXPECT_NE(older.output.find("--recover"), std::string::npos) << older.output;
    ::close(squatter);

    // --recover: the old store is set aside, the replica rejoins and catches up.
    std::ostringstream out, progress;
    auto recovered = client::net_start(net.dir(), 3, out, progress, 30000ms, bin_dir() + "/tallyd",
                                       /*recover=*/true);
    ASSERT_TRUE(recovered.ok()) << (recovered ? "" : recovered.error().message) << out.str();
    bool set_aside = false;
    for (const auto& entry : fs::directory_iterator(net.dir() + "/data/3"))
        set_aside = set_aside || entry.path().filename().string().starts_with("consensus.db.replaced-");
    EXPECT_TRUE(set_aside);
    std::string last;
    {
        Load load(net.config(), net.account("carol"), net.account("dave").public_key());
        ASSERT_TRUE(load.wait_more(20, 60s));
        EXPECT_TRUE(net.converged({0, 1, 2, 3}, 60s, &last)) << last;
    }
    // It said when it caught up.
    EXPECT_FALSE(wait_for_log_line(net, 3, std::regex("has caught up: it votes again")).empty());

    // The new store is bound: a plain restart is accepted, and the network goes on with it.
    net.kill(3);
    net.start(3);
    {
        Load load(net.config(), net.account("alice"), net.account("bob").public_key());
        ASSERT_TRUE(load.wait_more(10, 60s));
    }
    EXPECT_TRUE(net.converged({0, 1, 2, 3}, 60s, &last)) << last;
    // The recovered replica holds the whole chain, certified, like the others.
    for (uint32_t id = 0; id < 4; ++id) expect_audit_passes(net, id);
}

TEST(Answers, ATransferAnsweredNonceTooHighIsNotFailedItMayStillApplyAndPayingAgainPaysTwice) {
    LiveNetwork net;
    ASSERT_TRUE(net.ok());
    client::Client c;
    ASSERT_TRUE(c.connect(net.config()).ok());
    const auto alice = net.account("alice");
    const auto bob = net.account("bob").public_key();
    auto before = c.balance(bob, client::Consistency::kLinearizable, 10s);
    auto alice_before = c.balance(alice.public_key(), client::Consistency::kLinearizable, 10s);
    ASSERT_TRUE(before.ok() && alice_before.ok());
    const uint64_t early = alice_before->nonce + 2;  // one ahead: e.g. signed while another was in flight

    const std::string tally = bin_dir() + "/tally --dir " + net.dir();
    Ran first = run(tally + " transfer --key alice --to bob --amount 7 --json --nonce " + std::to_string(early));
    EXPECT_EQ(first.exit_code, client::kExitNotFinal) << first.output;
    EXPECT_NE(first.output.find("\"final\": false"), std::string::npos) << first.output;
    EXPECT_NE(first.output.find("not_ordered_may_still_apply"), std::string::npos) << first.output;
    EXPECT_NE(first.output.find("may still apply"), std::string::npos) << first.output;
    EXPECT_EQ(first.output.find("failed"), std::string::npos) << first.output;

    // The user pays again with the next nonce...
    Ran again = run(tally + " transfer --key alice --to bob --amount 7");
    EXPECT_EQ(again.exit_code, 0) << again.output;
    // ...and the first signed transfer is still valid: any holder of its bytes can have it
    // ordered now, and it applies. Bob got 14.
    auto replay = c.submit(ledger::make_transfer(alice, bob, 7, early), 10s);
    ASSERT_TRUE(replay.ok()) << replay.error().message;
    EXPECT_EQ(replay->result, static_cast<uint32_t>(ledger::ResultCode::kOk));
    auto after = c.balance(bob, client::Consistency::kLinearizable, 10s);
    ASSERT_TRUE(after.ok());
    EXPECT_EQ(after->balance, before->balance + 14);
}

}  // namespace
}  // namespace tally::integration
