// The checkpointer's claim (ledger/checkpointer.h): once it reports seq N durable, the database
// file alone holds everything committed through N, so a power loss that took every unsynced
// WAL frame would still leave it. A writer commits numbered rows back to back on its own
// connection while the checkpointer is asked every few rows; after each complete checkpoint
// the test copies the database file (without its WAL), and later opens each copy alone.
#include "ledger/checkpointer.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ledger_test_util.h"

namespace tally::ledger {
namespace {

int64_t max_row(const std::string& path) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, "SELECT coalesce(max(n), 0) FROM t", -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW)
        n = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close_v2(db);
    return n;
}

TEST(Checkpointer, WhatItReportsDurableIsInTheDatabaseFileAlone) {
    testing::TempDir dir;
    const std::string path = dir.file("ledger.db");
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                           "CREATE TABLE t(n INTEGER PRIMARY KEY, pad BLOB NOT NULL)",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_wal_autocheckpoint(db, 0);  // only the checkpointer copies the WAL
    // As the ledger's own connection does (ledger/schema.cc): the writer waits out the moment
    // a checkpoint holds the WAL's locks instead of failing with SQLITE_BUSY (seen once in the
    // sanitizer pass, where the checkpointer thread runs slower).
    sqlite3_busy_timeout(db, 5000);

    std::mutex mu;
    std::vector<std::pair<std::string, uint64_t>> copies;  // (copy of the database file, durable seq)
    auto copy_at = [&](uint64_t seq) {
        std::lock_guard lock(mu);
        if (copies.size() >= 12) return;
        const std::string to = dir.file("copy-" + std::to_string(copies.size()) + ".db");
        std::filesystem::copy_file(path, to);
        copies.emplace_back(to, seq);
    };
    {
        Checkpointer checkpointer(path, copy_at);
        ASSERT_FALSE(checkpointer.failed());
        sqlite3_stmt* insert = nullptr;
        ASSERT_EQ(sqlite3_prepare_v2(db, "INSERT INTO t VALUES(?, randomblob(3000))", -1, &insert, nullptr),
                  SQLITE_OK);
        for (int64_t n = 1; n <= 3000; ++n) {
            sqlite3_bind_int64(insert, 1, n);
            ASSERT_EQ(sqlite3_step(insert), SQLITE_DONE);
            sqlite3_reset(insert);
            if (n % 100 == 0) checkpointer.request(static_cast<uint64_t>(n));
            EXPECT_LE(checkpointer.durable_seq(), static_cast<uint64_t>(n));
        }
        sqlite3_finalize(insert);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (!checkpointer.idle() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        ASSERT_TRUE(checkpointer.idle());
        EXPECT_FALSE(checkpointer.failed());
        EXPECT_GE(checkpointer.complete(), 1u);
        EXPECT_EQ(checkpointer.durable_seq(), 3000u) << "the last request, made with the writer idle, completes";
    }
    sqlite3_close_v2(db);

    std::lock_guard lock(mu);
    ASSERT_FALSE(copies.empty());
    for (const auto& [copy, seq] : copies) {
        EXPECT_GE(max_row(copy), static_cast<int64_t>(seq)) << copy << " lacks rows the checkpointer called durable";
    }
}

// A file it cannot open: it says so at once (the ledger then checkpoints on its own
// connection), and requests are harmless.
TEST(Checkpointer, AFileItCannotOpenIsFailedNotACrash) {
    testing::TempDir dir;
    Checkpointer checkpointer(dir.file("no-such-dir/ledger.db"));
    EXPECT_TRUE(checkpointer.failed());
    EXPECT_NE(checkpointer.failure().find("no-such-dir/ledger.db: opening a second connection: "), std::string::npos)
        << checkpointer.failure();
    checkpointer.request(1);
    EXPECT_EQ(checkpointer.durable_seq(), 0u);
}

}  // namespace
}  // namespace tally::ledger
