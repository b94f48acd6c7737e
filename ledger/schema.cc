// The ledger file: its schema, and opening one — a new file is created and seeded from
// genesis; an existing one (or an image) is checked (application id, schema version, SQLite's
// quick_check, accounts against the last block's state digest), upgraded, and loaded.
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <utility>

#include "crypto/merkle.h"
#include "ledger/state_impl.h"

namespace tally::ledger {
namespace {

constexpr int64_t kSchemaVersion = kLedgerSchemaVersion;
constexpr int32_t kApplicationId = kLedgerApplicationId;
// This file's identity: a random number drawn when it is created (SQLite's random()), kept in
// meta. The consensus store records it, so that a store and a ledger that were not made
// together are told apart (node/store.h). A ledger made before it existed gets one at open.
constexpr const char* kLedgerIdRow = "('ledger_id', abs(random() >> 1))";
constexpr int kBusyTimeoutMs = 5000;

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
// kAccountLogMergeRows rows (state.h), one statement moves the newest row of each key into the accounts
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
// Why a log for the records too: the transactions table is keyed by the transfer's id, a hash,
// so each record of a block lands on a leaf page of its own once the table is a few hundred
// pages long (a few tens of thousands of transfers), and every one of those pages is written
// to the WAL, then to the database, per block: measured, recording the transfers cost a
// fifth of a Raft replica's CPU at 64 clients. Appended to tx_log, keyed by (seq, id), a
// block's records fill a page or two at its end. Every kTxLogMergeRows rows (state.h), one
// statement moves them into the transactions table in id order, so each of its pages is
// written once per merge rather than once per record. Lookups by id find the log's rows in
// memory (State::Impl::tx_log); all_transactions reads the two tables as one.
constexpr const char* kTxLogSchema = R"sql(
CREATE TABLE tx_log(seq INTEGER NOT NULL, id BLOB NOT NULL, code INTEGER NOT NULL,
                    value INTEGER NOT NULL, PRIMARY KEY(seq, id)) WITHOUT ROWID;
CREATE VIEW all_transactions(id, code, seq, value) AS
    SELECT id, code, seq, value FROM transactions
    UNION ALL
    SELECT id, code, seq, value FROM tx_log;
)sql";
constexpr const char* kMergeTxLog = R"sql(
INSERT INTO transactions(id, code, seq, value) SELECT id, code, seq, value FROM tx_log ORDER BY id;
DELETE FROM tx_log;
)sql";
// The transfers a block executed as kNonceTooHigh, which the transactions table must not hold
// (a copy of the same bytes may still apply later: tx.h), at the last seq each executed: what a
// tx query answers for an id with no final record, so that `tally tx` can say "ordered at seq
// N, nonce_too_high" rather than "unknown".
// Why a table of its own: the state digest covers the transactions table (the history
// digest), and a block must commit to what it committed to before; this table is outside
// every digest. Every replica that executes a block writes the same rows, in the block's SQLite
// transaction; a snapshot does not carry them (nothing could prove them), so a replica that
// skipped blocks by state transfer answers unknown_tx for a not-yet execution it never saw.
// Bounded: the latest kNotYetPerSender per sender (by seq, then id), and only for senders that
// exist (an account costs its creator a first transfer; issue 11 section 4). An account holder
// can sign any number of early transfers for free, and kUnknownSender ones come from keys that
// cost nothing at all: neither may make a replica keep records without end. Those are what a
// tx query then calls unknown.
// IF NOT EXISTS: a ledger made before it gets it at open, and an older tally ignores it, so the
// schema version stays.
constexpr const char* kNotYetSchema = R"sql(
CREATE TABLE IF NOT EXISTS not_yet_outcomes(id BLOB PRIMARY KEY, code INTEGER NOT NULL,
                                            seq INTEGER NOT NULL, sender BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS not_yet_by_sender ON not_yet_outcomes(sender, seq, id);
)sql";
// `history` is the history digest after the block: NULL for a block fetched by backfill
// (the records of its seq came with a snapshot). `certificate`: the consensus proof that its
// batch committed (Committed::certificate; empty for genesis and for a snapshot's block
// until backfill brings it).
constexpr const char* kBlockColumns =
    "height, seq, view, prev_hash, tx_root, state_digest, tx_count, hash, history, certificate";

}  // namespace

bool read_block(const Use& row, BlockHeader& out, crypto::Hash& stored_hash,
                crypto::Hash& history, bool* has_history) {
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

int State::Impl::insert_block_row(const BlockHeader& header, const crypto::Hash* history,
                                  std::string_view certificate) {
    const crypto::Hash hash = header.hash();  // bound blobs must outlive the statement's use
    Use use(insert_block);
    use.bind(1, header.height).bind(2, header.seq).bind(3, header.view);
    use.bind(4, header.prev_hash).bind(5, header.tx_root).bind(6, header.state_digest);
    use.bind(7, uint64_t{header.tx_count}).bind(8, hash);
    if (history != nullptr)
        use.bind(9, *history);
    else
        use.null(9);
    use.bind(10, certificate);
    return use.step();
}

int State::Impl::merge_account_log() { return exec(kMergeAccountLog); }
int State::Impl::merge_tx_log() { return exec(kMergeTxLog); }

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
        {&insert_tx, "INSERT INTO tx_log(id, code, seq, value) VALUES(?1, ?2, ?3, ?4)"},
        {&upsert_account,
         "INSERT INTO accounts(key, balance, nonce) VALUES(?1, ?2, ?3) "
         "ON CONFLICT(key) DO UPDATE SET balance = excluded.balance, nonce = excluded.nonce"},
        {&log_account, "INSERT INTO account_log(key, balance, nonce) VALUES(?1, ?2, ?3)"},
        {&insert_block, insert_block_sql.c_str()},
        {&select_block, select_block_sql.c_str()},
        {&set_last_seq, "UPDATE meta SET value = ?1 WHERE key = 'last_seq'"},
        {&select_not_yet, "SELECT code, seq, 0 FROM not_yet_outcomes WHERE id = ?1"},
        {&upsert_not_yet,
         "INSERT INTO not_yet_outcomes(id, code, seq, sender) VALUES(?1, ?2, ?3, ?4) "
         "ON CONFLICT(id) DO UPDATE SET code = excluded.code, seq = excluded.seq"},
        {&trim_not_yet,
         "DELETE FROM not_yet_outcomes WHERE sender = ?1 AND id NOT IN (SELECT id FROM "
         "not_yet_outcomes WHERE sender = ?1 ORDER BY seq DESC, id DESC LIMIT ?2)"},
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
    if (rc == SQLITE_OK) rc = exec(kTxLogSchema);
    if (rc == SQLITE_OK) rc = exec(kNotYetSchema);
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
    if (rc == SQLITE_OK) {
        const crypto::Hash no_history{};
        rc = insert_block_row(genesis_block, &no_history, std::string_view()) == SQLITE_DONE
                 ? SQLITE_OK
                 : sqlite3_errcode(db);
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
    auto corrupt = [&](const std::string& why) {
        return make_error("corrupt", path + ": not a valid Tally database (" + why + ")");
    };
    int64_t value = 0;
    std::string text;
    int rc = read_scalar(db, "PRAGMA application_id", value, text);
    if (rc != SQLITE_OK) return open_error(rc, "reading the application id");
    if (value != kApplicationId) return corrupt("it is an SQLite database of another program");
    rc = read_scalar(db, "SELECT value FROM meta WHERE key = 'schema_version'", value, text);
    if (rc != SQLITE_OK) return corrupt("no schema version");
    if (value == 3)
        return make_error("corrupt", path + ": a ledger of schema version 3, made by an older "
                                            "tally, expected 4 (blocks now keep their commit "
                                            "certificates). Start a new network folder, or remove "
                                            "this replica's data folder and start it again: it "
                                            "fetches the ledger from its peers");
    // Version 5 added the account log, version 6 the transaction log: an older file is one
    // whose logs are empty.
    auto upgrade = [&](const char* schema) -> Status {
        const std::string sql = std::string("BEGIN IMMEDIATE;") + schema + "UPDATE meta SET value = " +
                                std::to_string(value + 1) + " WHERE key = 'schema_version'; COMMIT;";
        if (int upgraded = exec(sql.c_str()); upgraded != SQLITE_OK) {
            Error error = open_error(upgraded, "upgrading the ledger from schema version " +
                                                   std::to_string(value) + " to " + std::to_string(value + 1));
            if (!sqlite3_get_autocommit(db)) exec("ROLLBACK");
            return error;
        }
        ++value;
        return Ok{};
    };
    if (value == 4)
        if (Status s = upgrade(kAccountLogSchema); !s) return s;
    if (value == 5)
        if (Status s = upgrade(kTxLogSchema); !s) return s;
    if (value != kSchemaVersion)
        return corrupt("schema version " + std::to_string(value) + ", expected " +
                       std::to_string(kSchemaVersion));
    rc = read_scalar(db, "PRAGMA quick_check", value, text);
    if (rc != SQLITE_OK) return open_error(rc, "integrity check");
    if (text != "ok") return corrupt("integrity check: " + text);
    rc = exec(kNotYetSchema);
    if (rc != SQLITE_OK) return open_error(rc, "adding the table of not-yet outcomes");
    rc = prepare_statements();
    if (rc != SQLITE_OK) return corrupt(std::string("schema: ") + sqlite3_errmsg(db));
    return Ok{};
}

Status State::Impl::load() {
    auto corrupt = [&](const std::string& why) {
        return make_error("corrupt", path + ": not a valid Tally database (" + why + ")");
    };
    Statement all_accounts, last_seq_row, log_rows, tx_log_rows;
    if (all_accounts.prepare(db, "SELECT key, balance, nonce FROM current_accounts ORDER BY key") !=
            SQLITE_OK ||
        log_rows.prepare(db, "SELECT count(*) FROM account_log") != SQLITE_OK ||
        tx_log_rows.prepare(db, "SELECT id, code, seq, value FROM tx_log") != SQLITE_OK ||
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
    decltype(tx_log) logged;
    {
        Use rows(tx_log_rows);
        int rc;
        while ((rc = rows.step()) == SQLITE_ROW) {
            TxRecord record;
            if (!rows.fixed(0, record.id)) return corrupt("a transaction id in tx_log is not 32 bytes");
            const uint64_t code = rows.u64(1);
            record.code = known_code(code) ? static_cast<ResultCode>(code) : ResultCode::kMalformed;
            record.seq = rows.u64(2);
            record.value = rows.u64(3);
            if (record.seq > last_seq) return corrupt("a record in tx_log is past the last block");
            if (!logged.emplace(record.id, record).second) return corrupt("a transaction recorded twice in tx_log");
        }
        if (rc != SQLITE_DONE) return open_error(rc, "reading the transaction log");
    }
    tx_log = std::move(logged);
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
    int64_t tables = 0;
    std::string text;
    rc = read_scalar(impl->db, "SELECT count(*) FROM sqlite_master", tables, text);
    if (rc != SQLITE_OK) return impl->open_error(rc, "reading the schema");

    rc = impl->exec(durability == Durability::kEveryBlock
                        ? "PRAGMA synchronous=FULL; PRAGMA cache_size=-32768"
                        : "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-32768");
    if (rc != SQLITE_OK) return impl->open_error(rc, "setting pragmas");
    impl->deferred = durability == Durability::kDeferred;
    if (impl->deferred && path != ":memory:") sqlite3_wal_hook(impl->db, &Impl::on_wal_commit, impl.get());
    if (tables == 0) {
        Status status = impl->initialize(genesis);
        if (!status) return status.error();
    } else {
        rc = impl->exec("PRAGMA journal_mode=WAL");
        if (rc != SQLITE_OK) return impl->open_error(rc, "setting WAL mode");
        if (Status status = impl->check_and_load(); !status) return status.error();
    }
    // What open() finds is what the disk holds (a file opened after a crash is its synced
    // state; a new one starts at genesis, which a power loss could take: it is then made again).
    impl->synced_seq = impl->last_block.seq;
    return std::unique_ptr<State>(new State(std::move(impl)));
}

Result<std::unique_ptr<State>> State::open_image(std::string_view image, Durability durability) {
    auto impl = std::make_unique<Impl>();
    impl->path = ":memory: (image)";
    impl->deferred = durability == Durability::kDeferred;
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
    if (Status status = impl->check_and_load(); !status) return status.error();
    impl->synced_seq = impl->last_block.seq;
    return std::unique_ptr<State>(new State(std::move(impl)));
}


}  // namespace tally::ledger
