// State transfer that installs nothing unchecked (issue 11, section 3), the ledger's half:
// the snapshot's whole block header is bound to the block hash 2f+1 replicas signed; a piece
// is checked whole before any of it is kept (a failed piece leaves nothing behind, so the next
// peer's answer to the same cursor is judged alone); a record id recorded twice is the
// serving peer's lie, not a local I/O error; pieces from replicas that committed the block in
// different views compare equal. And the ledger's durability (section 1): sync() and
// synced_seq(), and an image that a power loss in the simulator falls back to.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>
#include <set>

#include "ledger/ledger.pb.h"
#include "ledger/state.h"
#include "ledger_test_util.h"

namespace tally::ledger {
namespace {

using testing::genesis;
using testing::key;
using testing::open_memory;

// Six accounts, 12 blocks of transfers among them: records in every block.
std::unique_ptr<State> busy_ledger() {
    auto state = open_memory(genesis(6, 1000));
    std::vector<uint64_t> nonce(7, 0);
    for (uint64_t seq = 1; seq <= 12; ++seq) {
        std::vector<std::string> txs;
        for (uint8_t from = 1; from <= 6; ++from) {
            const uint8_t to = static_cast<uint8_t>(from % 6 + 1);
            txs.push_back(make_transfer(key(from), key(to).public_key(), seq, ++nonce[from]));
        }
        auto applied = state->apply_block(seq, seq % 3, txs);
        EXPECT_TRUE(applied.ok());
    }
    return state;
}

// The honest pieces of the snapshot at `point`, in order (fetched by an import that keeps them).
std::vector<pb::SnapshotChunk> honest_pieces(const State& source, const SnapshotPoint& point,
                                             size_t chunk_bytes) {
    auto scratch = open_memory(genesis(1, 1));
    SnapshotImport import(*scratch, point.last_block.seq, point.last_block.hash(),
                          SnapshotImport::Since::kGenesis);
    std::vector<pb::SnapshotChunk> pieces;
    while (!import.complete()) {
        auto bytes = source.snapshot_chunk(point, import.next_cursor(), chunk_bytes);
        EXPECT_TRUE(bytes.ok());
        if (!bytes) break;
        pieces.emplace_back().ParseFromString(*bytes);
        Status added = import.add(*bytes);
        EXPECT_TRUE(added.ok()) << added.error().message;
        if (!added) break;
    }
    return pieces;
}

Status import_all(State& target, const SnapshotPoint& point, const std::vector<pb::SnapshotChunk>& pieces) {
    SnapshotImport import(target, point.last_block.seq, point.last_block.hash(),
                          SnapshotImport::Since::kGenesis);
    for (const auto& piece : pieces) {
        Status added = import.add(piece.SerializeAsString());
        if (!added) return added;
    }
    if (!import.complete()) return make_error("incomplete", "pieces ran out");
    return import.install();
}

// The index of a piece whose records span at least two blocks.
std::optional<size_t> piece_with_two_blocks(const std::vector<pb::SnapshotChunk>& pieces) {
    for (size_t i = 0; i < pieces.size(); ++i) {
        const auto& r = pieces[i].records();
        if (r.size() >= 2 && r[r.size() - 1].seq() > r[0].seq()) return i;
    }
    return std::nullopt;
}

// The first record's id again, in the piece's last block, sorted back into (seq, id) order.
void repeat_first_id(pb::SnapshotChunk& piece) {
    auto* records = piece.mutable_records();
    records->Mutable(records->size() - 1)->set_id(records->Get(0).id());
    std::sort(records->begin(), records->end(), [](const pb::TxRecord& a, const pb::TxRecord& b) {
        return a.seq() != b.seq() ? a.seq() < b.seq() : a.id() < b.id();
    });
}

TEST(SnapshotTrust, APieceThatRecordsOneIdTwiceIsTheServersLieAndLeavesNothingBehind) {
    auto source = busy_ledger();
    const SnapshotPoint point = source->snapshot_point();
    const auto honest = honest_pieces(*source, point, 600);  // 9 records a piece, 6 a block
    auto index = piece_with_two_blocks(honest);
    ASSERT_TRUE(index.has_value()) << "no piece spans two blocks";

    auto target = open_memory(genesis(2, 5));
    SnapshotImport import(*target, point.last_block.seq, point.last_block.hash(),
                          SnapshotImport::Since::kGenesis);
    for (size_t i = 0; i < *index; ++i) ASSERT_TRUE(import.add(honest[i].SerializeAsString()).ok());
    const std::string cursor = import.next_cursor();
    const uint64_t staged = import.records();

    auto lie = honest[*index];
    repeat_first_id(lie);
    Status refused = import.add(lie.SerializeAsString());
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "malformed") << refused.error().message;  // not "io"
    EXPECT_EQ(import.next_cursor(), cursor);
    EXPECT_EQ(import.records(), staged);

    // The honest answer to the same cursor goes in, and so does the rest.
    for (size_t i = *index; i < honest.size(); ++i) {
        Status added = import.add(honest[i].SerializeAsString());
        ASSERT_TRUE(added.ok()) << "piece " << i << ": " << added.error().message;
    }
    ASSERT_TRUE(import.complete());
    ASSERT_TRUE(import.install().ok());
    EXPECT_EQ(target->state_digest(), source->state_digest());
    EXPECT_EQ(target->last_block().hash(), source->last_block().hash());
}

TEST(SnapshotTrust, ARecordIdRepeatingOneOfAnEarlierPieceIsTheServersLie) {
    auto source = busy_ledger();
    const SnapshotPoint point = source->snapshot_point();
    const auto honest = honest_pieces(*source, point, 400);
    // A later piece repeats the id of a record staged from an earlier piece, in its own last
    // block and in order: only the staging table's key sees it.
    size_t later = 0;
    for (size_t i = 1; i < honest.size(); ++i)
        if (honest[i].records_size() >= 2 && honest[i - 1].records_size() >= 1) later = i;
    ASSERT_GT(later, 0u);
    auto lie = honest[later];
    auto* records = lie.mutable_records();
    records->Mutable(records->size() - 1)->set_id(honest[later - 1].records(0).id());
    std::sort(records->begin(), records->end(), [](const pb::TxRecord& a, const pb::TxRecord& b) {
        return a.seq() != b.seq() ? a.seq() < b.seq() : a.id() < b.id();
    });

    auto target = open_memory(genesis(2, 5));
    SnapshotImport import(*target, point.last_block.seq, point.last_block.hash(),
                          SnapshotImport::Since::kGenesis);
    for (size_t i = 0; i < later; ++i) ASSERT_TRUE(import.add(honest[i].SerializeAsString()).ok());
    Status refused = import.add(lie.SerializeAsString());
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "malformed") << refused.error().message;
    for (size_t i = later; i < honest.size(); ++i) ASSERT_TRUE(import.add(honest[i].SerializeAsString()).ok());
    ASSERT_TRUE(import.install().ok());
    EXPECT_EQ(target->state_digest(), source->state_digest());
}

TEST(SnapshotTrust, EveryFieldOfTheSnapshotsBlockHeaderIsBoundToTheSignedBlockHash) {
    auto source = busy_ledger();
    const SnapshotPoint point = source->snapshot_point();
    const auto honest = honest_pieces(*source, point, 400);
    using Forge = void (*)(pb::BlockRecord&);
    const std::pair<const char*, Forge> forgeries[] = {
        {"prev_hash", [](pb::BlockRecord& b) { b.set_prev_hash(std::string(32, '\x01')); }},
        {"tx_root", [](pb::BlockRecord& b) { b.set_tx_root(std::string(32, '\x02')); }},
        {"tx_count", [](pb::BlockRecord& b) { b.set_tx_count(b.tx_count() + 1); }},
    };
    for (const auto& [field, forge] : forgeries) {
        auto lie = honest;
        for (auto& piece : lie) forge(*piece.mutable_last_block());
        auto target = open_memory(genesis(2, 5));
        const auto before = target->last_block().hash();
        Status refused = import_all(*target, point, lie);
        ASSERT_FALSE(refused.ok()) << "a forged " << field << " was installed";
        EXPECT_EQ(refused.error().code, "digest_mismatch") << field << ": " << refused.error().message;
        EXPECT_EQ(target->last_block().hash(), before) << field;
    }
}

TEST(SnapshotTrust, PiecesFromReplicasThatCommittedTheBlockInDifferentViewsCompareEqual) {
    auto source = busy_ledger();
    const SnapshotPoint point = source->snapshot_point();
    auto pieces = honest_pieces(*source, point, 400);
    ASSERT_GE(pieces.size(), 3u);
    // After the first piece, another peer serves: it committed the block in another view.
    for (size_t i = 1; i < pieces.size(); ++i)
        pieces[i].mutable_last_block()->set_view(pieces[0].last_block().view() + 1);
    auto target = open_memory(genesis(2, 5));
    Status imported = import_all(*target, point, pieces);
    ASSERT_TRUE(imported.ok()) << imported.error().message;
    EXPECT_EQ(target->state_digest(), source->state_digest());
}

TEST(LedgerDurability, SyncMakesEveryAppliedBlockDurableAndTellsTheObserver) {
    testing::TempDir dir;
    auto opened = State::open(dir.file("ledger.db"), genesis(2, 100), State::Durability::kDeferred);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    auto& state = *opened;
    std::vector<uint64_t> observed;
    state->set_sync_observer([&](uint64_t seq) { observed.push_back(seq); });
    for (uint64_t seq = 1; seq <= 3; ++seq)
        ASSERT_TRUE(state->apply_block(seq, 0, {make_transfer(key(1), key(2).public_key(), 1, seq)}).ok());
    EXPECT_EQ(state->synced_seq(), 0u) << "deferred blocks are not known durable before a sync";
    ASSERT_TRUE(state->sync().ok());
    EXPECT_EQ(state->synced_seq(), 3u);
    EXPECT_EQ(observed, std::vector<uint64_t>{3});
    ASSERT_TRUE(state->sync().ok());  // nothing new: no second sync
    EXPECT_EQ(observed.size(), 1u);
}

// Block commits start the disk writing the WAL's new pages without waiting, once every
// kWritebackPages pages (state_impl.h, start_writeback), so that the fsync before a checkpoint
// message finds little left; only a deferred ledger on a file has such pages, and a block
// written back is still not durable until sync() says so.
TEST(LedgerDurability, ADeferredFileStartsWritingItsBlocksAsTheyCommitWithoutCallingThemDurable) {
    testing::TempDir dir;
    auto deferred = State::open(dir.file("deferred.db"), genesis(2, 100), State::Durability::kDeferred);
    auto every_block = State::open(dir.file("every.db"), genesis(2, 100), State::Durability::kEveryBlock);
    auto in_memory = State::open(":memory:", genesis(2, 100), State::Durability::kDeferred);
    ASSERT_TRUE(deferred.ok() && every_block.ok() && in_memory.ok());
    // Each writes ~4 pages: three rounds of kWritebackPages, short of the WAL's first checkpoint.
    constexpr uint64_t kBlocks = 200;
    for (auto* state : {&*deferred, &*every_block, &*in_memory})
        for (uint64_t seq = 1; seq <= kBlocks; ++seq)
            ASSERT_TRUE((*state)->apply_block(seq, 0, {make_transfer(key(1), key(2).public_key(), 1, seq)}).ok());
    const uint64_t writebacks = (*deferred)->checkpoints().early_writebacks;
    EXPECT_GE(writebacks, 2u);
    EXPECT_LT(writebacks, kBlocks / 8) << "not one trip to the disk per block";
    EXPECT_LT((*deferred)->synced_seq(), kBlocks) << "a write started is not a write synced";
    ASSERT_TRUE((*deferred)->sync().ok());
    EXPECT_EQ((*deferred)->synced_seq(), kBlocks);
    EXPECT_EQ((*every_block)->checkpoints().early_writebacks, 0u) << "its blocks are synced as they commit";
    EXPECT_EQ((*in_memory)->checkpoints().early_writebacks, 0u) << "nothing to write";
}

// The WAL's checkpoints run on a thread of their own (ledger/checkpointer.h): blocks become
// durable without a sync() and without the applying thread checkpointing, synced_seq follows
// (never past the last block), and the WAL is restarted after each complete checkpoint instead
// of growing with the ledger. The file reopens at its last block.
//
// The writer here waits for each checkpoint it asked for before its next block, so that what
// is asserted follows from page counts and not from how fast the checkpointer's thread runs
// beside it. Then every checkpoint is the checkpointer's and complete, and the WAL starts over
// at the next block. (A writer that does not wait outruns it on a loaded machine: for that,
// the rounds the applying thread finishes and the inline checkpoints of WalCheckpoints::on_commit.)
TEST(LedgerDurability, ACheckpointOffTheApplyingThreadMakesBlocksDurableWithoutASync) {
    testing::TempDir dir;
    const std::string path = dir.file("ledger.db");
    {
        auto opened = State::open(path, genesis(2, 1'000'000), State::Durability::kDeferred);
        ASSERT_TRUE(opened.ok()) << opened.error().message;
        auto& state = *opened;
        uint64_t seq = 0;
        uintmax_t wal_max = 0;
        const auto wait_for_checkpointer = [&] {
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
            while (state->checkpoints().checkpointer_busy && std::chrono::steady_clock::now() < deadline)
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            ASSERT_FALSE(state->checkpoints().checkpointer_busy) << "a checkpoint ran for a minute";
        };
        // ~5 pages a block: a checkpoint every ~190 blocks; 3,000 blocks make ~16 of them.
        for (int i = 0; i < 3000; ++i) {
            ++seq;
            ASSERT_TRUE(state->apply_block(seq, 0, {make_transfer(key(1), key(2).public_key(), 1, seq)}).ok());
            ASSERT_LE(state->synced_seq(), seq);
            std::error_code ec;
            wal_max = std::max<uintmax_t>(wal_max, std::filesystem::file_size(path + "-wal", ec));
            ASSERT_NO_FATAL_FAILURE(wait_for_checkpointer());
        }
        // The last checkpoint was asked for at most 1,000 pages (~190 blocks) before the end.
        EXPECT_GE(state->synced_seq(), seq - 250) << "no checkpoint made the blocks durable";
        EXPECT_LE(state->synced_seq(), seq);
        // A checkpoint every 1,000 pages of 4 KiB; unchecked, 3,000 blocks would make ~120 MB.
        EXPECT_LT(wal_max, 8u << 20) << "the WAL grew: its checkpoints did not complete";
        // The checkpointer copied; the applying thread had nothing left to finish.
        const State::Checkpoints runs = state->checkpoints();
        EXPECT_EQ(runs.checkpointer_failure, "");
        EXPECT_GE(runs.on_checkpointer, 10u);
        EXPECT_EQ(runs.on_applying_thread, 0u);
    }
    auto reopened = State::open(path, genesis(2, 1'000'000), State::Durability::kDeferred);
    ASSERT_TRUE(reopened.ok()) << reopened.error().message;
    EXPECT_EQ((*reopened)->last_seq(), 3000u);
}

TEST(LedgerDurability, AnImageReopensAsTheLedgerItWas) {
    auto source = busy_ledger();
    const std::string image = source->image();
    ASSERT_TRUE(source->apply_block(13, 0, {}).ok());  // moves on after the image
    auto reopened = State::open_image(image);
    ASSERT_TRUE(reopened.ok()) << reopened.error().message;
    EXPECT_EQ((*reopened)->last_seq(), 12u);
    EXPECT_EQ((*reopened)->last_block().hash(), source->block(12)->hash());
    EXPECT_FALSE(State::open_image("not a database").ok());
}

}  // namespace
}  // namespace tally::ledger

namespace tally::ledger {
namespace {

// The simulator's disks (tests/sim/node_cluster.h): an in-memory ledger keeps a file's account
// of what is durable, so a simulated power loss takes back what a real one would.
TEST(LedgerDurability, AnInMemoryDeferredLedgerIsDurableOnlyThroughItsSyncs) {
    auto opened = State::open(":memory:", testing::genesis(2, 100), State::Durability::kDeferred);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    auto& state = *opened;
    std::string durable;
    state->set_sync_observer([&](uint64_t) { durable = state->image(); });
    ASSERT_TRUE(state->apply_block(1, 0, {make_transfer(testing::key(1), testing::key(2).public_key(), 1, 1)}).ok());
    EXPECT_EQ(state->synced_seq(), 0u);
    EXPECT_TRUE(durable.empty());
    ASSERT_TRUE(state->sync().ok());
    EXPECT_EQ(state->synced_seq(), 1u);
    ASSERT_TRUE(state->apply_block(2, 0, {make_transfer(testing::key(1), testing::key(2).public_key(), 1, 2)}).ok());
    auto after_power_loss = State::open_image(durable, State::Durability::kDeferred);
    ASSERT_TRUE(after_power_loss.ok()) << after_power_loss.error().message;
    EXPECT_EQ((*after_power_loss)->last_seq(), 1u) << "block 2 was never synced";
    EXPECT_EQ((*after_power_loss)->synced_seq(), 1u);
}

}  // namespace
}  // namespace tally::ledger
