// The consensus store: puts and range erases apply in order, in one transaction, and what was
// applied is there, sorted bytewise, after the store is closed and opened again.
#include "node/store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "ledger/checkpointer.h"
#include "tests/unit/node/store_helpers.h"
#include "tests/unit/node/test_dir.h"

namespace tally::node {
namespace {

using namespace store_test;

bft::PersistOp erase(std::string from, std::string to) {
    return bft::PersistErase{std::move(from), std::move(to)};
}

TEST(StoreTest, PutsAreLoadedSortedByKeyAsBytes) {
    TempDir dir;
    auto store = Store::open(dir / "consensus.db");
    ASSERT_TRUE(store.ok()) << store.error().message;
    // 0xff sorts after 'a' as a byte (it would not as a signed char).
    ASSERT_TRUE((*store)->apply({put("b", "2"), put(std::string("\xff", 1), "3"), put("a", "1"),
                                 put(std::string("a\0b", 3), std::string("\0\0", 2))})
                    .ok());
    EXPECT_EQ(load(**store), (Records{{"a", "1"},
                                      {std::string("a\0b", 3), std::string("\0\0", 2)},
                                      {"b", "2"},
                                      {std::string("\xff", 1), "3"}}));
}

TEST(StoreTest, APutReplacesAndOpsApplyInOrder) {
    TempDir dir;
    auto store = Store::open(dir / "consensus.db");
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->apply({put("k", "old"), put("k", "new")}).ok());
    EXPECT_EQ(load(**store), (Records{{"k", "new"}}));
    // An erase then a put of a key in the erased range: the put wins, it comes later.
    ASSERT_TRUE((*store)->apply({erase("a", "z"), put("m", "after")}).ok());
    EXPECT_EQ(load(**store), (Records{{"m", "after"}}));
}

TEST(StoreTest, EraseRemovesExactlyTheHalfOpenRange) {
    TempDir dir;
    auto store = Store::open(dir / "consensus.db");
    ASSERT_TRUE(store.ok());
    std::vector<bft::PersistOp> ops;
    for (char c = 'a'; c <= 'f'; ++c) ops.push_back(put(std::string(1, c), "v"));
    ops.push_back(put("c0", "v"));
    ASSERT_TRUE((*store)->apply(ops).ok());
    ASSERT_TRUE((*store)->apply({erase("b", "d")}).ok());  // b, c, c0 go; d stays
    EXPECT_EQ(load(**store), (Records{{"a", "v"}, {"d", "v"}, {"e", "v"}, {"f", "v"}}));
    ASSERT_TRUE((*store)->apply({erase("e", "e")}).ok());  // an empty range erases nothing
    ASSERT_TRUE((*store)->apply({erase("z", "a")}).ok());  // so does a backwards one
    EXPECT_EQ(load(**store).size(), 4u);
    ASSERT_TRUE((*store)->apply({}).ok());
}

TEST(StoreTest, RecordsSurviveReopening) {
    TempDir dir;
    {
        auto store = Store::open(dir / "consensus.db");
        ASSERT_TRUE(store.ok());
        ASSERT_TRUE((*store)->apply({put("view", "7"), put("slot-1", "x"), put("slot-2", "y")}).ok());
        ASSERT_TRUE((*store)->apply({erase("slot-1", "slot-2")}).ok());
    }
    auto store = Store::open(dir / "consensus.db");
    ASSERT_TRUE(store.ok()) << store.error().message;
    EXPECT_EQ(load(**store), (Records{{"slot-2", "y"}, {"view", "7"}}));
}

TEST(StoreTest, UnsyncedWritesAreReadBackAndASyncWithNothingToWriteStillSyncs) {
    TempDir dir;
    {
        auto store = Store::open(dir / "consensus.db");
        ASSERT_TRUE(store.ok());
        ASSERT_TRUE((*store)->apply({put("a", "1")}, /*sync=*/false).ok());
        ASSERT_TRUE((*store)->apply({put("b", "2")}, /*sync=*/false).ok());
        EXPECT_EQ((*store)->commits(), 2u);
        EXPECT_EQ((*store)->synced_commits(), 0u);
        EXPECT_EQ(load(**store), (Records{{"a", "1"}, {"b", "2"}}));
        // Nothing new to write, but earlier writes are unsynced: it commits a marker, synced.
        ASSERT_TRUE((*store)->apply({}, /*sync=*/true).ok());
        EXPECT_EQ((*store)->synced_commits(), 1u);
        // Nothing unsynced left: an empty sync is a no-op.
        ASSERT_TRUE((*store)->apply({}, /*sync=*/true).ok());
        EXPECT_EQ((*store)->commits(), 3u);
        ASSERT_TRUE((*store)->apply({put("c", "3")}, /*sync=*/true).ok());
        EXPECT_EQ((*store)->synced_commits(), 2u);
    }
    // The marker is the store's own: the engine's records are exactly what it wrote.
    auto store = Store::open(dir / "consensus.db");
    ASSERT_TRUE(store.ok());
    EXPECT_EQ(load(**store), (Records{{"a", "1"}, {"b", "2"}, {"c", "3"}}));
}

TEST(StoreTest, AFileThatIsNotADatabaseIsAnError) {
    TempDir dir;
    std::ofstream(dir / "consensus.db") << std::string(4096, 'x');
    auto store = Store::open(dir / "consensus.db");
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.error().code, "corrupt");
    EXPECT_NE(store.error().message.find("consensus.db"), std::string::npos);
}

TEST(StoreTest, ASecondStoreOnTheSameFileIsRefused) {
    // Two replicas on one data folder would contradict each other: the file is locked.
    TempDir dir;
    auto first = Store::open(dir / "consensus.db");
    ASSERT_TRUE(first.ok());
    auto second = Store::open(dir / "consensus.db");
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().code, "io");
    EXPECT_NE(second.error().message.find("another tallyd"), std::string::npos)
        << second.error().message;
    // The lock goes with the store: once it is closed, the file opens again.
    (*first).reset();
    auto third = Store::open(dir / "consensus.db");
    EXPECT_TRUE(third.ok()) << third.error().message;
}

// The WAL's checkpoints run on a thread of their own (ledger/checkpointer.h, WalCheckpoints),
// not inside a commit on the consensus thread, and the WAL still starts over after each one
// instead of growing with the store. The writer waits for each checkpoint it asked for before
// its next commit, so that what is asserted follows from page counts, not from how fast the
// checkpointer's thread runs beside it (as in the ledger's LedgerDurability test).
TEST(StoreTest, ItsWalIsCheckpointedOffTheCommittingThreadAndStartsOver) {
    TempDir dir;
    const std::string path = dir / "consensus.db";
    {
        auto store = Store::open(path);
        ASSERT_TRUE(store.ok()) << store.error().message;
        const auto wait_for_checkpointer = [&] {
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
            while ((*store)->checkpoints().checkpointer_busy && std::chrono::steady_clock::now() < deadline)
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            ASSERT_FALSE((*store)->checkpoints().checkpointer_busy) << "a checkpoint ran for a minute";
        };
        uintmax_t wal_max = 0;
        const std::string value(3000, 'v');  // a page or so a commit: ~5,000 pages in all
        for (int i = 0; i < 3000; ++i) {
            ASSERT_TRUE((*store)->apply({put("k" + std::to_string(i % 300), value + std::to_string(i))},
                                        /*sync=*/i % 4 == 0)
                            .ok());
            std::error_code ec;
            wal_max = std::max<uintmax_t>(wal_max, std::filesystem::file_size(path + "-wal", ec));
            ASSERT_NO_FATAL_FAILURE(wait_for_checkpointer());
        }
        // A checkpoint every 1,000 pages of 4 KiB; unchecked, the WAL would be ~20 MB.
        EXPECT_LT(wal_max, 8u << 20) << "the WAL grew: its checkpoints did not complete";
        const auto runs = (*store)->checkpoints();
        EXPECT_EQ(runs.checkpointer_failure, "");
        EXPECT_GE(runs.on_checkpointer, 3u);
        EXPECT_EQ(runs.on_connection, 0u) << "the checkpointer copied it all: nothing was left to finish";
    }
    auto reopened = Store::open(path, Store::Create::kNever);
    ASSERT_TRUE(reopened.ok()) << reopened.error().message;
    const Records records = load(**reopened);
    ASSERT_EQ(records.size(), 300u);
    // Each key holds its last write: "k0" was last written at 2,700, "k99" (last bytewise) at 2,799.
    EXPECT_EQ(records.front().first, "k0");
    EXPECT_EQ(records.front().second.substr(3000), "2700");
    EXPECT_EQ(records.back().first, "k99");
    EXPECT_EQ(records.back().second.substr(3000), "2799");
}

// Replicas write nearly the same pages per batch, so unstaggered they would all copy their
// WALs in the same batch and their synced commits would wait on the disk together
// (WalCheckpoints::stagger). Replica 2 of 4 asks for its first checkpoint half of kPages later
// than replica 0; after that the WAL starts over and stays as short as an unstaggered one's.
TEST(StoreTest, ItsFirstWalCheckpointIsStaggeredByItsReplicaIndex) {
    constexpr uintmax_t kFrame = 24 + 4096;  // a WAL frame: its header and one page
    const auto wal_when_first_asked = [](const std::string& path, uint32_t index, uintmax_t* wal_max) {
        auto store = Store::open(path);
        EXPECT_TRUE(store.ok()) << store.error().message;
        if (!store.ok()) return uintmax_t{0};
        (*store)->stagger(index, 4);
        uintmax_t first = 0;
        const std::string value(3000, 'v');
        for (int i = 0; i < 3000; ++i) {
            EXPECT_TRUE((*store)->apply({put("k" + std::to_string(i % 300), value + std::to_string(i))},
                                        /*sync=*/i % 4 == 0)
                            .ok());
            std::error_code ec;
            const uintmax_t wal = std::filesystem::file_size(path + "-wal", ec);
            *wal_max = std::max(*wal_max, wal);
            if (first == 0 && (*store)->checkpoints().on_checkpointer + (*store)->checkpoints().checkpointer_busy > 0)
                first = wal;
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
            while ((*store)->checkpoints().checkpointer_busy && std::chrono::steady_clock::now() < deadline)
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        EXPECT_GE((*store)->checkpoints().on_checkpointer, 3u);
        return first;
    };
    TempDir dir;
    uintmax_t wal_max0 = 0, wal_max2 = 0;
    const uintmax_t first0 = wal_when_first_asked(dir / "r0.db", 0, &wal_max0);
    const uintmax_t first2 = wal_when_first_asked(dir / "r2.db", 2, &wal_max2);
    const uintmax_t pages = ledger::WalCheckpoints::kPages;
    EXPECT_GE(first0, pages * kFrame);
    EXPECT_LT(first0, (pages + pages / 4) * kFrame) << "replica 0 is not delayed";
    EXPECT_GE(first2, (pages + pages / 2) * kFrame) << "replica 2 asked before kPages * 2 / 4 more pages";
    EXPECT_LT(wal_max2, 8u << 20) << "after the first checkpoint the WAL did not start over";
}

// A store in memory has no WAL and no checkpointer.
TEST(StoreTest, AStoreInMemoryHasNoCheckpoints) {
    auto store = Store::open_memory();
    ASSERT_TRUE(store.ok());
    for (int i = 0; i < 200; ++i) ASSERT_TRUE((*store)->apply({put("k", std::string(3000, 'v'))}).ok());
    const auto runs = (*store)->checkpoints();
    EXPECT_EQ(runs.on_checkpointer + runs.on_connection, 0u);
}

TEST(StoreTest, AnUnwritablePathIsAnError) {
    TempDir dir;
    auto store = Store::open(dir / "no/such/folder/consensus.db");
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.error().code, "io");
}

}  // namespace
}  // namespace tally::node
