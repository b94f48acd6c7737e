// The ledger's access to SQLite (sqlite.h): stopping on an unreadable disk, telling failures
// apart, and one-off scalar reads.
#include "ledger/sqlite.h"

#include <cstdio>
#include <cstdlib>

namespace tally::ledger {

void fatal(const std::string& what) {
    std::fprintf(stderr, "tally ledger: fatal: %s\n", what.c_str());
    std::abort();
}

bool is_corruption(int rc) {
    int primary = rc & 0xff;
    return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

bool is_failed_sync(int extended) {
    return extended == SQLITE_IOERR_FSYNC || extended == SQLITE_IOERR_DIR_FSYNC;
}

int read_scalar(sqlite3* db, const char* sql, int64_t& value, std::string& text) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db, sql, -1, &raw, nullptr);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(raw);
    if (rc == SQLITE_ROW) {
        value = sqlite3_column_int64(raw, 0);
        const unsigned char* t = sqlite3_column_text(raw, 0);
        text = t ? reinterpret_cast<const char*>(t) : "";
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_NOTFOUND;
    }
    sqlite3_finalize(raw);
    return rc;
}

}  // namespace tally::ledger
