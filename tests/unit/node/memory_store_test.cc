// The consensus store in memory (the simulator's): its image() opens again as the same store;
// the image kept at each sync-observer call is what a power loss leaves (synced writes, never
// the unsynced ones after them); an image that is not a Tally store is refused as a file would
// be; and an opened store goes through the same binding decisions as a file.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "node/store.h"
#include "node/store_binding.h"
#include "tests/unit/node/store_helpers.h"
#include "tests/unit/node/test_dir.h"

namespace tally::node {
namespace {

using namespace store_test;

std::unique_ptr<Store> open_memory(std::string_view image = {}) {
    auto store = Store::open_memory(image);
    EXPECT_TRUE(store.ok()) << store.error().message;
    return store.ok() ? std::move(store).value() : nullptr;
}

TEST(MemoryStoreTest, ANewStoreIsUnboundAndItsImageOpensAsTheSameStore) {
    auto store = open_memory();
    ASSERT_TRUE(store);
    EXPECT_TRUE(store->created());
    EXPECT_EQ(store->path(), ":memory:");
    auto unbound = store->binding();
    ASSERT_TRUE(unbound.ok());
    EXPECT_FALSE(unbound->has_value());
    ASSERT_TRUE(store->apply({put("b", "2"), put(std::string("a\0b", 3), std::string("\0", 1))}).ok());
    Store::Binding b{std::string(32, 'r'), 4242, 64, true};
    ASSERT_TRUE(store->bind(b).ok());

    auto again = open_memory(store->image());
    ASSERT_TRUE(again);
    EXPECT_FALSE(again->created());
    EXPECT_EQ(load(*again), load(*store));
    auto bound = again->binding();
    ASSERT_TRUE(bound.ok() && bound->has_value());
    EXPECT_EQ((*bound)->replica_key, b.replica_key);
    EXPECT_EQ((*bound)->ledger_seq_max, 64u);
    EXPECT_TRUE((*bound)->recovering);
    // The copy is a store of its own: writes to it leave the original as it was.
    ASSERT_TRUE(again->apply({put("c", "3")}).ok());
    EXPECT_EQ(load(*again).size(), 3u);
    EXPECT_EQ(load(*store).size(), 2u);
}

TEST(MemoryStoreTest, WhatAPowerLossLeavesHasTheSyncedWritesAndNotTheUnsyncedOnesAfterThem) {
    auto store = open_memory();
    ASSERT_TRUE(store);
    std::string durable = store->image();  // what open_memory() returns is durable
    int calls = 0;
    store->set_sync_observer([&] {
        ++calls;
        durable = store->image();
    });
    ASSERT_TRUE(store->bind(Store::Binding{std::string(32, 'r'), 1, 10, false}).ok());
    ASSERT_TRUE(store->apply({put("synced", "1")}, /*sync=*/true).ok());
    ASSERT_TRUE(store->apply({put("unsynced", "2")}, /*sync=*/false).ok());
    EXPECT_EQ(calls, 2);
    EXPECT_EQ(load(*store).size(), 2u);  // the process still reads its unsynced write

    auto after_loss = open_memory(durable);
    ASSERT_TRUE(after_loss);
    EXPECT_EQ(load(*after_loss), (Records{{"synced", "1"}}));
    ASSERT_TRUE(after_loss->binding().ok());
    EXPECT_EQ((*after_loss->binding())->ledger_seq_max, 10u);

    // A sync with nothing new to write makes the unsynced write durable; so do the binding's.
    ASSERT_TRUE(store->apply({}, /*sync=*/true).ok());
    EXPECT_EQ(calls, 3);
    EXPECT_EQ(load(*open_memory(durable)).size(), 2u);
    ASSERT_TRUE(store->set_ledger_seq_max(20).ok());
    ASSERT_TRUE(store->set_recovering(true).ok());
    EXPECT_EQ(calls, 5);
    auto last = open_memory(durable);
    ASSERT_TRUE(last);
    EXPECT_EQ((*last->binding())->ledger_seq_max, 20u);
    EXPECT_TRUE((*last->binding())->recovering);
    EXPECT_EQ(store->synced_commits(), 5u);
}

TEST(MemoryStoreTest, AnImageThatIsNotADatabaseIsCorrupt) {
    for (const std::string& garbage : {std::string("short"), std::string(4096, 'x')}) {
        auto store = Store::open_memory(garbage);
        ASSERT_FALSE(store.ok());
        EXPECT_EQ(store.error().code, "corrupt") << store.error().message;
        EXPECT_NE(store.error().message.find("not an SQLite database"), std::string::npos);
    }
}

TEST(MemoryStoreTest, AnImageOfAnotherDatabaseIsForeign) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA application_id = 1413565529; CREATE TABLE meta(k)", nullptr,
                           nullptr, nullptr),
              SQLITE_OK);  // "TALY", the ledger's mark
    sqlite3_int64 size = 0;
    unsigned char* bytes = sqlite3_serialize(db, "main", &size, 0);
    ASSERT_NE(bytes, nullptr);
    const std::string image(reinterpret_cast<const char*>(bytes), static_cast<size_t>(size));
    sqlite3_free(bytes);
    sqlite3_close(db);
    auto store = Store::open_memory(image);
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.error().code, "foreign") << store.error().message;
    EXPECT_NE(store.error().message.find("a Tally ledger"), std::string::npos);
}

// A file store's bytes are a WAL database's, which SQLite cannot open in memory as they are.
TEST(MemoryStoreTest, AFileStoresImageOpensInMemory) {
    TempDir dir;
    auto file = Store::open(dir / "consensus.db");
    ASSERT_TRUE(file.ok()) << file.error().message;
    ASSERT_TRUE((*file)->apply({put("k", "v")}).ok());
    auto store = open_memory((*file)->image());
    ASSERT_TRUE(store);
    EXPECT_EQ(load(*store), (Records{{"k", "v"}}));
    ASSERT_TRUE(store->apply({put("k2", "v2")}).ok());
    EXPECT_EQ(load(*open_memory(store->image())).size(), 2u);
}

void expect_refused(const Result<BoundStore>& bound, const std::string& why) {
    ASSERT_FALSE(bound.ok());
    EXPECT_EQ(bound.error().code, "store_refused") << bound.error().message;
    EXPECT_NE(bound.error().message.find(why), std::string::npos) << bound.error().message;
}

TEST(MemoryStoreBinding, ANewStoreBesideANewLedgerIsBoundAndStartsAgainFromItsImage) {
    auto bound = open_bound_store(open_memory(), ledger_at(0, /*created_now=*/true), false, kMargin);
    ASSERT_TRUE(bound.ok()) << bound.error().message;
    EXPECT_FALSE(bound->recovering);
    EXPECT_EQ(bound->ledger_seq_max, kMargin);
    auto b = bound->store->binding();
    ASSERT_TRUE(b.ok() && b->has_value());
    EXPECT_EQ((*b)->ledger_id, 4242);

    auto again = open_bound_store(open_memory(bound->store->image()), ledger_at(kMargin), false, kMargin);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_FALSE(again->store->created());
    EXPECT_EQ(again->ledger_seq_max, kMargin);
}

TEST(MemoryStoreBinding, AnUnboundStoreBesideAnExistingLedgerIsRefused) {
    // A new one (the power loss took the store, not the ledger).
    expect_refused(open_bound_store(open_memory(), ledger_at(5), false, kMargin), "is empty");
    // One that was never bound but holds records.
    auto unbound = open_memory();
    ASSERT_TRUE(unbound->apply({put("k", "v")}).ok());
    expect_refused(open_bound_store(open_memory(unbound->image()), ledger_at(5), false, kMargin),
                   "not bound to any ledger");
}

TEST(MemoryStoreBinding, AnotherReplicasLedgersOrAnOlderStoreIsRefused) {
    auto bound = open_bound_store(open_memory(), ledger_at(0, true), false, kMargin);
    ASSERT_TRUE(bound.ok()) << bound.error().message;
    const std::string image = bound->store->image();
    auto other_replica = ledger_at(5);
    other_replica.replica_key = std::string(32, 'o');
    expect_refused(open_bound_store(open_memory(image), other_replica, false, kMargin), "another replica");
    auto other_ledger = ledger_at(5);
    other_ledger.ledger_id = 7;
    expect_refused(open_bound_store(open_memory(image), other_ledger, false, kMargin), "another ledger.db");
    expect_refused(open_bound_store(open_memory(image), ledger_at(kMargin + 1), false, kMargin),
                   "older than the ledger");
}

TEST(MemoryStoreBinding, RecoverBindsANewStoreRecoveringAndRefusesAnOldOne) {
    auto bound = open_bound_store(open_memory(), ledger_at(5000), /*recover=*/true, kMargin);
    ASSERT_TRUE(bound.ok()) << bound.error().message;
    EXPECT_TRUE(bound->recovering);
    EXPECT_TRUE(bound->replaced.empty());
    EXPECT_EQ(bound->ledger_seq_max, 5000 + kMargin);
    // Restarted from its image before it caught up: still recovering.
    auto again = open_bound_store(open_memory(bound->store->image()), ledger_at(5000), false, kMargin);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_TRUE(again->recovering);
    // --recover is handed the old store instead of a new one: nothing to set it aside to.
    auto old = open_bound_store(open_memory(bound->store->image()), ledger_at(5000), true, kMargin);
    ASSERT_FALSE(old.ok());
    EXPECT_EQ(old.error().code, "not_new") << old.error().message;
}

}  // namespace
}  // namespace tally::node
