// Store: the consensus engine's durable key-value records (bft::PersistOp), in SQLite.
//
// One file, DATA_DIR/consensus.db, one table kv(key BLOB PRIMARY KEY, value BLOB), WAL journal.
// apply() returns once its writes are in the OS (they survive the process being killed); with
// `sync` it returns only once they, and every earlier write, are on disk (synchronous=FULL for
// that commit; the WAL is one append-only file, so its fsync covers every earlier frame). The
// other commits run with synchronous=NORMAL, under which SQLite still syncs at WAL checkpoints.
// Keys compare as bytes (memcmp), the order the engine's ranges assume.
//
// What it trusts: the file is this replica's own. Any SQLite error is an Error the caller
// must treat as fatal: a replica must stop rather than continue on records it cannot trust.
// Threads: thread-compatible; the consensus thread owns it.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bft/engine.h"
#include "crypto/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace tally::node {

class Store {
public:
    // Opens (creating if needed) the store at `path`. Errors: "io", "corrupt".
    static Result<std::unique_ptr<Store>> open(const std::string& path);
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // Applies `ops` in order inside ONE transaction; with `sync`, makes it and every earlier
    // write durable before returning. A PersistErase deletes every key in [from, to). On
    // error ("io") nothing of `ops` is applied.
    Status apply(const std::vector<bft::PersistOp>& ops, bool sync = true);

    // Commits so far, and how many of them were synced (for the stats log line and tests).
    uint64_t commits() const { return commits_; }
    uint64_t synced_commits() const { return synced_commits_; }

    // Every record, sorted by key (bytewise). Error "io".
    Result<std::vector<std::pair<std::string, std::string>>> load_all() const;

    const std::string& path() const { return path_; }

private:
    Store(std::string path, sqlite3* db);
    Status prepare();
    Status apply_ops(const std::vector<bft::PersistOp>& ops);
    Error sqlite_error(const std::string& what) const;
    Status set_synchronous(bool full);

    std::string path_;
    sqlite3* db_ = nullptr;
    sqlite3_stmt* put_ = nullptr;
    sqlite3_stmt* erase_ = nullptr;
    sqlite3_stmt* all_ = nullptr;
    bool full_sync_ = true;       // the connection's current synchronous setting
    bool unsynced_ = false;       // a commit since the last synced one
    uint64_t commits_ = 0;
    uint64_t synced_commits_ = 0;
};

}  // namespace tally::node
