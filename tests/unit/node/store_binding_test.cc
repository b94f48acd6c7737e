// Which consensus store a replica may run on (issue 11 §2): a missing, empty, foreign,
// another replica's or ledger's, damaged or older store is refused with a message that names
// the file and says to start with --recover; --recover sets it aside and starts recovering.
#include "node/store_binding.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>

#include "bft/pbft/messages.h"
#include "bft/pbft/stored_records.h"
#include "tests/unit/node/store_helpers.h"
#include "tests/unit/node/test_dir.h"

namespace tally::node {
namespace {

using namespace store_test;

// A store bound by a first start beside a new ledger, then closed.
void first_start(const std::string& path) {
    auto bound = open_bound_store(path, ledger_at(0, /*created_now=*/true), false, kMargin);
    ASSERT_TRUE(bound.ok()) << bound.error().message;
    EXPECT_FALSE(bound->recovering);
    EXPECT_TRUE(bound->store->created());
}

void expect_refused(const Result<BoundStore>& bound, const std::string& path, const std::string& why) {
    ASSERT_FALSE(bound.ok());
    EXPECT_EQ(bound.error().code, "store_refused") << bound.error().message;
    EXPECT_NE(bound.error().message.find(path), std::string::npos) << bound.error().message;
    EXPECT_NE(bound.error().message.find("--recover"), std::string::npos) << bound.error().message;
    EXPECT_NE(bound.error().message.find(why), std::string::npos) << bound.error().message;
}

TEST(StoreBinding, AFirstStartMakesAStoreBoundToItsReplicaAndLedger) {
    TempDir dir;
    first_start(dir / "consensus.db");
    auto store = Store::open(dir / "consensus.db", Store::Create::kNever);
    ASSERT_TRUE(store.ok()) << store.error().message;
    auto b = (*store)->binding();
    ASSERT_TRUE(b.ok() && b->has_value());
    EXPECT_EQ((*b)->replica_key, std::string(32, 'r'));
    EXPECT_EQ((*b)->ledger_id, 4242);
    EXPECT_EQ((*b)->ledger_seq_max, kMargin);
    EXPECT_FALSE((*b)->recovering);
    store->reset();
    // And the same replica starts on it again.
    auto again = open_bound_store(dir / "consensus.db", ledger_at(kMargin), false, kMargin);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_FALSE(again->store->created());
}

TEST(StoreBinding, AMissingStoreBesideALedgerIsRefused) {
    TempDir dir;
    expect_refused(open_bound_store(dir / "consensus.db", ledger_at(0), false, kMargin),
                   dir / "consensus.db", "missing");
    EXPECT_FALSE(std::filesystem::exists(dir / "consensus.db"));  // nothing made
    expect_refused(open_bound_store(dir / "consensus.db", ledger_at(17), false, kMargin),
                   dir / "consensus.db", "at seq 17");
}

TEST(StoreBinding, AnEmptyStoreFileIsRefused) {
    TempDir dir;
    std::ofstream(dir / "consensus.db").flush();
    expect_refused(open_bound_store(dir / "consensus.db", ledger_at(5), false, kMargin),
                   dir / "consensus.db", "empty");
}

TEST(StoreBinding, AnotherProgramsDatabaseIsRefused) {
    TempDir dir;
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir / "consensus.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE kv(key BLOB PRIMARY KEY, value BLOB)", nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
    expect_refused(open_bound_store(dir / "consensus.db", ledger_at(5), false, kMargin),
                   dir / "consensus.db", "without Tally's mark");
}

TEST(StoreBinding, ALedgerIsNotAConsensusStore) {
    TempDir dir;
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir / "consensus.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA application_id = 1413565529; CREATE TABLE meta(k)", nullptr,
                           nullptr, nullptr),
              SQLITE_OK);  // "TALY", the ledger's mark
    sqlite3_close(db);
    expect_refused(open_bound_store(dir / "consensus.db", ledger_at(5), false, kMargin),
                   dir / "consensus.db", "a Tally ledger");
}

TEST(StoreBinding, AStoreOfAnotherSchemaVersionIsRefused) {
    TempDir dir;
    first_start(dir / "consensus.db");
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir / "consensus.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
    expect_refused(open_bound_store(dir / "consensus.db", ledger_at(5), false, kMargin),
                   dir / "consensus.db", "schema version 99");
}

TEST(StoreBinding, AnotherReplicasStoreIsRefused) {
    TempDir dir;
    first_start(dir / "consensus.db");
    auto other = ledger_at(5);
    other.replica_key = std::string(32, 'o');
    expect_refused(open_bound_store(dir / "consensus.db", other, false, kMargin), dir / "consensus.db",
                   "another replica");
}

TEST(StoreBinding, AStoreMadeWithAnotherLedgerIsRefused) {
    TempDir dir;
    first_start(dir / "consensus.db");
    auto other = ledger_at(0, /*created_now=*/true);  // ledger.db was deleted and made anew
    other.ledger_id = 7;
    expect_refused(open_bound_store(dir / "consensus.db", other, false, kMargin), dir / "consensus.db",
                   "another ledger.db");
}

// A store restored from a backup while the ledger went on: the ledger has passed what the
// store allowed it (the node raises ledger_seq_max, synced, before the ledger may pass it).
TEST(StoreBinding, AStoreOlderThanTheLedgerIsRefused) {
    TempDir dir;
    first_start(dir / "consensus.db");
    ASSERT_TRUE(open_bound_store(dir / "consensus.db", ledger_at(kMargin), false, kMargin).ok());
    expect_refused(open_bound_store(dir / "consensus.db", ledger_at(kMargin + 1), false, kMargin),
                   dir / "consensus.db", "older than the ledger");
    {
        auto bound = open_bound_store(dir / "consensus.db", ledger_at(kMargin), false, kMargin);
        ASSERT_TRUE(bound.ok());
        ASSERT_TRUE(bound->store->set_ledger_seq_max(1000).ok());
    }
    auto later = open_bound_store(dir / "consensus.db", ledger_at(900), false, kMargin);
    ASSERT_TRUE(later.ok()) << later.error().message;
    EXPECT_EQ(later->ledger_seq_max, 1000u);
}

TEST(StoreBinding, RecoverSetsTheOldStoreAsideAndStartsRecoveringUntilCleared) {
    TempDir dir;
    first_start(dir / "consensus.db");
    {
        auto bound = open_bound_store(dir / "consensus.db", ledger_at(5000), /*recover=*/true, kMargin);
        ASSERT_TRUE(bound.ok()) << bound.error().message;
        EXPECT_TRUE(bound->recovering);
        EXPECT_TRUE(bound->store->created());
        EXPECT_NE(bound->replaced.find("consensus.db.replaced-"), std::string::npos);
        EXPECT_TRUE(std::filesystem::exists(bound->replaced));
        EXPECT_EQ(bound->ledger_seq_max, 5000 + kMargin);
    }
    {
        // A restart before it caught up: still recovering (still silent).
        auto bound = open_bound_store(dir / "consensus.db", ledger_at(5000), false, kMargin);
        ASSERT_TRUE(bound.ok()) << bound.error().message;
        EXPECT_TRUE(bound->recovering);
        ASSERT_TRUE(bound->store->set_recovering(false).ok());
    }
    auto bound = open_bound_store(dir / "consensus.db", ledger_at(5000), false, kMargin);
    ASSERT_TRUE(bound.ok());
    EXPECT_FALSE(bound->recovering);
    // --recover with no store at all works too.
    std::filesystem::remove(dir / "consensus.db");
    bound->store.reset();
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(dir / ("consensus.db" + std::string(suffix)));
    auto fresh = open_bound_store(dir / "consensus.db", ledger_at(5000), true, kMargin);
    ASSERT_TRUE(fresh.ok()) << fresh.error().message;
    EXPECT_TRUE(fresh->replaced.empty());
}

// on_start used to skip a record it could not parse; a skipped view record or prepared
// certificate is a forgotten vote. The node now refuses such a store before on_start.
TEST(StoredRecords, ARecordThatDoesNotParseIsAnErrorNotASkip) {
    using bft::pbft::check_stored_records;
    using Records = std::vector<std::pair<std::string, std::string>>;
    EXPECT_TRUE(check_stored_records({}, 512).ok());
    EXPECT_TRUE(check_stored_records(Records{{"view", bft::pbft::be64(3) + std::string(1, 1)}}, 512).ok());
    const Records bad[] = {
        {{"view", "abc"}},                                                      // not 8/9 bytes
        {{"stable", "\xff\xff\xff"}},                                           // not a protobuf
        {{bft::pbft::slot_key(5, 0, bft::pbft::kSlotPrepared), "\xff\x01"}},    // not a proof
        {{bft::pbft::slot_key(5, 0, 'z'), ""}},                                 // unknown kind
        {{"something else", "x"}},                                              // unknown key
    };
    for (const auto& records : bad) {
        auto checked = check_stored_records(records, 512);
        ASSERT_FALSE(checked.ok()) << records.front().first;
        EXPECT_EQ(checked.error().code, "corrupt");
    }
    // A slot record whose pre-prepare is empty (or for another seq) is refused too.
    bft::pbft::pb::PreparedProof empty_proof;
    EXPECT_FALSE(check_stored_records(Records{{bft::pbft::slot_key(5, 0, bft::pbft::kSlotAccepted),
                                               empty_proof.SerializeAsString()}},
                                      512)
                     .ok());
}

// Found by fuzzing (tests/fuzz/fuzz_store.cc): a store whose slot records lie beyond 2L above its
// stable checkpoint (here: no stable record, slots at 25 and 26, L = 8) passed the check, and the
// engine then started with a slot outside (h, h + 2L], which its invariants rule out. The
// engine never writes such a store (the stable record is durable before any slot above the old
// window): the stable record was lost, or the file is another's. Refused, like any damage.
TEST(StoredRecords, ASlotBeyondTwiceTheWindowAboveTheStableCheckpointIsDamage) {
    using bft::pbft::check_stored_records;
    using Records = std::vector<std::pair<std::string, std::string>>;
    crypto::Seed seed{};
    seed[0] = 1;
    const auto primary = crypto::KeyPair::from_seed(seed);
    auto slot = [&](uint64_t seq) {
        bft::pbft::pb::PreparedProof proof;
        proof.set_pre_prepare(bft::pbft::seal_pre_prepare(primary, 0, seq, bft::pbft::batch_digest({}), {}));
        return std::make_pair(bft::pbft::slot_key(seq, 0, bft::pbft::kSlotAccepted), proof.SerializeAsString());
    };
    EXPECT_TRUE(check_stored_records(Records{slot(16)}, 8).ok());  // within h + 2L = 16
    auto beyond = check_stored_records(Records{slot(16), slot(25)}, 8);
    ASSERT_FALSE(beyond.ok());
    EXPECT_EQ(beyond.error().code, "corrupt");
    EXPECT_NE(beyond.error().message.find("2L = 16"), std::string::npos) << beyond.error().message;
    // With a stable checkpoint at 12 the same slot lies within its window (12 + 16 = 28).
    bft::pbft::pb::StableCheckpoint stable;
    stable.set_seq(12);
    stable.set_state_digest(std::string(32, 'd'));
    EXPECT_TRUE(check_stored_records(Records{slot(25), {"stable", stable.SerializeAsString()}}, 8).ok());
    EXPECT_FALSE(check_stored_records(Records{slot(29), {"stable", stable.SerializeAsString()}}, 8).ok());
}

// Found by fuzzing (tests/fuzz/fuzz_store.cc): a prepared certificate stored in a view above the
// view record passed the check, and the engine started in the recorded view holding a
// certificate of a later one, which its invariants rule out. The view record is synced before
// the replica's first vote in a view, so that store lost its view record: refused.
TEST(StoredRecords, AVoteInAViewAboveTheRecordedViewIsDamage) {
    using bft::pbft::check_stored_records;
    using Records = std::vector<std::pair<std::string, std::string>>;
    crypto::Seed seed{};
    seed[0] = 3;
    const auto primary = crypto::KeyPair::from_seed(seed);
    auto slot = [&](uint64_t view, char kind) {
        bft::pbft::pb::PreparedProof proof;
        proof.set_pre_prepare(bft::pbft::seal_pre_prepare(primary, view, 5, bft::pbft::batch_digest({}), {}));
        return std::make_pair(bft::pbft::slot_key(5, view, kind), proof.SerializeAsString());
    };
    const auto view = [](uint64_t v) { return std::make_pair(std::string("view"), bft::pbft::be64(v)); };
    EXPECT_TRUE(check_stored_records(Records{slot(2, bft::pbft::kSlotPrepared), view(2)}, 8).ok());
    EXPECT_TRUE(check_stored_records(Records{slot(0, bft::pbft::kSlotAccepted)}, 8).ok());
    for (char kind : {bft::pbft::kSlotAccepted, bft::pbft::kSlotPrepared}) {
        auto stale = check_stored_records(Records{slot(2, kind), view(1)}, 8);
        ASSERT_FALSE(stale.ok());
        EXPECT_EQ(stale.error().code, "corrupt");
        EXPECT_NE(stale.error().message.find("above the recorded view 1"), std::string::npos);
        EXPECT_FALSE(check_stored_records(Records{slot(1, kind)}, 8).ok()) << "no view record";
    }
}

}  // namespace
}  // namespace tally::node
