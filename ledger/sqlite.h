// The ledger's access to SQLite (private to ledger/): cached prepared statements and one use
// of one, integers as SQLite stores them, and how a failure is told apart.
//
// Integers: SQLite stores signed 64-bit integers; every uint64_t (balances, nonces, sequence
// numbers) is stored as the int64_t with the same bits and read back the same way.
#pragma once

#include <sqlite3.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "crypto/hash.h"

namespace tally::ledger {

inline int64_t to_db(uint64_t v) { return static_cast<int64_t>(v); }
inline uint64_t from_db(int64_t v) { return static_cast<uint64_t>(v); }

// Stops the process: for a read of a database already opened and checked that fails (state.h:
// a replica must stop rather than answer from a disk it cannot trust).
[[noreturn]] void fatal(const std::string& what);

// Whether `rc` says the file is not a (sound) SQLite database, rather than that it cannot be
// read or written.
bool is_corruption(int rc);

// Whether a failed COMMIT (`extended`: its extended error code) was a failed fsync, which may
// have left the commit on disk after all: the ledger can trust nothing more of its disk.
bool is_failed_sync(int extended);

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

// Runs `sql` (a single statement) once and reads the first column of its first row, as an
// integer and as text. SQLITE_OK, SQLITE_NOTFOUND (no row) or the error code.
int read_scalar(sqlite3* db, const char* sql, int64_t& value, std::string& text);

}  // namespace tally::ledger
