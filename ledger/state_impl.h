// State's insides (private to ledger/), shared by the files that make a State: state.cc
// (blocks, reads, durability), schema.cc (opening) and snapshot.cc (state transfer, backfill).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ledger/account_table.h"
#include "ledger/checkpointer.h"
#include "ledger/sqlite.h"
#include "ledger/state.h"

namespace tally::ledger {

// Whether a stored result code is one this version knows.
inline bool known_code(uint64_t code) { return code <= static_cast<uint64_t>(ResultCode::kUnknownTx); }

// Reads a row of the blocks table's columns (schema.cc, kBlockColumns); `history` is the
// history digest after the block (zeros and `has_history` false when NULL).
bool read_block(const Use& row, BlockHeader& out, crypto::Hash& stored_hash, crypto::Hash& history,
                bool* has_history = nullptr);

struct State::Impl {
    sqlite3* db = nullptr;
    std::string path;
    int64_t ledger_id = 0;  // meta's ledger_id: this file's identity

    Statement begin, commit, rollback;
    Statement select_tx, insert_tx, upsert_account, log_account, insert_block, select_block, set_last_seq;
    Statement select_certificate, set_certificate;
    Statement select_not_yet, upsert_not_yet, trim_not_yet;  // not_yet_outcomes (schema.cc, kNotYetSchema)

    // Invariant: equals the accounts table as of last_block (between calls), so
    // accounts.digest() == digest_accounts(accounts.sorted()) and combined with `history` it
    // is last_block.state_digest.
    AccountTable accounts;
    uint64_t account_log_rows = 0;  // rows in account_log (schema.cc, kAccountLogSchema)
    // The rows of tx_log (schema.cc, kTxLogSchema) by id, where find_recorded looks before
    // the transactions table. A block adds its records as it runs (abort_block takes them out
    // again); after the block that merges the log commits, it is empty. Keyed hashing: a
    // client chooses its transfers' bytes (crypto::KeyedBytesHash).
    std::unordered_map<crypto::Hash, TxRecord, crypto::KeyedBytesHash> tx_log;
    // State::stagger: rows the first merge of each log waits for beyond its kMergeRows (then 0).
    uint64_t account_log_extra_rows = 0;
    uint64_t tx_log_extra_rows = 0;
    BlockHeader last_block;
    crypto::Hash history{};  // after last_block
    // The block in progress: the records it wrote, and the history digest it leads to.
    std::vector<TxRecord> block_records;
    crypto::Hash block_history{};
    // Set when a failed rollback or fsync leaves the disk in doubt: every later write refuses.
    bool broken = false;

    // Durability (State::sync). `deferred`: kDeferred on a file, the only case where a
    // committed block may not be on disk yet. Invariant: synced_seq <= last_block.seq.
    bool deferred = false;
    uint64_t synced_seq = 0;
    bool wal_checkpointed = false;   // set by the WAL hook (a checkpoint ran here), read after each commit
    std::function<void(uint64_t)> sync_observer;
    // Writeback ahead of the sync (start_writeback): the WAL, opened read-only at the first
    // request (kNoWal once that failed: then the sync writes it all, as before), and how many
    // requests the kernel took (State::Checkpoints::early_writebacks).
    static constexpr int kNoWal = -2;
    int wal_fd = -1;
    uint64_t early_writebacks = 0;
    int written_back_pages = 0;  // the WAL's length when the disk was last asked to write it
    // The checkpoints of a kDeferred file (checkpointer.h, WalCheckpoints).
    WalCheckpoints wal;
    // The WAL hook: WalCheckpoints decides, on this connection alone while a sync observer
    // copies the files at each sync (they must not change in between). A checkpoint here
    // syncs the WAL before it copies it, noted so that synced_seq knows.
    static int on_wal_commit(void* self, sqlite3* db, const char* name, int pages);
    // After a commit of block `seq` (or of a snapshot at `seq`).
    void committed(uint64_t seq);
    // Moves synced_seq to what the checkpointer made durable since (never past last_block).
    void catch_up_synced();
    // After a commit of a kDeferred file, once the WAL grew by kWritebackPages since the last
    // time: starts the disk writing its new pages and returns without waiting
    // (sync_file_range). A hint, never a promise: only sync() and the checkpoints make anything
    // durable. It spreads the writing over the blocks, so that the fsync before a checkpoint
    // message — on the consensus thread, at every replica at the same seq — waits for the
    // last few blocks' pages and the disk's flush, not for the thousands of pages of a whole
    // checkpoint interval. Every 1 MiB, not every block: each request is a trip to the disk's
    // queue (on this VM, a hypervisor exit), and the writes it starts queue the consensus
    // store's fsyncs behind them. Measured (README, Performance, session 26): at every block
    // and every 64 pages one Raft client's median rose 0.06-0.10 ms; every 256 it did not move.
    static constexpr int kWritebackPages = 256;
    void start_writeback();
    void notify_synced() {
        if (sync_observer) sync_observer(synced_seq);
    }

    // The checkpointer's connection closes first, so that this one is the last and removes
    // the WAL. sqlite3_close_v2 defers the close until the statements (members, destroyed
    // after this body runs) are finalized.
    ~Impl() {
        wal.stop();
        if (wal_fd >= 0) ::close(wal_fd);  // (SQLite locks the database and its -shm, never the WAL)
        sqlite3_close_v2(db);
    }

    Error io_error(const std::string& what) const {
        return make_error("io", path + ": " + what + ": " + sqlite3_errmsg(db));
    }
    Error open_error(int rc, const std::string& what) const {
        if (is_corruption(rc))
            return make_error("corrupt", path + ": not a valid Tally database (" + what + ": " +
                                             sqlite3_errmsg(db) + ")");
        return io_error(what);
    }
    // What every write answers once `broken` is set.
    Error broken_error() const {
        return make_error("io", path + ": an earlier write failed uncertainly; reopen the ledger");
    }

    int exec(const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); }
    int run(const Statement& statement) {
        Use use(statement);
        return use.step();
    }
    // COMMIT: SQLITE_DONE, or the error, after which `broken` is set if the disk is in doubt.
    int commit_or_break() {
        int rc = run(commit);
        if (rc != SQLITE_DONE && is_failed_sync(sqlite3_extended_errcode(db))) broken = true;
        return rc;
    }
    // Inserts the blocks table's row of `header`: `history` NULL when nullptr (a block that
    // backfill brought), `certificate` empty when not held. SQLITE_DONE or the error.
    int insert_block_row(const BlockHeader& header, const crypto::Hash* history,
                         std::string_view certificate);

    // ---- opening (schema.cc) ----
    int prepare_statements();
    Status initialize(const Genesis& genesis);
    Status load();
    Status check_database();
    // An existing ledger: its schema checked and its state loaded (check_database, load).
    Status check_and_load() {
        if (Status s = check_database(); !s) return s;
        return load();
    }
    // Moves the account log into the accounts table (schema.cc, kAccountLogSchema says why).
    int merge_account_log();
    // Moves the transaction log into the transactions table (schema.cc, kTxLogSchema).
    int merge_tx_log();

    // ---- blocks (state.cc) ----
    std::optional<Outcome> find_recorded(const crypto::Hash& id, int& rc);
    // Whether a transfer of `sender` at `nonce` may have a record (State::transfer_outcome).
    bool may_be_recorded(const crypto::PublicKey& sender, uint64_t nonce) const {
        const Account* account = accounts.find(sender);
        return account != nullptr && nonce <= account->nonce;
    }
    // The outcome `select` finds (code, seq, value of the id ?1): select_tx, a final record;
    // select_not_yet, the last nonce_too_high execution kept aside (schema.cc, kNotYetSchema).
    std::optional<Outcome> find_outcome(const Statement& select, const crypto::Hash& id, int& rc);
    // Keeps `tx`'s nonce_too_high execution at `seq`, and its sender's latest kNotYetPerSender.
    void keep_not_yet(const Tx& tx, uint64_t seq, int& rc);
    static constexpr uint64_t kNotYetPerSender = 16;
    Outcome apply_transfer(const Tx& tx, uint64_t seq, int& rc);
    Outcome answer(const Tx& tx, uint64_t seq, int& rc);
    Result<AppliedBlock> run_block(uint64_t seq, uint64_t view, const std::vector<std::string>& txs,
                                   Verify verify, std::string_view certificate);
    void abort_block();
};

}  // namespace tally::ledger
