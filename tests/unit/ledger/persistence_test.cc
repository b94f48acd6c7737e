// The ledger on disk: reopening, refusing corrupt or foreign files, and a full disk.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "ledger/state.h"
#include "ledger_test_util.h"

namespace tally::ledger {
namespace {

using testing::genesis;
using testing::key;
using testing::TempDir;

// `count` valid transfers, round robin among keys 1..accounts, from the nonces in `nonces`.
std::vector<std::string> transfers(std::vector<uint64_t>& nonces, uint8_t accounts, size_t count,
                                   uint64_t amount = 1) {
    std::vector<std::string> txs;
    for (size_t i = 0; i < count; ++i) {
        const auto from = static_cast<uint8_t>(1 + i % accounts);
        const auto to = static_cast<uint8_t>(1 + (i + 1) % accounts);
        txs.push_back(make_transfer(key(from), key(to).public_key(), amount, ++nonces[from]));
    }
    return txs;
}

std::unique_ptr<State> open_ok(const std::string& path, const Genesis& g) {
    auto state = State::open(path, g);
    EXPECT_TRUE(state.ok()) << state.error().code << ": " << state.error().message;
    return state.ok() ? std::move(state.value()) : nullptr;
}

void expect_corrupt(const std::string& path, const std::string& what) {
    auto state = State::open(path, genesis(2, 10));
    ASSERT_FALSE(state.ok()) << what;
    EXPECT_EQ(state.error().code, "corrupt") << what << ": " << state.error().message;
    EXPECT_NE(state.error().message.find(path), std::string::npos) << state.error().message;
}

// A closed Tally database at `path` with `blocks` blocks of 50 transfers.
void build_ledger(const std::string& path, size_t blocks) {
    auto state = open_ok(path, genesis(4, 1'000'000));
    ASSERT_TRUE(state);
    std::vector<uint64_t> nonces(5, 0);
    for (size_t b = 0; b < blocks; ++b)
        ASSERT_TRUE(state->apply_block(b + 1, 0, transfers(nonces, 4, 50), Verify::kTrusted).ok());
}

void exec_sql(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
        << (error ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
}

TEST(Persistence, AReopenedLedgerHasEverythingItCommitted) {
    TempDir dir;
    const std::string path = dir.file("ledger.db");
    std::vector<uint64_t> nonces(5, 0);
    BlockHeader last;
    std::vector<Account> accounts;
    crypto::Hash some_tx{};
    {
        auto state = open_ok(path, genesis(4, 100));
        ASSERT_TRUE(state);
        for (uint64_t seq = 1; seq <= 5; ++seq) {
            auto block = state->apply_block(seq, 3, transfers(nonces, 4, 20));
            ASSERT_TRUE(block.ok());
            some_tx = block->outcomes.back().tx_id;
        }
        last = state->last_block();
        accounts = state->accounts();
    }
    auto state = open_ok(path, genesis(1, 5));  // an existing ledger ignores the genesis
    ASSERT_TRUE(state);
    EXPECT_EQ(state->last_seq(), 5u);
    EXPECT_EQ(state->last_block().hash(), last.hash());
    EXPECT_EQ(state->last_block().view, 3u);
    EXPECT_EQ(state->state_digest(), last.state_digest);
    EXPECT_EQ(combine_digests(digest_accounts(state->accounts()), state->history_digest()),
              last.state_digest);
    EXPECT_EQ(state->accounts().size(), accounts.size());
    EXPECT_EQ(state->total_balance(), 400u);
    auto recorded = state->transaction(some_tx);
    ASSERT_TRUE(recorded.has_value());
    EXPECT_EQ(recorded->seq, 5u);
    for (uint64_t h = 1; h <= 5; ++h)
        EXPECT_EQ(state->block(h)->prev_hash, state->block(h - 1)->hash());
    // And it goes on from there.
    EXPECT_EQ(state->apply_block(5, 0, {}).error().code, "already_applied");
    EXPECT_TRUE(state->apply_block(6, 0, transfers(nonces, 4, 4)).ok());
}

TEST(Persistence, RandomBytesAreNotALedger) {
    TempDir dir;
    const std::string path = dir.file("random.db");
    std::mt19937 rng(5);
    std::string bytes(64 * 1024, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    std::ofstream(path, std::ios::binary) << bytes;
    expect_corrupt(path, "random bytes");
    // Nor is a text file that starts like SQLite's header.
    std::ofstream(path, std::ios::binary | std::ios::trunc) << "SQLite format 3" << bytes;
    expect_corrupt(path, "a fake header");
}

TEST(Persistence, AnotherProgramsSQLiteDatabaseIsRefused) {
    TempDir dir;
    const std::string path = dir.file("foreign.db");
    exec_sql(
        path,
        "CREATE TABLE accounts(name TEXT, email TEXT); INSERT INTO accounts VALUES('a', 'b');");
    expect_corrupt(path, "a foreign schema");
    // Untouched: still the other program's data.
    exec_sql(path, "SELECT name FROM accounts");
}

TEST(Persistence, ATallyDatabaseWithAnotherSchemaVersionIsRefused) {
    TempDir dir;
    const std::string path = dir.file("ledger.db");
    build_ledger(path, 2);
    exec_sql(path, "UPDATE meta SET value = 99 WHERE key = 'schema_version'");
    expect_corrupt(path, "schema version 99");
}

TEST(Persistence, ATallyDatabaseWithAMissingTableIsRefused) {
    TempDir dir;
    const std::string path = dir.file("ledger.db");
    build_ledger(path, 2);
    exec_sql(path, "DROP TABLE transactions");
    expect_corrupt(path, "no transactions table");
}

// What one SQL query on the closed ledger at `path` gives (its first column, as an integer).
int64_t query_int(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sql;
    int64_t value = -1;
    if (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return value;
}

// 200 accounts, each touched by every block: the last block before the account log reaches
// kAccountLogMergeRows, and the next, which merges it into the accounts table.
constexpr uint8_t kLogAccounts = 200;
constexpr uint64_t kBlocksBeforeMerge = kAccountLogMergeRows / kLogAccounts;

TEST(Persistence, TheAccountLogIsReadBackAndMergedIntoTheAccountsTable) {
    TempDir dir;
    const std::string path = dir.file("ledger.db");
    std::vector<uint64_t> nonces(kLogAccounts + 1, 0);
    std::vector<Account> accounts;
    {
        auto state = open_ok(path, genesis(kLogAccounts, 1'000));
        ASSERT_TRUE(state);
        for (uint64_t seq = 1; seq <= kBlocksBeforeMerge; ++seq)
            ASSERT_TRUE(state->apply_block(seq, 0, transfers(nonces, kLogAccounts, kLogAccounts, seq % 7 + 1)).ok());
        accounts = state->accounts();
    }
    // Each block appended the accounts it touched; the table still holds genesis.
    EXPECT_EQ(query_int(path, "SELECT count(*) FROM account_log"), kBlocksBeforeMerge * kLogAccounts);
    EXPECT_EQ(query_int(path, "SELECT max(nonce) FROM accounts"), 0);
    {
        auto state = open_ok(path, genesis(1, 5));
        ASSERT_TRUE(state);
        EXPECT_EQ(state->accounts(), accounts);  // the log's newest row of each key wins
        ASSERT_TRUE(state->apply_block(kBlocksBeforeMerge + 1, 0, transfers(nonces, kLogAccounts, kLogAccounts)).ok());
        accounts = state->accounts();
    }
    EXPECT_EQ(query_int(path, "SELECT count(*) FROM account_log"), 0);
    EXPECT_EQ(query_int(path, "SELECT min(nonce) FROM accounts"), static_cast<int64_t>(kBlocksBeforeMerge + 1));
    auto state = open_ok(path, genesis(1, 5));
    ASSERT_TRUE(state);
    EXPECT_EQ(state->accounts(), accounts);
    EXPECT_EQ(state->total_balance(), kLogAccounts * 1'000u);
}

TEST(Persistence, AccountsThatDoNotMatchTheLastBlockAreRefused) {
    TempDir dir;
    const std::string path = dir.file("ledger.db");
    build_ledger(path, 3);
    exec_sql(path,
             "UPDATE account_log SET balance = balance + 1 WHERE rowid = "
             "(SELECT max(rowid) FROM account_log)");
    expect_corrupt(path, "a changed balance in the account log");

    // And in the accounts table, after a merge.
    const std::string merged = dir.file("merged.db");
    {
        auto state = open_ok(merged, genesis(kLogAccounts, 1'000));
        ASSERT_TRUE(state);
        std::vector<uint64_t> nonces(kLogAccounts + 1, 0);
        for (uint64_t seq = 1; seq <= kBlocksBeforeMerge + 1; ++seq)
            ASSERT_TRUE(state->apply_block(seq, 0, transfers(nonces, kLogAccounts, kLogAccounts)).ok());
    }
    ASSERT_EQ(query_int(merged, "SELECT count(*) FROM account_log"), 0);
    exec_sql(merged,
             "UPDATE accounts SET balance = balance + 1 WHERE key = "
             "(SELECT key FROM accounts LIMIT 1)");
    expect_corrupt(merged, "a changed balance in the accounts table");
}

TEST(Persistence, ALedgerOfSchemaVersion4IsUpgradedWhenOpened) {
    TempDir dir;
    const std::string path = dir.file("ledger.db");
    std::vector<uint64_t> nonces(5, 0);
    BlockHeader last;
    std::vector<Account> accounts;
    {
        auto state = open_ok(path, genesis(4, 100));
        ASSERT_TRUE(state);
        for (uint64_t seq = 1; seq <= 3; ++seq) ASSERT_TRUE(state->apply_block(seq, 0, transfers(nonces, 4, 8)).ok());
        last = state->last_block();
        accounts = state->accounts();
    }
    // What version 4 kept: the accounts and the records in their tables, no logs.
    exec_sql(path,
             "INSERT INTO accounts(key, balance, nonce) SELECT key, balance, nonce FROM current_accounts "
             "WHERE true ON CONFLICT(key) DO UPDATE SET balance = excluded.balance, nonce = excluded.nonce;"
             "DROP VIEW current_accounts; DROP TABLE account_log;"
             "INSERT INTO transactions(id, code, seq, value) SELECT id, code, seq, value FROM tx_log;"
             "DROP VIEW all_transactions; DROP TABLE tx_log;"
             "UPDATE meta SET value = 4 WHERE key = 'schema_version'");
    {
        auto state = open_ok(path, genesis(1, 5));
        ASSERT_TRUE(state);
        EXPECT_EQ(state->last_block().hash(), last.hash());
        EXPECT_EQ(state->accounts(), accounts);
        ASSERT_TRUE(state->apply_block(4, 0, transfers(nonces, 4, 8)).ok());
        last = state->last_block();
    }
    EXPECT_EQ(query_int(path, "SELECT value FROM meta WHERE key = 'schema_version'"), kLedgerSchemaVersion);
    EXPECT_EQ(query_int(path, "SELECT count(*) FROM account_log"), 4);
    auto state = open_ok(path, genesis(1, 5));
    ASSERT_TRUE(state);
    EXPECT_EQ(state->last_block().hash(), last.hash());
}

// Blocks of 256 transfers among 200 accounts: kTxLogMergeRows / 256 of them fill the
// transaction log to the row before a merge (the last one reaches it).
constexpr size_t kTxsPerBlock = 256;
constexpr uint64_t kTxBlocksBeforeMerge = kTxLogMergeRows / kTxsPerBlock;

crypto::Hash id_of(const std::string& bytes) {
    auto tx = decode_tx(bytes);
    EXPECT_TRUE(tx.ok());
    return tx.ok() ? tx->id : crypto::Hash{};
}

TEST(Persistence, TheTransactionLogIsFoundByIdReadBackAndMergedIntoTheTable) {
    TempDir dir;
    const std::string path = dir.file("ledger.db");
    std::vector<uint64_t> nonces(kLogAccounts + 1, 0);
    std::string first;  // a transfer of block 1
    {
        auto state = open_ok(path, genesis(kLogAccounts, 1'000'000));
        ASSERT_TRUE(state);
        for (uint64_t seq = 1; seq < kTxBlocksBeforeMerge; ++seq) {
            auto txs = transfers(nonces, kLogAccounts, kTxsPerBlock);
            if (seq == 1) first = txs[0];
            ASSERT_TRUE(state->apply_block(seq, 0, txs, Verify::kTrusted).ok());
        }
        auto found = state->transaction(id_of(first));
        ASSERT_TRUE(found.has_value());
        EXPECT_EQ(found->seq, 1u);
        EXPECT_EQ(found->code, ResultCode::kOk);
    }
    const auto logged = static_cast<int64_t>((kTxBlocksBeforeMerge - 1) * kTxsPerBlock);
    EXPECT_EQ(query_int(path, "SELECT count(*) FROM tx_log"), logged);
    EXPECT_EQ(query_int(path, "SELECT count(*) FROM transactions"), 0);
    {
        // Read back: a transfer of block 1 is found by id, and sent again it is a duplicate
        // answered with its first outcome, in the block that merges the log.
        auto state = open_ok(path, genesis(1, 5));
        ASSERT_TRUE(state);
        auto found = state->transaction(id_of(first));
        ASSERT_TRUE(found.has_value());
        EXPECT_EQ(found->seq, 1u);
        auto txs = transfers(nonces, kLogAccounts, kTxsPerBlock);
        txs.push_back(first);
        auto applied = state->apply_block(kTxBlocksBeforeMerge, 0, txs, Verify::kTrusted);
        ASSERT_TRUE(applied.ok()) << applied.error().message;
        EXPECT_TRUE(applied->outcomes.back().duplicate);
        EXPECT_EQ(applied->outcomes.back().seq, 1u);
        EXPECT_EQ(applied->outcomes.back().code, ResultCode::kOk);
    }
    EXPECT_EQ(query_int(path, "SELECT count(*) FROM tx_log"), 0);
    EXPECT_EQ(query_int(path, "SELECT count(*) FROM transactions"), logged + static_cast<int64_t>(kTxsPerBlock));
    auto state = open_ok(path, genesis(1, 5));
    ASSERT_TRUE(state);
    auto found = state->transaction(id_of(first));
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->seq, 1u);
    // After the merge, the log fills again and both are read as one.
    auto txs = transfers(nonces, kLogAccounts, 3);
    ASSERT_TRUE(state->apply_block(kTxBlocksBeforeMerge + 1, 0, txs, Verify::kTrusted).ok());
    EXPECT_EQ(state->transaction(id_of(txs[2]))->seq, kTxBlocksBeforeMerge + 1);
    EXPECT_EQ(state->transaction(id_of(first))->seq, 1u);
    EXPECT_EQ(query_int(path, "SELECT count(*) FROM all_transactions"),
              logged + static_cast<int64_t>(kTxsPerBlock) + 3);
}

// Every replica writes the same blocks, so unstaggered all of them would merge their logs in
// the same block, a few tens of milliseconds each, and a quorum would wait for all of them
// (State::stagger). Replica 0 of 4 merges its transaction log in the block that reaches
// kTxLogMergeRows, replica 2 in the one that reaches half as many rows again (its account log
// likewise), and the two ledgers agree on every block all along.
TEST(Persistence, EachReplicaMergesItsLogsInADifferentBlockAndTheLedgersStayTheSame) {
    TempDir dir;
    const std::string path0 = dir.file("r0.db"), path2 = dir.file("r2.db");
    auto r0 = open_ok(path0, genesis(kLogAccounts, 1'000'000));
    auto r2 = open_ok(path2, genesis(kLogAccounts, 1'000'000));
    ASSERT_TRUE(r0 && r2);
    r0->stagger(0, 4);
    r2->stagger(2, 4);
    std::vector<uint64_t> nonces(kLogAccounts + 1, 0);
    std::string first;  // a transfer of block 1
    uint64_t merged0 = 0, merged2 = 0;  // the block that emptied each one's transaction log
    const uint64_t blocks = kTxBlocksBeforeMerge * 3 / 2 + 1;
    for (uint64_t seq = 1; seq <= blocks; ++seq) {
        auto txs = transfers(nonces, kLogAccounts, kTxsPerBlock);
        if (seq == 1) first = txs[0];
        ASSERT_TRUE(r0->apply_block(seq, 0, txs, Verify::kTrusted).ok());
        ASSERT_TRUE(r2->apply_block(seq, 0, txs, Verify::kTrusted).ok());
        ASSERT_EQ(r0->last_block().hash(), r2->last_block().hash()) << "block " << seq;
        if (merged0 == 0 && query_int(path0, "SELECT count(*) FROM tx_log") == 0) merged0 = seq;
        if (merged2 == 0 && query_int(path2, "SELECT count(*) FROM tx_log") == 0) merged2 = seq;
    }
    EXPECT_EQ(merged0, kTxBlocksBeforeMerge);
    EXPECT_EQ(merged2, kTxBlocksBeforeMerge * 3 / 2) << "replica 2's merge was not staggered";
    // Each block touches all 200 accounts: replica 0 merged its account log in the block that
    // reached kAccountLogMergeRows, replica 2 has not reached its own point yet.
    const auto merged_accounts0 = static_cast<int64_t>((kAccountLogMergeRows + kLogAccounts - 1) / kLogAccounts);
    EXPECT_EQ(query_int(path0, "SELECT count(*) FROM account_log"),
              (static_cast<int64_t>(blocks) - merged_accounts0) * kLogAccounts);
    EXPECT_EQ(query_int(path2, "SELECT count(*) FROM account_log"), static_cast<int64_t>(blocks) * kLogAccounts);
    EXPECT_EQ(r0->accounts(), r2->accounts());
    EXPECT_EQ(r0->transaction(id_of(first))->seq, 1u);
    EXPECT_EQ(r2->transaction(id_of(first))->seq, 1u);
}

TEST(Persistence, AFailedBlockLeavesNoRecordBehindInTheTransactionLog) {
    TempDir dir;
    const std::string path = dir.file("ledger.db");
    auto state = open_ok(path, genesis(4, 100));
    ASSERT_TRUE(state);
    std::vector<uint64_t> nonces(5, 0);
    auto txs = transfers(nonces, 4, 3);
    // The block's statements fail once SQLite can no longer write: here, the log's table is
    // gone, so the block's first record cannot be inserted.
    exec_sql(path, "DROP VIEW all_transactions; ALTER TABLE tx_log RENAME TO tx_log_gone");
    auto failed = state->apply_block(1, 0, txs, Verify::kTrusted);
    ASSERT_FALSE(failed.ok());
    EXPECT_FALSE(state->transaction(id_of(txs[0])).has_value()) << "a record of the failed block stayed";
}

TEST(Persistence, ALedgerOfSchemaVersion5IsUpgradedWhenOpened) {
    TempDir dir;
    const std::string path = dir.file("ledger.db");
    std::vector<uint64_t> nonces(5, 0);
    std::vector<std::string> txs;
    {
        auto state = open_ok(path, genesis(4, 100));
        ASSERT_TRUE(state);
        for (uint64_t seq = 1; seq <= 3; ++seq) {
            txs = transfers(nonces, 4, 8);
            ASSERT_TRUE(state->apply_block(seq, 0, txs).ok());
        }
    }
    // What version 5 kept: every record in the transactions table, no log.
    exec_sql(path,
             "INSERT INTO transactions(id, code, seq, value) SELECT id, code, seq, value FROM tx_log;"
             "DROP VIEW all_transactions; DROP TABLE tx_log;"
             "UPDATE meta SET value = 5 WHERE key = 'schema_version'");
    {
        auto state = open_ok(path, genesis(1, 5));
        ASSERT_TRUE(state);
        EXPECT_EQ(state->transaction(id_of(txs[0]))->seq, 3u);
        ASSERT_TRUE(state->apply_block(4, 0, transfers(nonces, 4, 8)).ok());
    }
    EXPECT_EQ(query_int(path, "SELECT value FROM meta WHERE key = 'schema_version'"), kLedgerSchemaVersion);
    EXPECT_EQ(query_int(path, "SELECT count(*) FROM tx_log"), 8);
    EXPECT_EQ(query_int(path, "SELECT count(*) FROM all_transactions"), 32);
}

TEST(Persistence, AMissingLastBlockIsRefused) {
    TempDir dir;
    const std::string path = dir.file("ledger.db");
    build_ledger(path, 3);
    exec_sql(path, "DELETE FROM blocks WHERE height = 3");
    expect_corrupt(path, "no block at last_seq");
}

TEST(Persistence, ATruncatedTallyDatabaseIsRefused) {
    TempDir dir;
    const std::string path = dir.file("ledger.db");
    build_ledger(path, 40);
    ASSERT_FALSE(std::filesystem::exists(path + "-wal") &&
                 std::filesystem::file_size(path + "-wal") > 0)
        << "closing checkpoints the log into the database file";
    const auto size = std::filesystem::file_size(path);
    ASSERT_GT(size, 64u * 1024u);
    for (double keep : {0.9, 0.5, 0.1}) {
        std::filesystem::resize_file(path,
                                     static_cast<uintmax_t>(static_cast<double>(size) * keep));
        expect_corrupt(path, "truncated to " + std::to_string(keep));
    }
}

TEST(Persistence, AnUnreachablePathIsAnIoError) {
    auto state = State::open("/nonexistent-dir/for/sure/ledger.db", genesis(1, 1));
    ASSERT_FALSE(state.ok());
    EXPECT_EQ(state.error().code, "io");
}

// A full disk, simulated with a file-size limit (RLIMIT_FSIZE) in a child process: writing
// the block's log frames fails, apply_block() reports "io", and nothing changes — in memory
// or on disk. With room again, the same block applies.
int full_disk_scenario(const std::string& path) {
    auto fail = [](const char* what) {
        std::fprintf(stderr, "full disk scenario: %s\n", what);
        return 1;
    };
    std::vector<uint64_t> nonces(5, 0);
    {
        auto opened = State::open(path, genesis(4, 1'000'000));
        if (!opened) return fail("open");
        auto& state = *opened.value();
        for (uint64_t seq = 1; seq <= 3; ++seq)
            if (!state.apply_block(seq, 0, transfers(nonces, 4, 5)).ok())
                return fail("small block");
        const BlockHeader before = state.last_block();
        const auto accounts = state.accounts();
        const std::vector<uint64_t> nonces_before = nonces;
        auto big = transfers(nonces, 4, 3000);
        for (uint8_t i = 0; i < 50; ++i)  // and new accounts, which a failure must remove again
            big.push_back(make_transfer(key(1), key(static_cast<uint8_t>(100 + i)).public_key(), 1,
                                        ++nonces[1]));

        uintmax_t largest = std::filesystem::file_size(path);
        if (std::filesystem::exists(path + "-wal"))
            largest = std::max(largest, std::filesystem::file_size(path + "-wal"));
        signal(SIGXFSZ, SIG_IGN);
        rlimit limit{};
        getrlimit(RLIMIT_FSIZE, &limit);
        const rlimit roomy = limit;
        limit.rlim_cur = static_cast<rlim_t>(largest);
        if (setrlimit(RLIMIT_FSIZE, &limit) != 0) return fail("setrlimit");

        auto refused = state.apply_block(4, 0, big, Verify::kTrusted);
        if (refused.ok()) return fail("a block bigger than the disk was applied");
        if (refused.error().code != "io") return fail(refused.error().code.c_str());
        if (state.last_seq() != 3 || state.last_block().hash() != before.hash() ||
            state.state_digest() != before.state_digest)
            return fail("the failed block changed the in-memory state");
        const auto after = state.accounts();
        if (after.size() != accounts.size() ||
            combine_digests(digest_accounts(after), state.history_digest()) != before.state_digest)
            return fail("the failed block changed the accounts");
        if (state.block(4).has_value()) return fail("a block 4 exists");
        if (state.account(key(100).public_key()).has_value()) return fail("a new account stayed");

        if (setrlimit(RLIMIT_FSIZE, &roomy) != 0) return fail("setrlimit back");
        auto applied = state.apply_block(4, 0, big, Verify::kTrusted);
        if (!applied.ok()) return fail("with room again, the block does not apply");
        for (const Outcome& outcome : applied->outcomes)
            if (outcome.code != ResultCode::kOk)
                return fail("a transfer of the retried block failed");
    }
    auto reopened = State::open(path, genesis(1, 1));
    if (!reopened) return fail("reopen");
    if ((*reopened)->last_seq() != 4) return fail("reopened at the wrong block");
    if ((*reopened)->total_balance() != 4'000'000) return fail("money not conserved");
    if ((*reopened)->accounts().size() != 54) return fail("the new accounts are missing");
    return 0;
}

TEST(Persistence, AFullDiskFailsTheBlockWithIoAndChangesNothing) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    TempDir dir;
    const std::string path = dir.file("ledger.db");
    // The threadsafe death test runs this body again in the child, whose own TempDir would
    // outlive its _Exit: the child removes its folder itself.
    const auto scenario = [&] {
        const int rc = full_disk_scenario(path);
        std::error_code ignored;
        std::filesystem::remove_all(std::filesystem::path(path).parent_path(), ignored);
        return rc;
    };
    EXPECT_EXIT(std::_Exit(scenario()), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace tally::ledger
