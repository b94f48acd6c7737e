// PBFT in full, with real processes: the primary killed under load (a view change, and the
// network keeps committing; restarted, it catches up to the same digest), and a replica down
// while thousands of transfers commit and the network moves past its water marks (it comes
// back through state transfer).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <regex>

#include "client/bench.h"
#include "tests/integration/live_network.h"

namespace tally::integration {
namespace {

TEST(Faults, KillingThePrimaryUnderLoadMovesTheNetworkToANewViewAndItKeepsCommitting) {
    LiveNetwork net(client::NetUpOptions{}, [](node::api::NetworkConfig& c) {
        c.consensus.view_change_timeout_ticks = 50;  // 0.5 s at 10 ms ticks: a short test
    });
    ASSERT_TRUE(net.ok());
    Load alice(net.config(), net.account("alice"), net.account("bob").public_key());
    Load carol(net.config(), net.account("carol"), net.account("dave").public_key());
    ASSERT_TRUE(alice.wait_more(20, 30s)) << "no commits before the fault";

    net.kill(0);  // the primary of view 0
    auto killed = Clock::now();
    ASSERT_TRUE(alice.wait_more(20, 60s)) << "no commits after the primary was killed";
    auto recovered = alice.last_commit();
    std::cout << "[ measured ] from killing the primary to the first commit after it: "
              << std::chrono::duration_cast<std::chrono::milliseconds>(recovered - killed).count() << " ms\n";

    EXPECT_TRUE(net.wait_for(
        [](const auto& s) {
            for (uint32_t id = 1; id < 4; ++id)
                if (!s[id].up || s[id].reply.view() < 1 || s[id].reply.view_changing()) return false;
            return true;
        },
        30s))
        << "the live replicas did not all enter a new view";

    // The old primary restarts from its SQLite state and catches up with the others.
    net.start(0);
    ASSERT_TRUE(alice.wait_more(20, 60s));
    alice.stop();
    carol.stop();
    expect_linearizable(net.config(), {&alice, &carol});
    std::string last;
    EXPECT_TRUE(net.converged({0, 1, 2, 3}, 60s, &last)) << "executed/digest per replica: " << last;

    // Money moved exactly as acknowledged: bob got one unit per committed transfer from alice.
    client::Client c;
    ASSERT_TRUE(c.connect(net.config()));
    auto bob = c.balance(net.account("bob").public_key());
    ASSERT_TRUE(bob.ok());
    EXPECT_EQ(bob->balance, client::kGenesisAccountBalance + alice.amount_moved());
}

TEST(Faults, AReplicaDownWhileThousandsOfTransfersCommitCatchesUpByStateTransfer) {
    LiveNetwork net(client::NetUpOptions{}, [](node::api::NetworkConfig& c) {
        c.consensus.checkpoint_interval = 8;  // small, so the transfers below leave replica 3
        c.consensus.watermark_window = 32;    // behind every peer's garbage-collected log
        c.consensus.snapshot_chunk_bytes = 4096;  // ~60 records a piece: the ledger comes in dozens
    });
    ASSERT_TRUE(net.ok());
    net.kill(3);

    // Thousands of transfers while it is down: 32 closed-loop clients, each with one transfer
    // in flight over one pipelined Client (client/bench.h), until 2,000 have committed.
    client::BenchOptions load;
    load.clients = 32;
    load.warmup_s = 0;
    load.duration_s = 300;  // a deadline; the run ends at stop_after
    load.stop_after = 2000;
    std::ostringstream progress;
    const auto load_began = Clock::now();
    auto ran = client::run_bench(net.config(), net.account("faucet"), load, progress);
    ASSERT_TRUE(ran.ok()) << ran.error().message << "\n" << progress.str();
    ASSERT_GE(ran->committed, 2000u) << progress.str();
    std::cout << "[ measured ] " << ran->committed << " transfers committed with replica 3 down in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - load_began).count()
              << " ms (" << static_cast<uint64_t>(ran->tps) << "/s after funding)\n";

    auto before = net.status();
    ASSERT_FALSE(before.empty());
    ASSERT_TRUE(before[0].up);
    ASSERT_GT(before[0].reply.stable_checkpoint(), 64u) << "the network should be far ahead";

    net.start(3);
    std::string last;
    const auto restarted = Clock::now();
    EXPECT_TRUE(net.converged({0, 1, 2, 3}, 60s, &last)) << "executed/digest per replica: " << last;
    std::cout << "[ measured ] replica 3 caught up " << before[0].reply.executed() << " sequence numbers in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - restarted).count()
              << " ms\n";
    // Through a snapshot, not batch by batch: the peers' logs no longer hold what it missed.
    const auto installed =
        wait_for_log_line(net, 3, std::regex(R"(installed the ledger at seq \d+ \((\d+) transaction records\))"));
    ASSERT_FALSE(installed.empty()) << "replica 3 did not transfer state";
    // The history came along, in many pieces of 4 KiB (~60 records each).
    EXPECT_GE(std::stoull(installed[1]), 1000u) << installed[0];

    // And it takes part again: more transfers, all four still agree.
    {
        Load a(net.config(), net.account("alice"), net.account("bob").public_key());
        ASSERT_TRUE(a.wait_more(20, 60s));
    }
    EXPECT_TRUE(net.converged({0, 1, 2, 3}, 60s, &last)) << "executed/digest per replica: " << last;

    // Every replica holds the whole chain, replica 3 too: after the snapshot it fetched the
    // blocks between its own last one and the snapshot's, with their commit certificates
    // (backfill), and `tally audit` checks each data folder offline.
    for (uint32_t id = 0; id < 4; ++id) expect_audit_passes(net, id, 60s);

    // And it names the first bad block, with exit code 1, when the chain is not whole: a copy
    // of replica 3's folder with a block taken out.
    const std::string copy = net.dir() + "/audit-copy";
    std::filesystem::create_directories(copy);
    {
        // A consistent copy through SQLite's backup (the replica is running on the original).
        sqlite3* from = nullptr;
        sqlite3* to = nullptr;
        ASSERT_EQ(sqlite3_open_v2((net.config().replicas[3].data_dir + "/ledger.db").c_str(), &from,
                                  SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
        ASSERT_EQ(sqlite3_open((copy + "/ledger.db").c_str(), &to), SQLITE_OK);
        sqlite3_backup* backup = sqlite3_backup_init(to, "main", from, "main");
        ASSERT_NE(backup, nullptr);
        EXPECT_EQ(sqlite3_backup_step(backup, -1), SQLITE_DONE);
        sqlite3_backup_finish(backup);
        EXPECT_EQ(sqlite3_exec(to, "DELETE FROM blocks WHERE height = 5", nullptr, nullptr, nullptr), SQLITE_OK);
        sqlite3_close(to);
        sqlite3_close(from);
    }
    const CommandRun gap = run_command(bin_dir() + "/tally audit --dir " + net.dir() + " --data " + copy);
    EXPECT_EQ(gap.exit_code, 1) << gap.output;
    EXPECT_NE(gap.output.find("FAILED: block 5 is missing"), std::string::npos) << gap.output;
}

// A snapshot lives in a replica's memory: when every peer has restarted since the last stable
// checkpoint, none holds it, and a replica that was down needs exactly that state. Each peer
// says so at once (not_held), and the returning replica executes the blocks up to the
// checkpoint from their commit certificates instead, which every replica keeps on disk. (The
// simulator found this with power losses: seeds 3407 and 4004787 stalled for ever.)
TEST(Faults, AReplicaBehindACheckpointWhoseSnapshotNoPeerHoldsAnyMoreCatchesUpByCertifiedBlocks) {
    LiveNetwork net(client::NetUpOptions{}, [](node::api::NetworkConfig& c) {
        c.consensus.checkpoint_interval = 8;
        c.consensus.watermark_window = 32;
    });
    ASSERT_TRUE(net.ok());
    net.kill(3);
    {
        Load a(net.config(), net.account("alice"), net.account("bob").public_key());
        ASSERT_TRUE(a.wait_more(30, 60s));
    }
    std::string last;
    ASSERT_TRUE(net.converged({0, 1, 2}, 30s, &last)) << last;
    // A ledger that stopped exactly at a checkpoint serves it again from the start: one more
    // transfer, so that the peers stop between two.
    const std::string tally = bin_dir() + "/tally --dir " + net.dir();
    if (net.status()[0].reply.executed() % 8 == 0) {
        const CommandRun one = run_command(tally + " transfer --key carol --to dave --amount 1");
        ASSERT_EQ(one.exit_code, 0) << one.output;
        ASSERT_TRUE(net.converged({0, 1, 2}, 30s, &last)) << last;
    }
    const auto before = net.status();
    ASSERT_GE(before[0].reply.stable_checkpoint(), 8u);
    ASSERT_NE(before[0].reply.executed() % 8, 0u);

    for (uint32_t id = 0; id < 3; ++id) net.kill(id);
    for (uint32_t id = 0; id < 3; ++id) net.start(id);
    net.start(3);
    EXPECT_TRUE(net.converged({0, 1, 2, 3}, 60s, &last)) << "executed/digest per replica: " << last;
    const auto reached = wait_for_log_line(
        net, 3, std::regex(R"(reached checkpoint (\d+) by executing (\d+) certified blocks)"));
    ASSERT_FALSE(reached.empty()) << "replica 3 did not catch up by certified blocks";
    EXPECT_EQ(std::stoull(reached[1]), before[0].reply.stable_checkpoint()) << reached[0];
    EXPECT_GT(std::stoull(reached[2]), 0u) << reached[0];

    // It takes part again, and its chain is whole: every block it executed came with its
    // certificate, kept with it.
    {
        Load a(net.config(), net.account("alice"), net.account("bob").public_key());
        ASSERT_TRUE(a.wait_more(10, 60s));
    }
    EXPECT_TRUE(net.converged({0, 1, 2, 3}, 60s, &last)) << "executed/digest per replica: " << last;
    expect_audit_passes(net, 3, 60s);
}

// Replica 0 lies in the snapshots it serves (`tallyd --traitor lying-snapshot`: balances, a
// repeated record id or a forged block header, one lie per checkpoint), and the checkpoint
// proof names it first: the returning replica finds its pieces do not check out, counts it
// (net status: detected bad_snapshot) and gets the state from another peer. The traitor also
// races forged pieces for every cursor the returning replica will ask the others: they are
// dropped unread (rejected unasked_snapshot) and blame nobody.
TEST(Faults, AReplicaRefusesALyingPeersSnapshotAndCatchesUpFromAnother) {
    client::NetUpOptions options;
    options.traitors = {"0:lying-snapshot"};
    LiveNetwork net(options, [](node::api::NetworkConfig& c) {
        c.consensus.checkpoint_interval = 8;
        c.consensus.watermark_window = 32;
        c.consensus.snapshot_chunk_bytes = 4096;
    });
    ASSERT_TRUE(net.ok());
    net.kill(3);
    client::BenchOptions load;
    load.clients = 32;
    load.warmup_s = 0;
    load.duration_s = 300;
    load.stop_after = 600;
    load.breakdown = true;
    std::ostringstream progress;
    auto ran = client::run_bench(net.config(), net.account("faucet"), load, progress);
    ASSERT_TRUE(ran.ok()) << ran.error().message << "\n" << progress.str();
    // The breakdown (BenchOptions::breakdown): PBFT's three phases, sampled at the three live
    // replicas and at none from replica 3, which is down.
    ASSERT_TRUE(ran->breakdown.has_value());
    ASSERT_EQ(ran->breakdown->rows.size(), 3u);
    EXPECT_EQ(ran->breakdown->rows.front().from, "pre-prepare");
    for (const auto& row : ran->breakdown->rows) {
        ASSERT_EQ(row.replicas.size(), 4u);
        for (uint32_t id = 0; id < 3; ++id) EXPECT_GT(row.replicas[id].n, 0u) << row.from << " at " << id;
        EXPECT_EQ(row.replicas[3].n, 0u);
        EXPECT_LE(row.all.p50_ms, row.all.p99_ms);
    }
    auto before = net.status();
    ASSERT_FALSE(before.empty());
    ASSERT_GT(before[1].reply.stable_checkpoint(), 40u) << "the network should be far ahead";

    net.start(3);
    std::string last;
    EXPECT_TRUE(net.converged({1, 2, 3}, 60s, &last)) << "executed/digest per replica: " << last;
    auto status = net.status();
    ASSERT_EQ(status.size(), 4u);
    uint64_t refused = 0;
    for (const auto& d : status[3].reply.detected())
        if (d.kind() == "bad_snapshot") refused += d.count();
    EXPECT_GE(refused, 1u) << "replica 3 did not detect the lying snapshot";
    uint64_t raced = 0;
    for (const auto& r : status[3].reply.rejected())
        if (r.kind() == "unasked_snapshot") raced += r.count();
    EXPECT_GE(raced, 1u) << "the traitor's raced pieces did not reach replica 3 while it fetched";
    std::cout << "[ measured ] replica 3 refused " << refused << " lying pieces and dropped " << raced
              << " raced ones\n";
    // The honest replicas hold the whole chain, replica 3 too: it asked the traitor first for
    // the blocks below the snapshot, refused its forged block (bad_blocks) and took them from
    // another peer.
    for (uint32_t id = 1; id < 4; ++id) expect_audit_passes(net, id, 60s);
    uint64_t bad_blocks = 0;
    const auto after = net.status();
    ASSERT_EQ(after.size(), 4u);
    for (const auto& d : after[3].reply.detected())
        if (d.kind() == "bad_blocks") bad_blocks += d.count();
    EXPECT_GE(bad_blocks, 1u) << "replica 3 did not refuse the traitor's forged block";
    std::cout << "[ measured ] replica 3 refused " << bad_blocks << " forged blocks\n";
}

}  // namespace
}  // namespace tally::integration

namespace tally::integration {
namespace {

// A query the client retransmits after it executed is answered from the replicas' reply
// cache, never ordered and executed again (which would answer at another seq, unlike the
// accepted reply). A 1 ms retransmit interval makes every read retransmit many times.
TEST(Faults, RetransmittedQueriesAreAnsweredOnceAndNeverDisagree) {
    LiveNetwork net;
    ASSERT_TRUE(net.ok());
    client::ClientOptions options;
    options.retransmit_interval = client::Duration{1};
    client::Client c(options);
    ASSERT_TRUE(c.connect(net.config()));
    auto bob = net.account("bob").public_key();
    for (int i = 0; i < 20; ++i) {
        auto r = c.balance(bob, client::Consistency::kLinearizable);
        ASSERT_TRUE(r.ok()) << r.error().message;
        EXPECT_EQ(r->balance, client::kGenesisAccountBalance);
    }
    EXPECT_GT(c.retransmits(), 0u) << "the test must make the client retransmit";
    // Late replies are still compared with the accepted one (client/reply_quorum.h).
    c.poll(client::Duration{300});
    EXPECT_EQ(c.counters().rejected(), 0u) << "an honest replica answered a query twice, differently";
}

}  // namespace
}  // namespace tally::integration
