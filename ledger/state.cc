// The ledger state (state.h): blocks applied to accounts and transaction records, the reads,
// and durability. The rest of a State has rooms of its own: the SQLite access (sqlite.h), the
// file's schema and opening (schema.cc), the digests (digests.cc), the rules of a transfer
// (rules.h), the accounts in memory (account_table.h), and state transfer with backfill
// (snapshot.cc); State::Impl (state_impl.h) is what they share.
//
// What it trusts: nothing in a batch (checked field by field before anything changes). After
// a file is opened and checked (schema.cc), the database is the truth and the in-memory
// accounts are a cache of it, rebuilt at open and rolled back with it.
//
// Durability: WAL mode, one SQLite transaction per block (accounts, transaction records, the
// block row and last_seq together), so a crash leaves all of a block or none of it. With
// Durability::kEveryBlock (synchronous=FULL) a block is on disk once apply_block() returns;
// with kDeferred (synchronous=NORMAL) it is in the OS and reaches the disk at the next WAL
// checkpoint.
#include "ledger/state.h"

#include <fcntl.h>

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "crypto/assert.h"
#include "crypto/merkle.h"
#include "ledger/rules.h"
#include "ledger/state_impl.h"

namespace tally::ledger {

// ---- durability ----

int State::Impl::on_wal_commit(void* self, sqlite3* db, const char* name, int pages) {
    auto& m = *static_cast<Impl*>(self);
    if (m.wal.on_commit(db, name, pages, /*alone=*/static_cast<bool>(m.sync_observer)))
        m.wal_checkpointed = true;
    return SQLITE_OK;
}

void State::Impl::committed(uint64_t seq) {
    if (!deferred) {
        synced_seq = seq;
        return;
    }
    start_writeback();
    wal.hand_over(seq);
    if (wal_checkpointed) {
        wal_checkpointed = false;
        synced_seq = seq;
        notify_synced();
        return;
    }
    catch_up_synced();
}

void State::Impl::start_writeback() {
    const int wal_pages = wal.wal_pages();
    if (wal_pages < written_back_pages) written_back_pages = 0;  // the WAL started over
    if (wal_fd == kNoWal || wal_pages - written_back_pages < kWritebackPages) return;
    written_back_pages = wal_pages;
    if (wal_fd < 0) {
        const char* wal = sqlite3_filename_wal(sqlite3_db_filename(db, "main"));
        wal_fd = wal != nullptr ? ::open(wal, O_RDONLY | O_CLOEXEC) : -1;
        if (wal_fd < 0) {
            wal_fd = kNoWal;
            return;
        }
    }
    // Every page of the file not yet written: the new frames, and a WAL that started over.
    if (::sync_file_range(wal_fd, 0, 0, SYNC_FILE_RANGE_WRITE) == 0) ++early_writebacks;
}

void State::Impl::catch_up_synced() {
    if (wal.checkpointer() == nullptr) return;
    const uint64_t durable = std::min(wal.checkpointer()->durable_seq(), last_block.seq);
    if (durable <= synced_seq) return;
    synced_seq = durable;
    notify_synced();
}

std::string State::image() const {
    sqlite3_int64 size = 0;
    unsigned char* bytes = sqlite3_serialize(impl_->db, "main", &size, 0);
    if (bytes == nullptr) fatal(impl_->io_error("serializing the ledger").message);
    std::string out(reinterpret_cast<const char*>(bytes), static_cast<size_t>(size));
    sqlite3_free(bytes);
    return out;
}

Status State::sync() {
    Impl& m = *impl_;
    if (m.broken) return m.broken_error();
    if (m.synced_seq == m.last_block.seq) return Ok{};
    if (m.deferred) {
        // Every committed block is in the WAL (synchronous=NORMAL writes it, unsynced): an
        // fsync of the WAL makes all of them durable, without copying it into the database.
        sqlite3_file* wal = nullptr;
        int rc = sqlite3_file_control(m.db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal);
        if (rc == SQLITE_OK && wal != nullptr && wal->pMethods != nullptr) {
            rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL);
        } else {
            int log = -1, done = -1;  // no WAL open: a full checkpoint syncs what there is
            rc = sqlite3_wal_checkpoint_v2(m.db, "main", SQLITE_CHECKPOINT_FULL, &log, &done);
        }
        if (rc != SQLITE_OK) {
            m.broken = true;  // a failed fsync may have dropped pages: trust nothing more
            return m.io_error("syncing the ledger through block " + std::to_string(m.last_block.seq));
        }
    }
    m.synced_seq = m.last_block.seq;
    m.notify_synced();
    return Ok{};
}

uint64_t State::synced_seq() const {
    impl_->catch_up_synced();
    return impl_->synced_seq;
}

State::Checkpoints State::checkpoints() const {
    const Impl& m = *impl_;
    Checkpoints c;
    auto counts = m.wal.counts();
    c.on_checkpointer = counts.on_checkpointer;
    c.on_applying_thread = counts.on_connection;
    c.checkpointer_failure = std::move(counts.checkpointer_failure);
    c.checkpointer_busy = counts.checkpointer_busy;
    c.early_writebacks = m.early_writebacks;
    return c;
}

void State::stagger(uint32_t index, uint32_t count) {
    impl_->wal.stagger(index, count);
    impl_->account_log_extra_rows = stagger_offset(kAccountLogMergeRows, index, count);
    impl_->tx_log_extra_rows = stagger_offset(kTxLogMergeRows, index, count);
}

void State::set_sync_observer(std::function<void(uint64_t)> observer) {
    // (Its copies assume the files change only in a sync: checkpoints run here from now on.)
    impl_->wal.stop();
    impl_->sync_observer = std::move(observer);
}

State::State(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
State::~State() = default;

// ---- applying blocks ----

std::optional<Outcome> State::Impl::find_outcome(const Statement& select, const crypto::Hash& id, int& rc) {
    Use row(select);
    row.bind(1, id);
    int step = row.step();
    if (step == SQLITE_DONE) return std::nullopt;
    if (step != SQLITE_ROW) {
        rc = step;
        return std::nullopt;
    }
    Outcome outcome;
    outcome.tx_id = id;
    uint64_t code = row.u64(0);
    outcome.code = known_code(code) ? static_cast<ResultCode>(code) : ResultCode::kMalformed;
    outcome.seq = row.u64(1);
    outcome.value = row.u64(2);
    return outcome;
}

std::optional<Outcome> State::Impl::find_recorded(const crypto::Hash& id, int& rc) {
    if (auto logged = tx_log.find(id); logged != tx_log.end()) {
        Outcome outcome;
        outcome.tx_id = id;
        outcome.code = logged->second.code;
        outcome.seq = logged->second.seq;
        outcome.value = logged->second.value;
        return outcome;
    }
    return find_outcome(select_tx, id, rc);
}

void State::Impl::keep_not_yet(const Tx& tx, uint64_t seq, int& rc) {
    Use upsert(upsert_not_yet);
    upsert.bind(1, tx.id).bind(2, static_cast<uint64_t>(ResultCode::kNonceTooHigh)).bind(3, seq);
    upsert.bind(4, tx.sender);
    if (upsert.step() != SQLITE_DONE) {
        rc = sqlite3_extended_errcode(db);
        return;
    }
    Use trim(trim_not_yet);
    trim.bind(1, tx.sender).bind(2, kNotYetPerSender);
    if (trim.step() != SQLITE_DONE) rc = sqlite3_extended_errcode(db);
}

// A transfer: a duplicate answered with its first outcome, or the rules' effect (rules.h)
// kept in the accounts and its result recorded.
Outcome State::Impl::apply_transfer(const Tx& tx, uint64_t seq, int& rc) {
    Outcome outcome;
    outcome.tx_id = tx.id;
    outcome.seq = seq;
    if (may_be_recorded(tx.sender, tx.nonce)) {
        if (auto first = find_recorded(tx.id, rc)) {
            first->duplicate = true;
            return *first;
        }
        if (rc != SQLITE_OK) return outcome;
    }

    const TransferEffect effect = decide_transfer(tx, accounts.find(tx.sender), accounts.find(tx.to));
    outcome.code = effect.code;
    outcome.nonce = effect.nonce;
    // A new receiver goes aside until merge(); either touch() leaves the other's value as is.
    if (effect.sender) accounts.touch(tx.sender) = *effect.sender;
    if (effect.receiver) accounts.touch(tx.to) = *effect.receiver;

    // Only final results are recorded (tx.h): a transfer that came early may apply later.
    // An existing sender's early one is kept aside, outside the digests, for a tx query to
    // find: its latest few (schema.cc, kNotYetSchema).
    if (!effect.recorded) {
        if (outcome.code == ResultCode::kNonceTooHigh) keep_not_yet(tx, seq, rc);
        return outcome;
    }
    Use insert(insert_tx);
    insert.bind(1, tx.id).bind(2, static_cast<uint64_t>(outcome.code)).bind(3, seq);
    insert.bind(4, outcome.value);
    if (insert.step() != SQLITE_DONE) rc = sqlite3_extended_errcode(db);
    const TxRecord record{tx.id, outcome.code, seq, outcome.value};
    block_records.push_back(record);
    tx_log.emplace(tx.id, record);
    return outcome;
}

// A balance or tx query, answered from the state as it is now.
Outcome State::Impl::answer(const Tx& tx, uint64_t seq, int& rc) {
    Outcome outcome;
    outcome.tx_id = tx.id;
    outcome.seq = seq;
    outcome.query = true;
    if (tx.kind == TxKind::kBalanceQuery) {
        const Account* account = accounts.find(tx.account);
        if (account == nullptr) {
            outcome.code = ResultCode::kUnknownAccount;
        } else {
            outcome.value = account->balance;
            outcome.nonce = account->nonce;
        }
        return outcome;
    }
    TALLY_ASSERT(tx.kind == TxKind::kTxQuery);
    // A final record first: a transfer that came early and applied later has one.
    std::optional<Outcome> found = find_recorded(tx.queried_tx, rc);
    if (!found && rc == SQLITE_OK) found = find_outcome(select_not_yet, tx.queried_tx, rc);
    if (found) {
        outcome.code = found->code;
        outcome.seq = found->seq;
        outcome.value = found->value;
    } else {
        outcome.code = ResultCode::kUnknownTx;
    }
    return outcome;
}

Result<AppliedBlock> State::Impl::run_block(uint64_t seq, uint64_t view,
                                            const std::vector<std::string>& txs, Verify verify,
                                            std::string_view certificate) {
    if (run(begin) != SQLITE_DONE) return io_error("beginning block " + std::to_string(seq));
    block_records.clear();
    AppliedBlock applied;
    applied.outcomes.reserve(txs.size());
    std::vector<crypto::Hash> ids;
    ids.reserve(txs.size());
    int rc = SQLITE_OK;
    for (const std::string& bytes : txs) {
        Outcome outcome;
        outcome.seq = seq;
        auto decoded = decode_tx(bytes);
        if (!decoded) {
            outcome.tx_id = tx_id(bytes);
            outcome.code = ResultCode::kMalformed;
        } else if (verify == Verify::kCheck && !verify_tx(*decoded)) {
            outcome.tx_id = decoded->id;
            outcome.code = ResultCode::kBadSignature;
        } else if (decoded->kind == TxKind::kTransfer) {
            outcome = apply_transfer(*decoded, seq, rc);
        } else {
            outcome = answer(*decoded, seq, rc);
        }
        if (rc != SQLITE_OK) return io_error("applying block " + std::to_string(seq));
        ids.push_back(outcome.tx_id);
        applied.outcomes.push_back(outcome);
    }

    accounts.merge();
    for (const auto& [key, before] : accounts.touched()) {
        const Account& account = *accounts.find(key);
        Use use(log_account);
        use.bind(1, key).bind(2, account.balance).bind(3, account.nonce);
        if (use.step() != SQLITE_DONE) return io_error("writing accounts");
    }
    const uint64_t log_rows = account_log_rows + accounts.touched().size();
    const bool merge_log = log_rows >= kAccountLogMergeRows + account_log_extra_rows;
    if (merge_log && merge_account_log() != SQLITE_OK) return io_error("merging the account log");
    const bool merge_txs = tx_log.size() >= kTxLogMergeRows + tx_log_extra_rows;
    if (merge_txs && merge_tx_log() != SQLITE_OK) return io_error("merging the transaction log");

    BlockHeader& header = applied.header;
    header.height = seq;
    header.seq = seq;
    header.view = view;
    header.prev_hash = last_block.hash();
    header.tx_root = crypto::merkle_root(ids);
    std::sort(block_records.begin(), block_records.end(),
              [](const TxRecord& a, const TxRecord& b) { return a.id < b.id; });
    HistoryChain chain(history);
    for (const TxRecord& record : block_records) chain.add(record);
    block_history = chain.digest();
    header.state_digest = combine_digests(accounts.digest(), block_history);
    header.tx_count = static_cast<uint32_t>(txs.size());
    if (insert_block_row(header, &block_history, certificate) != SQLITE_DONE)
        return io_error("writing block " + std::to_string(seq));
    {
        Use use(set_last_seq);
        use.bind(1, seq);
        if (use.step() != SQLITE_DONE) return io_error("writing last_seq");
    }
    if (commit_or_break() != SQLITE_DONE) return io_error("committing block " + std::to_string(seq));
    account_log_rows = merge_log ? 0 : log_rows;
    if (merge_log) account_log_extra_rows = 0;
    if (merge_txs) {
        tx_log.clear();
        tx_log_extra_rows = 0;
    }
    block_records.clear();  // committed: nothing for abort_block to take back
    return applied;
}

void State::Impl::abort_block() {
    if (!sqlite3_get_autocommit(db) && run(rollback) != SQLITE_DONE) broken = true;
    accounts.undo();
    for (const TxRecord& record : block_records) tx_log.erase(record.id);
    block_records.clear();
}

Result<AppliedBlock> State::apply_block(uint64_t seq, uint64_t view,
                                        const std::vector<std::string>& txs, Verify verify,
                                        std::string_view certificate) {
    Impl& m = *impl_;
    if (m.broken) return m.broken_error();
    if (seq <= m.last_block.seq)
        return make_error("already_applied", "block " + std::to_string(seq) +
                                                 " is at or below the last applied block " +
                                                 std::to_string(m.last_block.seq));
    if (seq != m.last_block.seq + 1)
        return make_error("gap", "block " + std::to_string(seq) + " does not follow block " +
                                     std::to_string(m.last_block.seq));
    if (txs.size() > std::numeric_limits<uint32_t>::max())
        return make_error("oversized", "a block holds at most 2^32-1 transactions");
    TALLY_ASSERT(!m.accounts.in_block());
    auto applied = m.run_block(seq, view, txs, verify, certificate);
    if (!applied) {
        m.abort_block();
        return applied.error();
    }
    m.accounts.keep();
    m.last_block = applied->header;
    m.history = m.block_history;
    m.committed(seq);
    return applied;
}

// ---- reads ----

Outcome State::query(std::string_view tx_envelope) const {
    Impl& m = *impl_;
    Outcome outcome;
    outcome.seq = m.last_block.seq;
    auto decoded = decode_tx(tx_envelope);
    if (!decoded) {
        outcome.tx_id = tx_id(tx_envelope);
        outcome.code = ResultCode::kMalformed;
        return outcome;
    }
    outcome.tx_id = decoded->id;
    if (!verify_tx(*decoded)) {
        outcome.code = ResultCode::kBadSignature;
        return outcome;
    }
    if (decoded->kind == TxKind::kTransfer) {
        outcome.code = ResultCode::kMalformed;  // a transfer is not a query
        return outcome;
    }
    int rc = SQLITE_OK;
    outcome = m.answer(*decoded, m.last_block.seq, rc);
    if (rc != SQLITE_OK) fatal(m.io_error("reading a transaction").message);
    return outcome;
}

uint64_t State::last_seq() const { return impl_->last_block.seq; }
int64_t State::ledger_id() const { return impl_->ledger_id; }
crypto::Hash State::state_digest() const { return impl_->last_block.state_digest; }
crypto::Hash State::history_digest() const { return impl_->history; }
BlockHeader State::last_block() const { return impl_->last_block; }

std::optional<Account> State::account(const crypto::PublicKey& key) const {
    const Account* account = impl_->accounts.find(key);
    if (account == nullptr) return std::nullopt;
    return *account;
}

std::optional<Outcome> State::transaction(const crypto::Hash& tx_id) const {
    int rc = SQLITE_OK;
    auto recorded = impl_->find_recorded(tx_id, rc);
    if (rc != SQLITE_OK) fatal(impl_->io_error("reading a transaction").message);
    return recorded;
}

std::optional<Outcome> State::transfer_outcome(const crypto::Hash& tx_id, const crypto::PublicKey& sender,
                                               uint64_t nonce) const {
    if (!impl_->may_be_recorded(sender, nonce)) return std::nullopt;
    return transaction(tx_id);
}

std::optional<BlockHeader> State::block(uint64_t height) const {
    Use row(impl_->select_block);
    row.bind(1, height);
    int rc = row.step();
    if (rc == SQLITE_DONE) return std::nullopt;
    if (rc != SQLITE_ROW) fatal(impl_->io_error("reading block " + std::to_string(height)).message);
    BlockHeader header;
    crypto::Hash stored{};
    crypto::Hash history{};
    if (!read_block(row, header, stored, history) || header.hash() != stored)
        fatal(impl_->path + ": block " + std::to_string(height) + " is corrupt");
    return header;
}

uint64_t State::total_balance() const {
    uint64_t total = 0;
    impl_->accounts.for_each([&](const Account& account) { total += account.balance; });
    return total;
}

std::vector<Account> State::accounts() const { return impl_->accounts.sorted(); }

}  // namespace tally::ledger
