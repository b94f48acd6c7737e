// A power loss of every replica of a real network at once (issue 11, section 1). SIGKILL keeps
// what a process wrote (the OS has it) and dropping the page cache does not take back what
// SQLite wrote either, so neither shows a ledger losing its unsynced tail. Instead each tallyd
// keeps a copy of its ledger at every moment the ledger became durable
// (TALLY_TEST_LEDGER_SYNC_COPIES); after killing every replica the test puts each ledger
// back to its copy (none: the ledger had never synced, so it is gone) and keeps the consensus
// stores as they are — one of the states a power loss can leave, since the OS may write back
// unsynced pages of one file and not of another. Every transfer a client saw acknowledged
// must still be in every replica's ledger, and the network must go on.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "ledger/state.h"
#include "tests/integration/live_network.h"

namespace tally::integration {
namespace {

namespace fs = std::filesystem;

// Puts replica `id`'s ledger back to the copy taken at its last sync.
void restore_last_synced_ledger(const std::string& data_dir, const std::string& copies) {
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(data_dir + "/ledger.db" + suffix);
    for (const char* suffix : {"", "-wal"}) {
        const std::string copy = copies + "/ledger.db" + suffix;
        if (fs::exists(copy)) fs::copy_file(copy, data_dir + "/ledger.db" + suffix);
    }
}

TEST(PowerLoss, EveryReplicaLosingPowerAtOnceKeepsEveryAcknowledgedTransferAndGoesOn) {
    char pattern[] = "/tmp/tally-synced-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    const std::string copies = pattern;
    ::setenv("TALLY_TEST_LEDGER_SYNC_COPIES", copies.c_str(), 1);
    struct Unset {
        std::string dir;
        ~Unset() {
            ::unsetenv("TALLY_TEST_LEDGER_SYNC_COPIES");
            if (!::testing::Test::HasFailure()) fs::remove_all(dir);
        }
    } unset{copies};

    LiveNetwork net(client::NetUpOptions{}, [](node::api::NetworkConfig& c) {
        c.consensus.checkpoint_interval = 8;  // several checkpoints in a short run
        c.consensus.watermark_window = 32;
    });
    ASSERT_TRUE(net.ok());
    const auto alice = net.account("alice");
    const auto bob = net.account("bob").public_key();
    std::vector<client::Operation> acknowledged;
    {
        Load load(net.config(), alice, bob);
        ASSERT_TRUE(load.wait_more(120, 60s)) << "no commits";
        load.stop();
        for (const auto& op : load.history())
            if (op.is_transfer && op.returned && op.result == ledger::ResultCode::kOk) acknowledged.push_back(op);
    }
    ASSERT_GE(acknowledged.size(), 120u);
    auto before = net.status();
    ASSERT_EQ(before.size(), 4u);
    ASSERT_GE(before[0].reply.stable_checkpoint(), 16u) << "checkpoints should have become stable";

    // The power goes: every replica at once.
    for (uint32_t id = 0; id < 4; ++id) net.kill(id);
    for (uint32_t id = 0; id < 4; ++id)
        restore_last_synced_ledger(net.config().replicas[id].data_dir, copies + "/replica-" + std::to_string(id));
    for (uint32_t id = 0; id < 4; ++id) net.start(id);

    // The network goes on: new transfers commit, and the replicas agree.
    {
        Load load(net.config(), net.account("carol"), net.account("dave").public_key());
        EXPECT_TRUE(load.wait_more(20, 60s)) << "the network did not commit after the power came back";
    }
    std::string last;
    EXPECT_TRUE(net.converged({0, 1, 2, 3}, 60s, &last)) << "executed/digest per replica: " << last;
    // And every replica holds the whole chain, certified: those that came back by state
    // transfer fetched the blocks below the snapshot (backfill).
    for (uint32_t id = 0; id < 4; ++id) expect_audit_passes(net, id);

    // Every acknowledged transfer is in every replica's ledger.
    std::ostringstream down;
    ASSERT_TRUE(client::net_down(net.dir(), down).ok()) << down.str();
    for (uint32_t id = 0; id < 4; ++id) {
        uint64_t last_seq = 0;
        const long missing = missing_acknowledged(net.config().replicas[id].data_dir + "/ledger.db",
                                                  net.config().genesis, alice, bob, acknowledged, &last_seq);
        EXPECT_EQ(missing, 0) << "replica " << id << " lost " << missing << " of " << acknowledged.size()
                              << " acknowledged transfers (ledger at seq " << last_seq << ")";
    }
}

}  // namespace
}  // namespace tally::integration
