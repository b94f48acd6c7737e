// The ledger state (state.h): accounts, recorded transactions and hash-chained blocks in
// SQLite, with an in-memory copy of the accounts for cheap reads and digests.
//
// What it trusts: nothing in a batch or a snapshot (both are checked field by field before
// anything changes). The database file is our own, but it is still checked when opened: it
// must carry Tally's application id and schema version, pass `PRAGMA quick_check`, and its
// accounts must hash to the state digest of its last block. After that the database is the
// truth and the in-memory accounts are a cache of it, rebuilt at open and rolled back with it.
//
// Durability: WAL mode, one SQLite transaction per block (accounts, transaction records, the
// block row and last_seq together), so a crash leaves all of a block or none of it. With
// Durability::kEveryBlock (synchronous=FULL) a block is on disk once apply_block() returns;
// with kDeferred (synchronous=NORMAL) it is in the OS and reaches the disk at the next WAL
// checkpoint.
//
// Integers: SQLite stores signed 64-bit integers; every uint64_t (balances, nonces, sequence
// numbers) is stored as the int64_t with the same bits and read back the same way.
#include "ledger/state.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "crypto/assert.h"
#include "crypto/merkle.h"
#include "ledger/account_table.h"
#include "ledger/ledger.pb.h"

namespace tally::ledger {
namespace {

constexpr int64_t kSchemaVersion = kLedgerSchemaVersion;
constexpr int32_t kApplicationId = kLedgerApplicationId;
// This file's identity: a random number drawn when it is created (SQLite's random()), kept in
// meta. The consensus store records it, so that a store and a ledger that were not made
// together are told apart (node/store.h). A ledger made before it existed gets one at open.
constexpr const char* kLedgerIdRow = "('ledger_id', abs(random() >> 1))";
constexpr int kBusyTimeoutMs = 5000;

int64_t to_db(uint64_t v) { return static_cast<int64_t>(v); }
uint64_t from_db(int64_t v) { return static_cast<uint64_t>(v); }

[[noreturn]] void fatal(const std::string& what) {
    std::fprintf(stderr, "tally ledger: fatal: %s\n", what.c_str());
    std::abort();
}

bool is_corruption(int rc) {
    int primary = rc & 0xff;
    return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

// A prepared statement, finalized on destruction.
class Statement {
  public:
    Statement() = default;
    ~Statement() { sqlite3_finalize(stmt_); }
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    int prepare(sqlite3* db, const char* sql) {
        sqlite3_finalize(stmt_);
        stmt_ = nullptr;
        return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
    }
    sqlite3_stmt* get() const { return stmt_; }

  private:
    sqlite3_stmt* stmt_ = nullptr;
};

// Binds, steps and resets one use of a cached statement. Bound blobs must outlive it.
class Use {
  public:
    explicit Use(const Statement& statement) : stmt_(statement.get()) {}
    ~Use() {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;

    Use& bind(int index, uint64_t v) {
        sqlite3_bind_int64(stmt_, index, to_db(v));
        return *this;
    }
    Use& bind(int index, std::string_view blob) {
        // An empty blob, not NULL (which a null pointer would bind).
        sqlite3_bind_blob(stmt_, index, blob.data() != nullptr ? blob.data() : "",
                          static_cast<int>(blob.size()), SQLITE_STATIC);
        return *this;
    }
    Use& null(int index) {
        sqlite3_bind_null(stmt_, index);
        return *this;
    }
    template <size_t N>
    Use& bind(int index, const std::array<uint8_t, N>& a) {
        return bind(index, crypto::as_bytes(a));
    }
    // SQLITE_ROW, SQLITE_DONE or an error code.
    int step() { return sqlite3_step(stmt_); }

    uint64_t u64(int column) const { return from_db(sqlite3_column_int64(stmt_, column)); }
    std::string_view blob(int column) const {
        const void* data = sqlite3_column_blob(stmt_, column);
        int size = sqlite3_column_bytes(stmt_, column);
        if (data == nullptr || size <= 0) return {};
        return std::string_view(static_cast<const char*>(data), static_cast<size_t>(size));
    }
    template <size_t N>
    bool fixed(int column, std::array<uint8_t, N>& out) const {
        auto parsed = crypto::array_from_bytes<N>(blob(column));
        if (!parsed) return false;
        out = *parsed;
        return true;
    }

  private:
    sqlite3_stmt* stmt_;
};

constexpr const char* kSchema = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE accounts(key BLOB PRIMARY KEY, balance INTEGER NOT NULL,
                      nonce INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE transactions(id BLOB PRIMARY KEY, code INTEGER NOT NULL, seq INTEGER NOT NULL,
                          value INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX transactions_by_seq ON transactions(seq);
CREATE TABLE blocks(height INTEGER PRIMARY KEY, seq INTEGER NOT NULL, view INTEGER NOT NULL,
                    prev_hash BLOB NOT NULL, tx_root BLOB NOT NULL, state_digest BLOB NOT NULL,
                    tx_count INTEGER NOT NULL, hash BLOB NOT NULL, history BLOB,
                    certificate BLOB NOT NULL);
)sql" /* then kAccountLogSchema */;

// Why a log: in the accounts table, keyed by a public key, every account a block touches sits
// on a B-tree page of its own once the table is large (a million accounts: ~128 pages of 4 KiB
// rewritten to the WAL per block of 64 transfers, against a few at a thousand). Appended to
// account_log, a block's touched accounts fill a page or two at its end; every
// kAccountLogMerge rows, one statement moves the newest row of each key into the accounts
// table, so an account touched by many blocks meanwhile is written there once. The log's
// newest row of a key is that account; current_accounts is the accounts as of the last block.
constexpr const char* kAccountLogSchema = R"sql(
CREATE TABLE account_log(key BLOB NOT NULL, balance INTEGER NOT NULL, nonce INTEGER NOT NULL);
CREATE VIEW current_accounts(key, balance, nonce) AS
    SELECT key, balance, nonce FROM accounts WHERE key NOT IN (SELECT key FROM account_log)
    UNION ALL
    SELECT key, balance, nonce FROM account_log
        WHERE rowid IN (SELECT max(rowid) FROM account_log GROUP BY key);
)sql";
constexpr const char* kMergeAccountLog = R"sql(
INSERT INTO accounts(key, balance, nonce)
    SELECT key, balance, nonce FROM account_log
        WHERE rowid IN (SELECT max(rowid) FROM account_log GROUP BY key)
    ON CONFLICT(key) DO UPDATE SET balance = excluded.balance, nonce = excluded.nonce;
DELETE FROM account_log;
)sql";
constexpr uint64_t kAccountLogMerge = kAccountLogMergeRows;

// `history` is the history digest after the block: NULL for a block fetched by backfill
// (the records of its seq came with a snapshot). `certificate`: the consensus proof that its
// batch committed (Committed::certificate; empty for genesis and for a snapshot's block
// until backfill brings it).
constexpr const char* kBlockColumns =
    "height, seq, view, prev_hash, tx_root, state_digest, tx_count, hash, history, certificate";

// Reads a row of kBlockColumns; `history` is the history digest after the block (zeros and
// `has_history` false when NULL).
bool read_block(const Use& row, BlockHeader& out, crypto::Hash& stored_hash,
                crypto::Hash& history, bool* has_history = nullptr) {
    out.height = row.u64(0);
    out.seq = row.u64(1);
    out.view = row.u64(2);
    uint64_t count = row.u64(6);
    if (count > std::numeric_limits<uint32_t>::max()) return false;
    out.tx_count = static_cast<uint32_t>(count);
    const bool known = !row.blob(8).empty();
    if (has_history != nullptr) *has_history = known;
    history = crypto::Hash{};
    return row.fixed(3, out.prev_hash) && row.fixed(4, out.tx_root) &&
           row.fixed(5, out.state_digest) && row.fixed(7, stored_hash) &&
           (!known || row.fixed(8, history));
}

bool known_code(uint64_t code) { return code <= static_cast<uint64_t>(ResultCode::kUnknownTx); }


}  // namespace

crypto::Hash BlockHeader::hash() const {

    crypto::Sha256 sha;
    // Not the view: replicas may commit one batch in different views (a batch prepared in
    // view v and re-proposed by NEW-VIEW), and must still agree on every block hash.
    sha.update_u64(height).update_u64(seq);
    sha.update(prev_hash).update(tx_root).update(state_digest);
    std::array<char, 4> count = {static_cast<char>(tx_count >> 24),
                                 static_cast<char>(tx_count >> 16),
                                 static_cast<char>(tx_count >> 8), static_cast<char>(tx_count)};
    sha.update(std::string_view(count.data(), count.size()));
    return sha.finish();
}

crypto::Hash combine_digests(const crypto::Hash& accounts, const crypto::Hash& history) {
    return crypto::Sha256().update(accounts).update(history).finish();
}

HistoryChain::HistoryChain(const crypto::Hash& start) : head_(start) {}
HistoryChain::~HistoryChain() = default;

void HistoryChain::add(const TxRecord& record) {
    TALLY_ASSERT(!any_ || record.seq > last_seq_ ||
                 (record.seq == last_seq_ && last_id_ < record.id && open_ != nullptr));
    if (open_ != nullptr && record.seq != open_seq_) digest();
    if (open_ == nullptr) {
        open_ = std::make_unique<crypto::Sha256>();
        open_->update(head_).update_u64(record.seq);
        open_seq_ = record.seq;
    }
    open_->update(record.id).update_u64(static_cast<uint64_t>(record.code)).update_u64(record.value);
    any_ = true;
    last_seq_ = record.seq;
    last_id_ = record.id;
}

crypto::Hash HistoryChain::digest() {
    if (open_ != nullptr) {
        head_ = open_->finish();
        open_.reset();
    }
    return head_;
}

struct State::Impl {
    sqlite3* db = nullptr;
    std::string path;
    int64_t ledger_id = 0;  // meta's ledger_id: this file's identity

    Statement begin, commit, rollback;
    Statement select_tx, insert_tx, upsert_account, log_account, insert_block, select_block, set_last_seq;
    Statement select_certificate, set_certificate;

    // Invariant: equals the accounts table as of last_block (between calls), so
    // accounts.digest() == digest_accounts(accounts.sorted()) and combined with `history` it
    // is last_block.state_digest.
    AccountTable accounts;
    uint64_t account_log_rows = 0;  // rows in account_log (kAccountLogSchema)
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
    bool wal_checkpointed = false;  // set by the WAL hook, read after each commit
    std::function<void(uint64_t)> sync_observer;
    // The WAL hook: SQLite's own automatic checkpoint (every kWalAutocheckpointPages), which
    // syncs the WAL before it copies it into the database; noted so that synced_seq knows.
    static int on_wal_commit(void* self, sqlite3* db, const char* name, int pages);
    // After a commit of block `seq` (or of a snapshot at `seq`).
    void committed(uint64_t seq);
    void notify_synced() {
        if (sync_observer) sync_observer(synced_seq);
    }

    // sqlite3_close_v2 defers the close until the statements (members, destroyed after this
    // body runs) are finalized.
    ~Impl() { sqlite3_close_v2(db); }

    Error io_error(const std::string& what) const {
        return make_error("io", path + ": " + what + ": " + sqlite3_errmsg(db));
    }
    Error open_error(int rc, const std::string& what) const {
        if (is_corruption(rc))
            return make_error("corrupt", path + ": not a valid Tally database (" + what + ": " +
                                             sqlite3_errmsg(db) + ")");
        return io_error(what);
    }

    int exec(const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); }
    int run(const Statement& statement) {
        Use use(statement);
        return use.step();
    }

    int prepare_statements();
    Status initialize(const Genesis& genesis);
    Status load();
    Status check_database();

    std::optional<Outcome> find_recorded(const crypto::Hash& id, int& rc);
    Outcome apply_transfer(const Tx& tx, uint64_t seq, int& rc);
    Outcome answer(const Tx& tx, uint64_t seq, int& rc);
    Result<AppliedBlock> run_block(uint64_t seq, uint64_t view, const std::vector<std::string>& txs,
                                   Verify verify, std::string_view certificate);
    void abort_block();
};

// SQLite's default: checkpoint once the WAL holds this many pages.
constexpr int kWalAutocheckpointPages = 1000;

int State::Impl::on_wal_commit(void* self, sqlite3* db, const char* name, int pages) {
    if (pages < kWalAutocheckpointPages) return SQLITE_OK;
    int log = -1, done = -1;
    int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    // Complete: the WAL was synced and copied, so everything committed is durable.
    if (rc == SQLITE_OK && log >= 0 && log == done) static_cast<Impl*>(self)->wal_checkpointed = true;
    return SQLITE_OK;  // an incomplete checkpoint is retried at the next commit, as SQLite's own
}

void State::Impl::committed(uint64_t seq) {
    if (!deferred) {
        synced_seq = seq;
        return;
    }
    if (!wal_checkpointed) return;
    wal_checkpointed = false;
    synced_seq = seq;
    notify_synced();
}

int State::Impl::prepare_statements() {
    struct Entry {
        Statement* statement;
        const char* sql;
    };
    const std::string select_block_sql =
        std::string("SELECT ") + kBlockColumns + " FROM blocks WHERE height = ?1";
    const std::string insert_block_sql = std::string("INSERT INTO blocks(") + kBlockColumns +
                                         ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
    const Entry entries[] = {
        {&begin, "BEGIN IMMEDIATE"},
        {&commit, "COMMIT"},
        {&rollback, "ROLLBACK"},
        {&select_tx, "SELECT code, seq, value FROM transactions WHERE id = ?1"},
        {&insert_tx, "INSERT INTO transactions(id, code, seq, value) VALUES(?1, ?2, ?3, ?4)"},
        {&upsert_account,
         "INSERT INTO accounts(key, balance, nonce) VALUES(?1, ?2, ?3) "
         "ON CONFLICT(key) DO UPDATE SET balance = excluded.balance, nonce = excluded.nonce"},
        {&log_account, "INSERT INTO account_log(key, balance, nonce) VALUES(?1, ?2, ?3)"},
        {&insert_block, insert_block_sql.c_str()},
        {&select_block, select_block_sql.c_str()},
        {&set_last_seq, "UPDATE meta SET value = ?1 WHERE key = 'last_seq'"},
        {&select_certificate, "SELECT certificate FROM blocks WHERE height = ?1"},
        {&set_certificate, "UPDATE blocks SET certificate = ?2 WHERE height = ?1"},
    };
    for (const Entry& entry : entries) {
        int rc = entry.statement->prepare(db, entry.sql);
        if (rc != SQLITE_OK) return rc;
    }
    return SQLITE_OK;
}

Status State::Impl::initialize(const Genesis& genesis) {
    std::map<crypto::PublicKey, Account> seeded;
    for (const Account& account : genesis.accounts)
        if (!seeded.emplace(account.key, account).second)
            return make_error("bad_genesis", "genesis lists account " +
                                                 crypto::key_to_hex(account.key) + " twice");
    for (uint64_t i = 0; i < genesis.ballast.accounts; ++i) {
        const Account account{ballast_key(i), genesis.ballast.balance, 0};
        if (!seeded.emplace(account.key, account).second)
            return make_error("bad_genesis", "genesis lists ballast account " + std::to_string(i) +
                                                 " (" + crypto::key_to_hex(account.key) + ") as an account too");
    }

    int rc = exec("PRAGMA journal_mode=WAL");
    if (rc != SQLITE_OK) return open_error(rc, "setting WAL mode");
    rc = exec("BEGIN IMMEDIATE");
    if (rc != SQLITE_OK) return open_error(rc, "creating the schema");
    const std::string header = "PRAGMA application_id = " + std::to_string(kApplicationId) +
                               "; INSERT INTO meta VALUES('schema_version', " +
                               std::to_string(kSchemaVersion) + "), ('last_seq', 0), " +
                               kLedgerIdRow + ";";
    rc = exec(kSchema);
    if (rc == SQLITE_OK) rc = exec(kAccountLogSchema);
    if (rc == SQLITE_OK) rc = exec(header.c_str());
    if (rc == SQLITE_OK) rc = prepare_statements();

    BlockHeader genesis_block;
    genesis_block.tx_root = crypto::merkle_root({});
    std::vector<Account> sorted;
    for (const auto& [key, account] : seeded) sorted.push_back(account);
    genesis_block.state_digest = combine_digests(digest_accounts(sorted), crypto::Hash{});
    for (const auto& [key, account] : seeded) {
        if (rc != SQLITE_OK) break;
        Use use(upsert_account);
        use.bind(1, key).bind(2, account.balance).bind(3, account.nonce);
        rc = use.step() == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
    }
    const crypto::Hash hash = genesis_block.hash();
    if (rc == SQLITE_OK) {
        Use use(insert_block);
        use.bind(1, uint64_t{0}).bind(2, uint64_t{0}).bind(3, uint64_t{0});
        use.bind(4, genesis_block.prev_hash).bind(5, genesis_block.tx_root);
        const crypto::Hash no_history{};  // bound blobs must outlive the statement's use
        use.bind(6, genesis_block.state_digest).bind(7, uint64_t{0}).bind(8, hash);
        use.bind(9, no_history).bind(10, std::string_view());
        rc = use.step() == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
    }
    if (rc == SQLITE_OK) rc = exec("COMMIT");
    if (rc != SQLITE_OK) {
        Error error = open_error(rc, "writing genesis");
        if (!sqlite3_get_autocommit(db)) exec("ROLLBACK");
        return error;
    }
    accounts = AccountTable(std::move(sorted));
    last_block = genesis_block;
    Statement id_row;
    if (id_row.prepare(db, "SELECT value FROM meta WHERE key = 'ledger_id'") != SQLITE_OK)
        return open_error(sqlite3_errcode(db), "reading the ledger id");
    Use row(id_row);
    if (row.step() != SQLITE_ROW) return open_error(sqlite3_errcode(db), "reading the ledger id");
    ledger_id = static_cast<int64_t>(row.u64(0));
    return Ok{};
}

// Refuses anything that is not a healthy Tally database of this schema version.
Status State::Impl::check_database() {
    sqlite3_stmt* raw = nullptr;
    auto scalar = [&](const char* sql, int64_t& out, std::string& text) -> int {
        int rc = sqlite3_prepare_v2(db, sql, -1, &raw, nullptr);
        if (rc != SQLITE_OK) return rc;
        rc = sqlite3_step(raw);
        if (rc == SQLITE_ROW) {
            out = sqlite3_column_int64(raw, 0);
            const unsigned char* t = sqlite3_column_text(raw, 0);
            text = t ? reinterpret_cast<const char*>(t) : "";
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            rc = SQLITE_NOTFOUND;
        }
        sqlite3_finalize(raw);
        raw = nullptr;
        return rc;
    };
    auto corrupt = [&](const std::string& why) {
        return make_error("corrupt", path + ": not a valid Tally database (" + why + ")");
    };
    int64_t value = 0;
    std::string text;
    int rc = scalar("PRAGMA application_id", value, text);
    if (rc != SQLITE_OK) return open_error(rc, "reading the application id");
    if (value != kApplicationId) return corrupt("it is an SQLite database of another program");
    rc = scalar("SELECT value FROM meta WHERE key = 'schema_version'", value, text);
    if (rc != SQLITE_OK) return corrupt("no schema version");
    if (value == 3)
        return make_error("corrupt", path + ": a ledger of schema version 3, made by an older "
                                            "tally, expected 4 (blocks now keep their commit "
                                            "certificates). Start a new network folder, or remove "
                                            "this replica's data folder and start it again: it "
                                            "fetches the ledger from its peers");
    if (value == 4) {
        // Version 5 added the account log: a version 4 file is one whose log is empty.
        const std::string upgrade = std::string("BEGIN IMMEDIATE;") + kAccountLogSchema +
                                    "UPDATE meta SET value = 5 WHERE key = 'schema_version'; COMMIT;";
        rc = exec(upgrade.c_str());
        if (rc != SQLITE_OK) {
            if (!sqlite3_get_autocommit(db)) exec("ROLLBACK");
            return open_error(rc, "upgrading the ledger from schema version 4 to 5");
        }
        value = kSchemaVersion;
    }
    if (value != kSchemaVersion)
        return corrupt("schema version " + std::to_string(value) + ", expected " +
                       std::to_string(kSchemaVersion));
    rc = scalar("PRAGMA quick_check", value, text);
    if (rc != SQLITE_OK) return open_error(rc, "integrity check");
    if (text != "ok") return corrupt("integrity check: " + text);
    rc = prepare_statements();
    if (rc != SQLITE_OK) return corrupt(std::string("schema: ") + sqlite3_errmsg(db));
    return Ok{};
}

Status State::Impl::load() {
    auto corrupt = [&](const std::string& why) {
        return make_error("corrupt", path + ": not a valid Tally database (" + why + ")");
    };
    Statement all_accounts, last_seq_row, log_rows;
    if (all_accounts.prepare(db, "SELECT key, balance, nonce FROM current_accounts ORDER BY key") !=
            SQLITE_OK ||
        log_rows.prepare(db, "SELECT count(*) FROM account_log") != SQLITE_OK ||
        last_seq_row.prepare(db, "SELECT value FROM meta WHERE key = 'last_seq'") != SQLITE_OK)
        return corrupt(std::string("schema: ") + sqlite3_errmsg(db));

    std::vector<Account> loaded;
    {
        Use rows(all_accounts);
        int rc;
        while ((rc = rows.step()) == SQLITE_ROW) {
            Account account;
            if (!rows.fixed(0, account.key)) return corrupt("an account key is not 32 bytes");
            account.balance = rows.u64(1);
            account.nonce = rows.u64(2);
            // ORDER BY key sorts blobs with memcmp, the order of PublicKey's operator<.
            if (!loaded.empty() && !(loaded.back().key < account.key))
                return corrupt("accounts out of order");
            loaded.push_back(account);
        }
        if (rc != SQLITE_DONE) return open_error(rc, "reading accounts");
    }
    uint64_t last_seq = 0;
    {
        Use row(last_seq_row);
        int rc = row.step();
        if (rc != SQLITE_ROW)
            return rc == SQLITE_DONE ? corrupt("no last_seq") : open_error(rc, "reading last_seq");
        last_seq = row.u64(0);
    }
    BlockHeader block;
    crypto::Hash block_history{};
    {
        Use row(select_block);
        row.bind(1, last_seq);
        int rc = row.step();
        if (rc != SQLITE_ROW)
            return rc == SQLITE_DONE ? corrupt("no block at last_seq " + std::to_string(last_seq))
                                     : open_error(rc, "reading the last block");
        crypto::Hash stored{};
        bool has_history = false;
        if (!read_block(row, block, stored, block_history, &has_history) || !has_history)
            return corrupt("a malformed block row");
        if (block.hash() != stored || block.height != last_seq || block.seq != last_seq)
            return corrupt("block " + std::to_string(last_seq) + " does not match its hash");
    }
    if (combine_digests(digest_accounts(loaded), block_history) != block.state_digest)
        return corrupt("the accounts do not hash to block " + std::to_string(last_seq) +
                       "'s state digest");
    int64_t id = 0;
    {
        Statement id_row;
        std::string insert = std::string("INSERT OR IGNORE INTO meta VALUES") + kLedgerIdRow;
        if (exec(insert.c_str()) != SQLITE_OK ||
            id_row.prepare(db, "SELECT value FROM meta WHERE key = 'ledger_id'") != SQLITE_OK)
            return open_error(sqlite3_errcode(db), "reading the ledger id");
        Use row(id_row);
        if (row.step() != SQLITE_ROW) return corrupt("no ledger_id");
        id = static_cast<int64_t>(row.u64(0));
    }
    {
        Use row(log_rows);
        if (row.step() != SQLITE_ROW) return open_error(sqlite3_errcode(db), "counting the account log");
        account_log_rows = row.u64(0);
    }
    ledger_id = id;
    accounts = AccountTable(std::move(loaded));
    last_block = block;
    history = block_history;
    return Ok{};
}

Result<std::unique_ptr<State>> State::open(const std::string& path, const Genesis& genesis,
                                          Durability durability) {
    auto impl = std::make_unique<Impl>();
    impl->path = path;
    int rc =
        sqlite3_open_v2(path.c_str(), &impl->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        if (impl->db == nullptr) return make_error("io", path + ": cannot open: out of memory");
        return impl->open_error(rc, "opening");
    }
    sqlite3_extended_result_codes(impl->db, 1);
    sqlite3_busy_timeout(impl->db, kBusyTimeoutMs);

    // Reading the schema is the first read of the file: it tells a database from garbage.
    sqlite3_stmt* count_tables = nullptr;
    rc = sqlite3_prepare_v2(impl->db, "SELECT count(*) FROM sqlite_master", -1, &count_tables,
                            nullptr);
    int64_t tables = 0;
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(count_tables);
        if (rc == SQLITE_ROW) {
            tables = sqlite3_column_int64(count_tables, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(count_tables);
    if (rc != SQLITE_OK) return impl->open_error(rc, "reading the schema");

    rc = impl->exec(durability == Durability::kEveryBlock
                        ? "PRAGMA synchronous=FULL; PRAGMA cache_size=-32768"
                        : "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-32768");
    if (rc != SQLITE_OK) return impl->open_error(rc, "setting pragmas");
    impl->deferred = durability == Durability::kDeferred && path != ":memory:";
    if (impl->deferred) sqlite3_wal_hook(impl->db, &Impl::on_wal_commit, impl.get());
    if (tables == 0) {
        Status status = impl->initialize(genesis);
        if (!status) return status.error();
    } else {
        rc = impl->exec("PRAGMA journal_mode=WAL");
        if (rc != SQLITE_OK) return impl->open_error(rc, "setting WAL mode");
        Status status = impl->check_database();
        if (!status) return status.error();
        status = impl->load();
        if (!status) return status.error();
    }
    // What open() finds is what the disk holds (a file opened after a crash is its synced
    // state; a new one starts at genesis, which a power loss could take: it is then made again).
    impl->synced_seq = impl->last_block.seq;
    return std::unique_ptr<State>(new State(std::move(impl)));
}

Result<std::unique_ptr<State>> State::open_image(std::string_view image) {
    auto impl = std::make_unique<Impl>();
    impl->path = ":memory: (image)";
    int rc = sqlite3_open_v2(":memory:", &impl->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) return make_error("io", "cannot open an in-memory ledger");
    sqlite3_extended_result_codes(impl->db, 1);
    auto* bytes = static_cast<unsigned char*>(sqlite3_malloc64(image.size()));
    if (bytes == nullptr && !image.empty()) return make_error("io", "out of memory");
    if (!image.empty()) std::memcpy(bytes, image.data(), image.size());
    const auto size = static_cast<sqlite3_int64>(image.size());
    rc = sqlite3_deserialize(impl->db, "main", bytes, size, size,
                             SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE);
    if (rc != SQLITE_OK) return impl->open_error(rc, "loading an image");
    Status status = impl->check_database();
    if (!status) return status.error();
    status = impl->load();
    if (!status) return status.error();
    impl->synced_seq = impl->last_block.seq;
    return std::unique_ptr<State>(new State(std::move(impl)));
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
    if (m.broken)
        return make_error("io", m.path + ": an earlier write failed uncertainly; reopen the ledger");
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

uint64_t State::synced_seq() const { return impl_->synced_seq; }

void State::set_sync_observer(std::function<void(uint64_t)> observer) {
    impl_->sync_observer = std::move(observer);
}

State::State(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
State::~State() = default;

// ---- applying blocks ----

std::optional<Outcome> State::Impl::find_recorded(const crypto::Hash& id, int& rc) {
    Use row(select_tx);
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

// The checks of a transfer, in the order tx.h documents, then its effect and its record.
Outcome State::Impl::apply_transfer(const Tx& tx, uint64_t seq, int& rc) {
    Outcome outcome;
    outcome.tx_id = tx.id;
    outcome.seq = seq;
    if (auto first = find_recorded(tx.id, rc)) {
        first->duplicate = true;
        return *first;
    }
    if (rc != SQLITE_OK) return outcome;

    const Account* from = accounts.find(tx.sender);
    bool consumes_nonce = false;
    if (from == nullptr) {
        outcome.code = ResultCode::kUnknownSender;
    } else if (tx.nonce <= from->nonce) {
        outcome.code = ResultCode::kNonceTooLow;
    } else if (tx.nonce - from->nonce > 1) {
        outcome.code = ResultCode::kNonceTooHigh;
        outcome.nonce = from->nonce;  // it stays not-yet while the account's nonce stays this
    } else {
        consumes_nonce = true;
        const Account* to = accounts.find(tx.to);
        uint64_t to_balance = to == nullptr ? 0 : to->balance;
        if (tx.amount == 0)
            outcome.code = ResultCode::kZeroAmount;
        else if (tx.to == tx.sender)
            outcome.code = ResultCode::kSelfTransfer;
        else if (from->balance < tx.amount)
            outcome.code = ResultCode::kInsufficientFunds;
        else if (to_balance > std::numeric_limits<uint64_t>::max() - tx.amount)
            outcome.code = ResultCode::kOverflow;
    }
    if (consumes_nonce) {
        Account& sender = accounts.touch(tx.sender);
        sender.nonce = tx.nonce;
        if (outcome.code == ResultCode::kOk) {
            sender.balance -= tx.amount;
            // `sender` stays valid: a new recipient goes aside until merge().
            accounts.touch(tx.to).balance += tx.amount;
        }
    }

    // Only final results are recorded (tx.h): a transfer that came early may apply later.
    if (outcome.code == ResultCode::kUnknownSender || outcome.code == ResultCode::kNonceTooHigh)
        return outcome;
    Use insert(insert_tx);
    insert.bind(1, tx.id).bind(2, static_cast<uint64_t>(outcome.code)).bind(3, seq);
    insert.bind(4, outcome.value);
    if (insert.step() != SQLITE_DONE) rc = sqlite3_extended_errcode(db);
    block_records.push_back(TxRecord{tx.id, outcome.code, seq, outcome.value});
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
    if (auto recorded = find_recorded(tx.queried_tx, rc)) {
        outcome.code = recorded->code;
        outcome.seq = recorded->seq;
        outcome.value = recorded->value;
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
    const bool merge_log = log_rows >= kAccountLogMerge;
    if (merge_log && exec(kMergeAccountLog) != SQLITE_OK) return io_error("merging the account log");

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
    {
        Use use(insert_block);
        use.bind(1, header.height).bind(2, header.seq).bind(3, header.view);
        use.bind(4, header.prev_hash).bind(5, header.tx_root).bind(6, header.state_digest);
        const crypto::Hash hash = header.hash();
        use.bind(7, uint64_t{header.tx_count}).bind(8, hash).bind(9, block_history);
        use.bind(10, certificate);
        if (use.step() != SQLITE_DONE) return io_error("writing block " + std::to_string(seq));
    }
    {
        Use use(set_last_seq);
        use.bind(1, seq);
        if (use.step() != SQLITE_DONE) return io_error("writing last_seq");
    }
    rc = run(commit);
    if (rc != SQLITE_DONE) {
        int extended = sqlite3_extended_errcode(db);
        // A failed fsync may have left the commit on disk after all: trust nothing more.
        if (extended == SQLITE_IOERR_FSYNC || extended == SQLITE_IOERR_DIR_FSYNC) broken = true;
        return io_error("committing block " + std::to_string(seq));
    }
    account_log_rows = merge_log ? 0 : log_rows;
    return applied;
}

void State::Impl::abort_block() {
    if (!sqlite3_get_autocommit(db) && run(rollback) != SQLITE_DONE) broken = true;
    accounts.undo();
}

Result<AppliedBlock> State::apply_block(uint64_t seq, uint64_t view,
                                        const std::vector<std::string>& txs, Verify verify,
                                        std::string_view certificate) {
    Impl& m = *impl_;
    if (m.broken)
        return make_error("io",
                          m.path + ": an earlier write failed uncertainly; reopen the ledger");
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

// ---- snapshots ----

SnapshotPoint State::snapshot_point() const {
    const Impl& m = *impl_;
    TALLY_ASSERT(!m.accounts.in_block());
    return SnapshotPoint{m.last_block, m.history, m.accounts.share()};
}

namespace {

// Protobuf's byte budget per item, near enough: fields, tags and lengths.
constexpr size_t kAccountRecordBytes = 32 + 2 * 10 + 6;
constexpr size_t kTxRecordBytes = 32 + 5 + 2 * 10 + 6;

void put_block(const BlockHeader& header, pb::BlockRecord& out) {
    out.set_height(header.height);
    out.set_seq(header.seq);
    out.set_view(header.view);
    out.set_prev_hash(std::string(crypto::as_bytes(header.prev_hash)));
    out.set_tx_root(std::string(crypto::as_bytes(header.tx_root)));
    out.set_state_digest(std::string(crypto::as_bytes(header.state_digest)));
    out.set_tx_count(header.tx_count);
}

std::optional<BlockHeader> get_block(const pb::BlockRecord& in) {
    BlockHeader header;
    header.height = in.height();
    header.seq = in.seq();
    header.view = in.view();
    header.tx_count = in.tx_count();
    auto prev = crypto::array_from_bytes<32>(in.prev_hash());
    auto root = crypto::array_from_bytes<32>(in.tx_root());
    auto digest = crypto::array_from_bytes<32>(in.state_digest());
    if (!prev || !root || !digest) return std::nullopt;
    header.prev_hash = *prev;
    header.tx_root = *root;
    header.state_digest = *digest;
    return header;
}

// The view is not part of a block's identity: honest replicas may commit one batch in
// different views (BlockHeader::view), and pieces from two of them must compare equal.
bool same_block(const BlockHeader& a, const BlockHeader& b) { return a.hash() == b.hash(); }

// (seq, id) order, the order records stream in.
bool record_before(uint64_t seq_a, const crypto::Hash& id_a, uint64_t seq_b,
                   const crypto::Hash& id_b) {
    return seq_a < seq_b || (seq_a == seq_b && id_a < id_b);
}

}  // namespace

Result<std::string> State::snapshot_chunk(const SnapshotPoint& point, std::string_view cursor_bytes,
                                          size_t max_bytes) const {
    const Impl& m = *impl_;
    pb::SnapshotCursor cursor;
    if (cursor_bytes.size() > 1024 ||
        !cursor.ParseFromArray(cursor_bytes.data(), static_cast<int>(cursor_bytes.size())))
        return make_error("malformed", "snapshot cursor: does not decode");
    TALLY_ASSERT(point.accounts != nullptr);
    pb::SnapshotChunk chunk;
    put_block(point.last_block, *chunk.mutable_last_block());
    chunk.set_history(std::string(crypto::as_bytes(point.history)));
    size_t budget = std::max<size_t>(max_bytes, kTxRecordBytes);

    if (!cursor.records()) {
        std::optional<crypto::PublicKey> after;
        if (!cursor.after_key().empty()) {
            auto key = crypto::array_from_bytes<32>(cursor.after_key());
            if (!key) return make_error("malformed", "snapshot cursor: a key is not 32 bytes");
            after = *key;
        }
        bool more = false;
        point.accounts->for_each_after(after ? &*after : nullptr, [&](const Account& account) {
            if (budget < kAccountRecordBytes) return !(more = true);
            pb::AccountRecord* record = chunk.add_accounts();
            record->set_key(std::string(crypto::as_bytes(account.key)));
            record->set_balance(account.balance);
            record->set_nonce(account.nonce);
            budget -= kAccountRecordBytes;
            return true;
        });
        if (more) return chunk.SerializeAsString();
        chunk.set_accounts_end(true);
        // The records follow, from the first block the asker lacks.
        cursor.set_records(true);
        cursor.clear_after_id();
        cursor.set_after_seq(cursor.since_seq());
    }

    // Records by (seq, id), through the point, after the cursor.
    Statement page;
    if (page.prepare(m.db,
                     "SELECT id, code, seq, value FROM transactions "
                     "WHERE seq <= ?1 AND (seq, id) > (?2, ?3) ORDER BY seq, id LIMIT ?4") !=
        SQLITE_OK)
        fatal(m.io_error("reading transactions").message);
    const uint64_t limit = budget / kTxRecordBytes;
    if (limit == 0) return chunk.SerializeAsString();
    Use rows(page);
    rows.bind(1, point.last_block.seq).bind(2, cursor.after_seq());
    // No record yet: after every record of block after_seq (ids are 32 bytes; 33 sort above).
    const std::string after_id = cursor.after_id().empty() ? std::string(33, '\xff') : cursor.after_id();
    rows.bind(3, std::string_view(after_id)).bind(4, limit);
    uint64_t read = 0;
    int rc;
    while ((rc = rows.step()) == SQLITE_ROW) {
        pb::TxRecord* record = chunk.add_records();
        record->set_id(std::string(rows.blob(0)));
        record->set_code(static_cast<uint32_t>(rows.u64(1)));
        record->set_seq(rows.u64(2));
        record->set_value(rows.u64(3));
        ++read;
    }
    if (rc != SQLITE_DONE) fatal(m.io_error("reading transactions").message);
    if (read < limit) chunk.set_records_end(true);
    return chunk.SerializeAsString();
}

struct SnapshotImport::Impl {
    State::Impl& state;
    uint64_t seq;
    crypto::Hash expected{};  // the hash of the snapshot's block, which 2f+1 signed
    std::string next_cursor;

    std::optional<BlockHeader> last_block;  // from the first chunk; every chunk repeats it
    crypto::Hash history{};
    std::vector<Account> accounts;  // sorted, as they come
    bool accounts_done = false;
    HistoryChain chain;
    uint64_t last_record_seq = 0;  // of the last record staged (since_seq before the first)
    crypto::Hash last_record_id{};
    uint64_t records = 0;
    bool complete = false;
    Statement stage;

    // What the ledger holds already: its records through since_seq stay, and the chain of
    // the new ones starts from its history digest there. 0 and zeros for a whole snapshot.
    uint64_t since_seq = 0;

    Impl(State::Impl& s, uint64_t q, const crypto::Hash& e, uint64_t since,
         const crypto::Hash& since_history)
        : state(s), seq(q), expected(e), chain(since_history), since_seq(since) {}

    bool failed = false;  // a last piece failed after the chain took its records

    Status add(std::string_view bytes);
};

// A piece is checked completely before any of it is kept: its block, its accounts, its
// records (ids unique in the piece, in order after the last one kept), then staged in one
// SQLite transaction (a record id staged before is the peer's lie too), and the digests it
// completes. Only then do the import's cursor, accounts and history chain move: a piece that
// fails leaves nothing behind, so the next peer's answer to the same cursor is judged alone.
Status SnapshotImport::Impl::add(std::string_view bytes) {
    auto malformed = [&](const std::string& why) {
        return make_error("malformed", "snapshot at " + std::to_string(seq) + ": " + why);
    };
    auto mismatch = [&](const std::string& why) {
        return make_error("digest_mismatch", "snapshot at " + std::to_string(seq) + ": " + why);
    };
    if (complete) return malformed("a chunk after the last");
    if (failed) return malformed("an earlier chunk failed: start a new import");
    pb::SnapshotChunk chunk;
    if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
        !chunk.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
        return malformed("a chunk does not decode");
    auto block = get_block(chunk.last_block());
    auto history_field = crypto::array_from_bytes<32>(chunk.history());
    if (!block || !history_field) return malformed("a hash is not 32 bytes");
    if (block->seq != seq || block->height != seq)
        return malformed("a chunk is of block " + std::to_string(block->seq));
    // The whole header (but the view, which is not hashed) is what 2f+1 replicas signed.
    if (block->hash() != expected)
        return mismatch("its block hashes to " + crypto::to_hex(block->hash()).substr(0, 16) +
                        ", not to the proven " + crypto::to_hex(expected).substr(0, 16));
    if (last_block && (!same_block(*last_block, *block) || history != *history_field))
        return malformed("chunks of one snapshot name different blocks");

    const bool progress = chunk.accounts_size() > 0 || chunk.records_size() > 0 ||
                          chunk.accounts_end() || chunk.records_end();
    if (!progress) return malformed("an empty chunk");
    if ((chunk.accounts_size() > 0 || chunk.accounts_end()) && accounts_done)
        return malformed("accounts after their end");
    if ((chunk.records_size() > 0 || chunk.records_end()) && !accounts_done && !chunk.accounts_end())
        return malformed("records before the accounts' end");

    // Accounts: in key order after the last kept, each once.
    std::vector<Account> new_accounts;
    new_accounts.reserve(static_cast<size_t>(chunk.accounts_size()));
    const Account* prev_account = accounts.empty() ? nullptr : &accounts.back();
    for (const pb::AccountRecord& record : chunk.accounts()) {
        auto key = crypto::array_from_bytes<32>(record.key());
        if (!key) return malformed("an account key is not 32 bytes");
        if (prev_account != nullptr && !(prev_account->key < *key))
            return malformed("accounts are not sorted by key, or repeat one");
        new_accounts.push_back(Account{*key, record.balance(), record.nonce()});
        prev_account = &new_accounts.back();
    }
    // Records: sizes, codes, range, (seq, id) order after the last kept, ids unique.
    std::vector<TxRecord> new_records;
    new_records.reserve(static_cast<size_t>(chunk.records_size()));
    std::set<crypto::Hash> ids;
    uint64_t prev_seq = last_record_seq;
    crypto::Hash prev_id = last_record_id;
    bool first = records == 0;
    for (const pb::TxRecord& record : chunk.records()) {
        auto id = crypto::array_from_bytes<32>(record.id());
        if (!id) return malformed("a transaction id is not 32 bytes");
        if (!known_code(record.code())) return malformed("a transaction has an unknown code");
        if (record.seq() <= since_seq || record.seq() > seq)
            return malformed("a transaction is from block " + std::to_string(record.seq()));
        if (!first && !record_before(prev_seq, prev_id, record.seq(), *id))
            return malformed("records are not sorted by (seq, id), or repeat one");
        if (!ids.insert(*id).second)
            return malformed("transaction id " + crypto::to_hex(*id).substr(0, 16) +
                             " is recorded twice");
        first = false;
        prev_seq = record.seq();
        prev_id = *id;
        new_records.push_back(
            TxRecord{*id, static_cast<ResultCode>(record.code()), record.seq(), record.value()});
    }
    // The accounts complete: they must hash, with the history, to the block's state digest.
    if (chunk.accounts_end()) {
        std::vector<Account> all;
        all.reserve(accounts.size() + new_accounts.size());
        all.insert(all.end(), accounts.begin(), accounts.end());
        all.insert(all.end(), new_accounts.begin(), new_accounts.end());
        const crypto::Hash accounts_digest = digest_accounts(all);
        if (combine_digests(accounts_digest, *history_field) != block->state_digest)
            return mismatch("its accounts hash to " + crypto::to_hex(accounts_digest).substr(0, 16) +
                            ", not to the proven state digest");
    }

    // Staged in one transaction; a failure rolls all of this piece back.
    State::Impl& m = state;
    if (!new_records.empty()) {
        if (m.broken)
            return make_error("io", m.path + ": an earlier write failed uncertainly; reopen the ledger");
        if (m.run(m.begin) != SQLITE_DONE) return m.io_error("staging snapshot records");
        bool duplicate = false;
        auto fail = [&] {
            Error error = duplicate ? malformed("a transaction id repeats one of an earlier piece")
                                    : m.io_error("staging snapshot records");
            if (!sqlite3_get_autocommit(m.db)) m.run(m.rollback);
            return error;
        };
        for (const TxRecord& record : new_records) {
            Use use(stage);
            use.bind(1, record.id).bind(2, static_cast<uint64_t>(record.code)).bind(3, record.seq);
            use.bind(4, record.value);
            const int rc = use.step();
            if (rc != SQLITE_DONE) {
                duplicate = (sqlite3_extended_errcode(m.db) & 0xff) == SQLITE_CONSTRAINT;
                return fail();
            }
        }
        // The last piece: the records must hash to the history digest before they are kept.
        if (chunk.records_end()) {
            for (const TxRecord& record : new_records) chain.add(record);
            if (chain.digest() != *history_field) {
                if (!sqlite3_get_autocommit(m.db)) m.run(m.rollback);
                failed = true;  // the chain has moved on: this import is spent
                return mismatch("its transaction records do not hash to its history digest");
            }
        }
        if (m.run(m.commit) != SQLITE_DONE) return fail();
        m.committed(m.last_block.seq);  // a WAL checkpoint here synced the blocks so far
        if (!chunk.records_end())
            for (const TxRecord& record : new_records) chain.add(record);
    } else if (chunk.records_end() && chain.digest() != *history_field) {
        failed = true;
        return mismatch("its transaction records do not hash to its history digest");
    }

    // Kept: the import moves on.
    if (!last_block) {
        last_block = *block;
        history = *history_field;
    }
    accounts.insert(accounts.end(), new_accounts.begin(), new_accounts.end());
    if (chunk.accounts_end()) accounts_done = true;
    if (!new_records.empty()) {
        records += new_records.size();
        last_record_seq = prev_seq;
        last_record_id = prev_id;
    }
    pb::SnapshotCursor cursor;
    cursor.set_since_seq(since_seq);
    if (!accounts_done) {
        if (!accounts.empty()) cursor.set_after_key(std::string(crypto::as_bytes(accounts.back().key)));
    } else {
        cursor.set_records(true);
        if (records > 0) {
            cursor.set_after_seq(last_record_seq);
            cursor.set_after_id(std::string(crypto::as_bytes(last_record_id)));
        } else {
            cursor.set_after_seq(since_seq);
        }
    }
    next_cursor = cursor.SerializeAsString();
    if (chunk.records_end()) complete = true;
    return Ok{};
}

SnapshotImport::SnapshotImport(State& state, uint64_t seq, const crypto::Hash& expected_block_hash,
                               Since since)
    : impl_(std::make_unique<Impl>(*state.impl_, seq, expected_block_hash,
                                   since == Since::kWhatItHolds ? state.last_seq() : 0,
                                   since == Since::kWhatItHolds ? state.history_digest()
                                                                : crypto::Hash{})) {
    State::Impl& m = *state.impl_;
    pb::SnapshotCursor first;
    first.set_since_seq(impl_->since_seq);
    impl_->next_cursor = first.SerializeAsString();
    // A temporary table: on disk (it spills from the page cache), private to this
    // connection, gone when the ledger closes.
    if (m.exec("CREATE TEMP TABLE IF NOT EXISTS snapshot_records(id BLOB PRIMARY KEY, "
               "code INTEGER NOT NULL, seq INTEGER NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;"
               "DELETE FROM temp.snapshot_records") != SQLITE_OK ||
        impl_->stage.prepare(m.db,
                             "INSERT INTO temp.snapshot_records(id, code, seq, value) "
                             "VALUES(?1, ?2, ?3, ?4)") != SQLITE_OK)
        fatal(m.io_error("preparing a snapshot import").message);
}

SnapshotImport::~SnapshotImport() = default;
uint64_t SnapshotImport::seq() const { return impl_->seq; }
const std::string& SnapshotImport::next_cursor() const { return impl_->next_cursor; }
bool SnapshotImport::complete() const { return impl_->complete; }
uint64_t SnapshotImport::records() const { return impl_->records; }

Status SnapshotImport::add(std::string_view chunk) { return impl_->add(chunk); }

Status SnapshotImport::install() {
    TALLY_ASSERT(impl_->complete && impl_->last_block);
    State::Impl& m = impl_->state;
    if (m.broken)
        return make_error("io", m.path + ": an earlier write failed uncertainly; reopen the ledger");
    TALLY_ASSERT(!m.accounts.in_block());
    const BlockHeader& header = *impl_->last_block;
    if (m.last_block.seq >= header.seq)
        return make_error("already_applied", "the ledger is at block " +
                                                 std::to_string(m.last_block.seq) +
                                                 ", not below the snapshot's " +
                                                 std::to_string(header.seq));
    // Since what the ledger holds: its records and blocks stay (blocks it executed meanwhile
    // too; their records are the snapshot's own, hence OR IGNORE), the snapshot's records
    // and block join them, its accounts replace them. Whole: everything is replaced.
    const char* replace =
        impl_->since_seq > 0
            ? "DELETE FROM accounts; DELETE FROM account_log;"
              "INSERT OR IGNORE INTO transactions(id, code, seq, value) "
              "SELECT id, code, seq, value FROM temp.snapshot_records"
            : "DELETE FROM accounts; DELETE FROM account_log; DELETE FROM transactions;"
              "DELETE FROM blocks WHERE height > 0;"
              "INSERT INTO transactions(id, code, seq, value) "
              "SELECT id, code, seq, value FROM temp.snapshot_records";
    auto write_all = [&]() -> Status {
        if (m.run(m.begin) != SQLITE_DONE) return m.io_error("beginning the snapshot import");
        if (m.exec(replace) != SQLITE_OK) return m.io_error("replacing the state");
        for (const Account& account : impl_->accounts) {
            Use use(m.upsert_account);
            use.bind(1, account.key).bind(2, account.balance).bind(3, account.nonce);
            if (use.step() != SQLITE_DONE) return m.io_error("writing accounts");
        }
        const crypto::Hash hash = header.hash();
        Use block(m.insert_block);
        block.bind(1, header.height).bind(2, header.seq).bind(3, header.view);
        block.bind(4, header.prev_hash).bind(5, header.tx_root).bind(6, header.state_digest);
        block.bind(7, uint64_t{header.tx_count}).bind(8, hash).bind(9, impl_->history);
        block.bind(10, std::string_view());  // its certificate comes with backfill
        if (block.step() != SQLITE_DONE) return m.io_error("writing the last block");
        Use last(m.set_last_seq);
        last.bind(1, header.seq);
        if (last.step() != SQLITE_DONE) return m.io_error("writing last_seq");
        if (m.run(m.commit) != SQLITE_DONE) {
            int extended = sqlite3_extended_errcode(m.db);
            if (extended == SQLITE_IOERR_FSYNC || extended == SQLITE_IOERR_DIR_FSYNC)
                m.broken = true;
            return m.io_error("committing the snapshot");
        }
        return Ok{};
    };
    Status written = write_all();
    if (!written) {
        m.abort_block();  // nothing in memory changed, so only the rollback matters
        return written;
    }
    m.exec("DELETE FROM temp.snapshot_records");
    m.accounts = AccountTable(std::move(impl_->accounts));
    m.account_log_rows = 0;
    m.last_block = header;
    m.history = impl_->history;
    m.committed(header.seq);
    impl_->complete = false;  // installed: nothing more to do
    return Ok{};
}

Status copy_snapshot(const State& source, const SnapshotPoint& point, State& target,
                     const crypto::Hash& expected_block_hash, size_t chunk_bytes,
                     const std::function<std::string(std::string)>& in_transit) {
    SnapshotImport import(target, point.last_block.seq, expected_block_hash);
    while (!import.complete()) {
        auto chunk = source.snapshot_chunk(point, import.next_cursor(), chunk_bytes);
        if (!chunk) return chunk.error();
        Status added = import.add(in_transit ? in_transit(std::move(*chunk)) : *chunk);
        if (!added) return added;
    }
    return import.install();
}

// ---- backfill ----

std::string encode_certified_block(const CertifiedBlock& block) {
    pb::CertifiedBlock out;
    put_block(block.header, *out.mutable_header());
    out.set_certificate(block.certificate);
    return out.SerializeAsString();
}

Result<CertifiedBlock> decode_certified_block(std::string_view bytes) {
    pb::CertifiedBlock in;
    if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
        !in.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
        return make_error("malformed", "a block does not decode");
    auto header = get_block(in.header());
    if (!header) return make_error("malformed", "a block's hash is not 32 bytes");
    return CertifiedBlock{*header, std::move(*in.mutable_certificate())};
}

std::optional<CertifiedBlock> State::certified_block(uint64_t height) const {
    auto header = block(height);
    if (!header) return std::nullopt;
    Use row(impl_->select_certificate);
    row.bind(1, height);
    if (row.step() != SQLITE_ROW)
        fatal(impl_->io_error("reading the certificate of block " + std::to_string(height)).message);
    return CertifiedBlock{*header, std::string(row.blob(0))};
}

uint64_t State::backfill_height() const {
    Statement query;
    // The highest block held without its certificate, or the highest height lacking a block
    // below one that is held (a scan of the block table, with a key lookup per block).
    if (query.prepare(impl_->db,
                      "SELECT max(h) FROM ("
                      " SELECT max(height) AS h FROM blocks WHERE height >= 1 AND length(certificate) = 0"
                      " UNION ALL"
                      " SELECT max(b.height - 1) AS h FROM blocks b WHERE b.height >= 2 AND NOT EXISTS"
                      "  (SELECT 1 FROM blocks c WHERE c.height = b.height - 1))") != SQLITE_OK)
        fatal(impl_->io_error("looking for missing blocks").message);
    Use row(query);
    if (row.step() != SQLITE_ROW) fatal(impl_->io_error("looking for missing blocks").message);
    return row.u64(0);  // NULL reads as 0: nothing missing
}

Status State::check_missing_block(const BlockHeader& header) const {
    const Impl& m = *impl_;
    const std::string at = "block " + std::to_string(header.height);
    if (header.height == 0 || header.seq != header.height || header.height > m.last_block.seq)
        return make_error("not_needed", at + " (seq " + std::to_string(header.seq) +
                                            ") is not one this ledger can lack");
    if (auto held = certified_block(header.height)) {
        if (!held->certificate.empty()) return make_error("not_needed", at + " is held with its certificate");
        if (held->header.hash() != header.hash())
            return make_error("digest_mismatch", at + " does not hash to the block held there");
        return Ok{};
    }
    auto above = block(header.height + 1);
    if (!above) return make_error("not_needed", at + ": the block above it is not held yet");
    if (above->prev_hash != header.hash())
        return make_error("digest_mismatch",
                          at + " does not hash to block " + std::to_string(header.height + 1) + "'s prev_hash");
    return Ok{};
}

Status State::add_missing_block(const BlockHeader& header, const std::vector<std::string>& txs,
                                std::string_view certificate) {
    Impl& m = *impl_;
    if (m.broken)
        return make_error("io", m.path + ": an earlier write failed uncertainly; reopen the ledger");
    if (auto checked = check_missing_block(header); !checked) return checked;
    const std::string at = "block " + std::to_string(header.height);
    std::vector<crypto::Hash> ids;
    ids.reserve(txs.size());
    for (const std::string& tx : txs) ids.push_back(tx_id(tx));
    if (txs.size() != header.tx_count || crypto::merkle_root(ids) != header.tx_root)
        return make_error("digest_mismatch", at + ": its batch does not hash to its transactions' root");
    const bool held = block(header.height).has_value();
    if (!held && header.height >= 1) {
        auto below = block(header.height - 1);
        if (below && below->hash() != header.prev_hash)
            return make_error("chain_mismatch", at + " (proven by the chain above it) does not link to "
                                                "this ledger's own block " +
                                                    std::to_string(header.height - 1));
    }
    if (m.run(m.begin) != SQLITE_DONE) return m.io_error("beginning to add " + at);
    int rc = SQLITE_DONE;
    if (held) {
        Use use(m.set_certificate);
        use.bind(1, header.height).bind(2, certificate);
        rc = use.step();
    } else {
        const crypto::Hash hash = header.hash();
        Use use(m.insert_block);
        use.bind(1, header.height).bind(2, header.seq).bind(3, header.view);
        use.bind(4, header.prev_hash).bind(5, header.tx_root).bind(6, header.state_digest);
        use.bind(7, uint64_t{header.tx_count}).bind(8, hash).null(9).bind(10, certificate);
        rc = use.step();
    }
    if (rc != SQLITE_DONE || m.run(m.commit) != SQLITE_DONE) {
        Error error = m.io_error("adding " + at);
        int extended = sqlite3_extended_errcode(m.db);
        if (extended == SQLITE_IOERR_FSYNC || extended == SQLITE_IOERR_DIR_FSYNC) m.broken = true;
        if (!sqlite3_get_autocommit(m.db) && m.run(m.rollback) != SQLITE_DONE) m.broken = true;
        return error;
    }
    m.committed(m.last_block.seq);  // a WAL checkpoint here synced the blocks so far
    return Ok{};
}

}  // namespace tally::ledger
