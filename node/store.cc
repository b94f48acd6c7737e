// Store: SQLite-backed durable records of the consensus engine (see store.h).
#include "node/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <variant>

#include "ledger/checkpointer.h"

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
    wal_.reset();  // the checkpointer's connection first: this one is the last, and removes the WAL
    sqlite3_close_v2(db_);
    if (lock_fd_ >= 0) ::close(lock_fd_);
}

Error Store::sqlite_error(const std::string& what) const {
    return make_error("io", path_ + ": " + what + ": " + sqlite3_errmsg(db_));
}

namespace {

// Reads one integer (a pragma or a count); SQLITE_OK on success.
int read_int(sqlite3* db, const char* sql, int64_t& out) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            out = sqlite3_column_int64(stmt, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(stmt);
    return rc;
}

}  // namespace

Result<std::unique_ptr<Store>> Store::open(const std::string& path, Create create) {
    std::error_code ec;
    const bool exists = std::filesystem::exists(path, ec);
    const bool empty_file = exists && std::filesystem::file_size(path, ec) == 0 && !ec;
    if ((!exists || empty_file) && create == Create::kNever)
        return make_error("missing", path + (exists ? " is empty" : " does not exist"));
    // One tallyd at a time (two replicas on one data folder would contradict each other).
    // SQLite's own locks cannot say it, since its WAL checkpointer is a second connection, and
    // the lock is on a file of its own: closing a descriptor of the database itself would drop
    // the process's fcntl locks on it, SQLite's.
    const std::string lock_path = path + ".lock";
    const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0) return make_error("io", lock_path + ": cannot open: " + std::strerror(errno));
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        const int error = errno;
        ::close(lock_fd);
        return make_error("io", lock_path + ": cannot lock: " + std::strerror(error) +
                                    (error == EWOULDBLOCK ? " (is another tallyd running on this data folder?)" : ""));
    }
    sqlite3* db = nullptr;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    if (create == Create::kIfMissing) flags |= SQLITE_OPEN_CREATE;
    const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    std::unique_ptr<Store> store(new Store(path, db));
    store->lock_fd_ = lock_fd;
    if (rc != SQLITE_OK) {
        return make_error("io", path + ": cannot open: " +
                                    std::string(db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    }
    sqlite3_extended_result_codes(db, 1);
    // Against another program holding a lock on the file for a moment (the sqlite3 shell):
    // the checkpointer never holds the write lock, and SQLite retries its own brief clashes.
    sqlite3_busy_timeout(db, 5000);
    return check_and_set_up(std::move(store), create, /*in_memory=*/false);
}

Result<std::unique_ptr<Store>> Store::open_memory(std::string_view image) {
    sqlite3* db = nullptr;
    const int rc = sqlite3_open_v2(":memory:", &db,
                                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                   nullptr);
    std::unique_ptr<Store> store(new Store(image.empty() ? ":memory:" : ":memory: (image)", db));
    if (rc != SQLITE_OK)
        return make_error("io", store->path_ + ": cannot open: " +
                                    std::string(db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    sqlite3_extended_result_codes(db, 1);
    if (!image.empty()) {
        auto* bytes = static_cast<unsigned char*>(sqlite3_malloc64(image.size()));
        if (bytes == nullptr) return make_error("io", store->path_ + ": out of memory");
        std::memcpy(bytes, image.data(), image.size());
        // A file store's bytes say "WAL" (header bytes 18 and 19 are 2), which an in-memory
        // database cannot open ("unable to open database file"); as a rollback-journal
        // database (1) the same pages read the same.
        static constexpr std::string_view kMagic("SQLite format 3\0", 16);
        if (image.size() >= 100 && image.substr(0, kMagic.size()) == kMagic && bytes[18] == 2 &&
            bytes[19] == 2)
            bytes[18] = bytes[19] = 1;
        const auto size = static_cast<sqlite3_int64>(image.size());
        // FREEONCLOSE: SQLite owns `bytes` from here, even when this fails.
        if (sqlite3_deserialize(db, "main", bytes, size, size,
                                SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE) !=
            SQLITE_OK)
            return store->sqlite_error("load the image");
    }
    return check_and_set_up(std::move(store), Create::kIfMissing, /*in_memory=*/true);
}

Result<std::unique_ptr<Store>> Store::check_and_set_up(std::unique_ptr<Store> store, Create create,
                                                       bool in_memory) {
    sqlite3* db = store->db_;
    const std::string& path = store->path_;
    // What the file is, before anything is written to it.
    int64_t application_id = 0, version = 0, tables = 0;
    int read = read_int(db, "SELECT count(*) FROM sqlite_master", tables);
    if (read == SQLITE_OK) read = read_int(db, "PRAGMA application_id", application_id);
    if (read == SQLITE_OK) read = read_int(db, "PRAGMA user_version", version);
    if (read != SQLITE_OK) {
        const bool corrupt = read == SQLITE_NOTADB || (read & 0xff) == SQLITE_CORRUPT;
        std::string text = corrupt ? "not an SQLite database" : sqlite3_errmsg(db);
        if ((read & 0xff) == SQLITE_BUSY) text += " (is another tallyd running on this data folder?)";
        return make_error(corrupt ? "corrupt" : "io", path + ": " + text);
    }
    const bool blank = tables == 0 && application_id == 0;
    if (blank && create == Create::kNever) return make_error("missing", path + " is empty");
    if (!blank) {
        if (application_id != kApplicationId) {
            std::string what = "an SQLite database of another program";
            if (application_id == 0x54414C59) what = "a Tally ledger, not a consensus store";
            else if (application_id == 0) what = "an SQLite database without Tally's mark (a store made by a tallyd before stores were marked, or another program's)";
            return make_error("foreign", path + " is " + what);
        }
        if (version != kSchemaVersion)
            return make_error("foreign", path + " is a consensus store of schema version " +
                                             std::to_string(version) + "; this tallyd reads version " +
                                             std::to_string(kSchemaVersion));
    }
    const char* setup =
        // Normal locking (not EXCLUSIVE, which would spare one fcntl per transaction): the
        // checkpointer reads the WAL through a second connection.
        "PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=FULL;";  // apply() switches to NORMAL for unsynced commits
    // In memory there is no file to lock and no WAL: the rollback journal is kept in memory too
    // (an image loaded by sqlite3_deserialize would otherwise take exclusive locking as leave to
    // switch to WAL). synchronous is a no-op there, but apply() still sets it: kept the same.
    const char* memory_setup =
        "PRAGMA journal_mode=MEMORY;"
        "PRAGMA synchronous=FULL;";
    const std::string schema =
        "BEGIN IMMEDIATE;"
        "CREATE TABLE IF NOT EXISTS kv(key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE IF NOT EXISTS synced(id INTEGER PRIMARY KEY);"
        "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;"
        "PRAGMA application_id=" + std::to_string(kApplicationId) + ";"
        "PRAGMA user_version=" + std::to_string(kSchemaVersion) + ";"
        "COMMIT;";
    char* message = nullptr;
    int setup_rc = sqlite3_exec(db, in_memory ? memory_setup : setup, nullptr, nullptr, &message);
    if (setup_rc == SQLITE_OK && blank) setup_rc = sqlite3_exec(db, schema.c_str(), nullptr, nullptr, &message);
    if (setup_rc != SQLITE_OK) {
        const int code = sqlite3_errcode(db);
        std::string text = message ? message : "unknown error";
        sqlite3_free(message);
        const bool corrupt = code == SQLITE_NOTADB || (code & 0xff) == SQLITE_CORRUPT;
        if ((code & 0xff) == SQLITE_BUSY)
            text += " (is another tallyd running on this data folder?)";
        return make_error(corrupt ? "corrupt" : "io", path + ": " + text);
    }
    store->created_ = blank;
    if (auto s = store->prepare(); !s) return make_error("foreign", s.error().message);
    if (!in_memory) {
        store->wal_ = std::make_unique<ledger::WalCheckpoints>();
        sqlite3_wal_hook(db, &Store::on_wal_commit, store.get());  // (in place of SQLite's own)
    }
    return store;
}

std::string Store::image() const {
    sqlite3_int64 size = 0;
    unsigned char* bytes = sqlite3_serialize(db_, "main", &size, 0);
    if (bytes == nullptr) {
        if (size == 0) return {};
        // Only out of memory: the simulator cannot go on without the state it keeps.
        std::fprintf(stderr, "%s: cannot serialize the store: %s\n", path_.c_str(), sqlite3_errmsg(db_));
        std::abort();
    }
    std::string out(reinterpret_cast<const char*>(bytes), static_cast<size_t>(size));
    sqlite3_free(bytes);
    return out;
}

void Store::set_sync_observer(std::function<void()> observer) {
    if (wal_) wal_->stop();  // (its copies need files that change only at a sync)
    sync_observer_ = std::move(observer);
}

void Store::stagger(uint32_t index, uint32_t count) {
    if (wal_) wal_->stagger(index, count);
}

int Store::on_wal_commit(void* self, sqlite3* db, const char* name, int pages) {
    // (Every commit of the store is durable by itself or by a later synced one: what a
    // checkpoint here makes durable needs no note.)
    auto& store = *static_cast<Store*>(self);
    // While a sync observer copies the files at each sync, they change only then: every
    // checkpoint runs here, inside a commit, as the ledger's do.
    if (store.wal_) store.wal_->on_commit(db, name, pages, /*alone=*/static_cast<bool>(store.sync_observer_));
    return SQLITE_OK;
}

void Store::committed() {
    ++commits_;
    if (wal_) wal_->hand_over(commits_);
}

ledger::WalCheckpointCounts Store::checkpoints() const {
    return wal_ ? wal_->counts() : ledger::WalCheckpointCounts{};
}

void Store::synced() {
    ++synced_commits_;
    unsynced_ = false;
    if (sync_observer_) sync_observer_();
}

Result<std::optional<Store::Binding>> Store::binding() const {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, "SELECT key, value FROM meta", -1, &stmt, nullptr) != SQLITE_OK)
        return sqlite_error("read the binding");
    std::map<std::string, std::string> rows;
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const unsigned char* key = sqlite3_column_text(stmt, 0);
        rows[key ? reinterpret_cast<const char*>(key) : ""] = column_blob(stmt, 1);
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) return sqlite_error("read the binding");
    if (rows.empty()) return std::optional<Binding>{};
    const auto number = [&](const char* key, uint64_t& out) {
        auto it = rows.find(key);
        if (it == rows.end() || it->second.size() != 8) return false;
        out = 0;
        for (unsigned char c : it->second) out = out << 8 | c;
        return true;
    };
    Binding b;
    uint64_t ledger_id = 0, recovering = 0;
    auto key = rows.find("replica_key");
    if (key == rows.end() || key->second.size() != 32 || !number("ledger_id", ledger_id) ||
        !number("ledger_seq_max", b.ledger_seq_max) || !number("recovering", recovering) ||
        recovering > 1)
        return make_error("corrupt", path_ + ": its binding (table meta) does not parse");
    b.replica_key = key->second;
    b.ledger_id = static_cast<int64_t>(ledger_id);
    b.recovering = recovering == 1;
    return std::optional<Binding>{std::move(b)};
}

namespace {
std::string be64(uint64_t v) {
    std::string out(8, '\0');
    for (int i = 7; i >= 0; --i, v >>= 8) out[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
    return out;
}
}  // namespace

Status Store::put_meta(const std::vector<std::pair<std::string, std::string>>& rows) {
    if (auto s = set_synchronous(true); !s) return s;
    if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
        return sqlite_error("begin");
    sqlite3_stmt* stmt = nullptr;
    Status s = Ok{};
    if (sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)", -1,
                           &stmt, nullptr) != SQLITE_OK)
        s = sqlite_error("write the binding");
    for (const auto& [key, value] : rows) {
        if (!s) break;
        sqlite3_bind_text(stmt, 1, key.c_str(), -1, SQLITE_TRANSIENT);
        bind_blob(stmt, 2, value);
        if (sqlite3_step(stmt) != SQLITE_DONE) s = sqlite_error("write the binding");
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
    }
    sqlite3_finalize(stmt);
    if (s && sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) s = sqlite_error("commit");
    if (!s) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        return s;
    }
    committed();
    synced();
    return Ok{};
}

Status Store::bind(const Binding& b) {
    return put_meta({{"replica_key", b.replica_key},
                     {"ledger_id", be64(static_cast<uint64_t>(b.ledger_id))},
                     {"ledger_seq_max", be64(b.ledger_seq_max)},
                     {"recovering", be64(b.recovering ? 1 : 0)}});
}

Status Store::set_ledger_seq_max(uint64_t seq) { return put_meta({{"ledger_seq_max", be64(seq)}}); }

Status Store::set_recovering(bool recovering) {
    return put_meta({{"recovering", be64(recovering ? 1 : 0)}});
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
    committed();
    if (sync) {
        synced();
    } else {
        unsynced_ = true;
    }
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
