// Store: SQLite-backed durable records of the consensus engine (see store.h).
#include "node/store.h"

#include <sqlite3.h>

#include <variant>

namespace tally::node {

namespace {

// Binds a byte string as a BLOB (an empty one as a zero-length BLOB, never NULL).
int bind_blob(sqlite3_stmt* stmt, int index, const std::string& bytes) {
    static const char kEmpty = 0;
    return sqlite3_bind_blob64(stmt, index, bytes.empty() ? &kEmpty : bytes.data(),
                               static_cast<sqlite3_uint64>(bytes.size()), SQLITE_STATIC);
}

std::string column_blob(sqlite3_stmt* stmt, int column) {
    const void* data = sqlite3_column_blob(stmt, column);
    const int size = sqlite3_column_bytes(stmt, column);
    if (data == nullptr || size <= 0) return {};
    return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
}

}  // namespace

Store::Store(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

Store::~Store() {
    sqlite3_finalize(put_);
    sqlite3_finalize(erase_);
    sqlite3_finalize(all_);
    sqlite3_close_v2(db_);
}

Error Store::sqlite_error(const std::string& what) const {
    return make_error("io", path_ + ": " + what + ": " + sqlite3_errmsg(db_));
}

Result<std::unique_ptr<Store>> Store::open(const std::string& path) {
    sqlite3* db = nullptr;
    const int rc = sqlite3_open_v2(path.c_str(), &db,
                                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                   nullptr);
    std::unique_ptr<Store> store(new Store(path, db));
    if (rc != SQLITE_OK) {
        return make_error("io", path + ": cannot open: " +
                                    std::string(db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    }
    sqlite3_extended_result_codes(db, 1);
    const char* setup =
        // One process owns the file: exclusive locking spares SQLite its per-transaction file
        // locks (fcntl calls) and the WAL's shared-memory index.
        "PRAGMA locking_mode=EXCLUSIVE;"
        "PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=FULL;"  // apply() switches to NORMAL for unsynced commits
        "CREATE TABLE IF NOT EXISTS kv(key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE IF NOT EXISTS synced(id INTEGER PRIMARY KEY);";
    char* message = nullptr;
    if (sqlite3_exec(db, setup, nullptr, nullptr, &message) != SQLITE_OK) {
        const int code = sqlite3_errcode(db);
        std::string text = message ? message : "unknown error";
        sqlite3_free(message);
        const bool corrupt = code == SQLITE_NOTADB || (code & 0xff) == SQLITE_CORRUPT;
        if ((code & 0xff) == SQLITE_BUSY)
            text += " (is another tallyd running on this data folder?)";
        return make_error(corrupt ? "corrupt" : "io", path + ": " + text);
    }
    if (auto s = store->prepare(); !s) return s.error();
    return store;
}

Status Store::prepare() {
    const auto make = [&](const char* sql, sqlite3_stmt** stmt) -> Status {
        if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, nullptr) != SQLITE_OK)
            return sqlite_error(std::string("prepare \"") + sql + "\"");
        return Ok{};
    };
    if (auto s = make("INSERT OR REPLACE INTO kv(key, value) VALUES(?1, ?2)", &put_); !s) return s;
    if (auto s = make("DELETE FROM kv WHERE key >= ?1 AND key < ?2", &erase_); !s) return s;
    return make("SELECT key, value FROM kv ORDER BY key", &all_);
}

Status Store::apply_ops(const std::vector<bft::PersistOp>& ops) {
    for (const auto& op : ops) {
        sqlite3_stmt* stmt = nullptr;
        if (const auto* put = std::get_if<bft::PersistPut>(&op)) {
            stmt = put_;
            bind_blob(stmt, 1, put->key);
            bind_blob(stmt, 2, put->value);
        } else {
            const auto& erase = std::get<bft::PersistErase>(op);
            stmt = erase_;
            bind_blob(stmt, 1, erase.from);
            bind_blob(stmt, 2, erase.to);
        }
        const int rc = sqlite3_step(stmt);
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
        if (rc != SQLITE_DONE) return sqlite_error(stmt == put_ ? "put" : "erase");
    }
    return Ok{};
}

Status Store::set_synchronous(bool full) {
    if (full == full_sync_) return Ok{};
    const char* sql = full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL";
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return sqlite_error(sql);
    full_sync_ = full;
    return Ok{};
}

Status Store::apply(const std::vector<bft::PersistOp>& ops, bool sync) {
    if (ops.empty() && !(sync && unsynced_)) return Ok{};
    if (auto s = set_synchronous(sync); !s) return s;
    if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
        return sqlite_error("begin");
    // A sync with nothing to write still needs a commit frame for SQLite to fsync the WAL.
    Status s = Ok{};
    if (ops.empty()) {
        if (sqlite3_exec(db_, "INSERT OR REPLACE INTO synced(id) VALUES(1)", nullptr, nullptr,
                         nullptr) != SQLITE_OK)
            s = sqlite_error("sync marker");
    } else {
        s = apply_ops(ops);
    }
    if (!s) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        return s;
    }
    if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
        Error e = sqlite_error("commit");
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        return e;
    }
    ++commits_;
    if (sync) ++synced_commits_;
    unsynced_ = !sync;
    return Ok{};
}

Result<std::vector<std::pair<std::string, std::string>>> Store::load_all() const {
    std::vector<std::pair<std::string, std::string>> out;
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(all_)) == SQLITE_ROW)
        out.emplace_back(column_blob(all_, 0), column_blob(all_, 1));
    sqlite3_reset(all_);
    if (rc != SQLITE_DONE) return sqlite_error("load");
    return out;
}

}  // namespace tally::node
