// Store: the consensus engine's durable key-value records (bft::PersistOp), in SQLite.
//
// One file, DATA_DIR/consensus.db, one table kv(key BLOB PRIMARY KEY, value BLOB), WAL journal
// with synchronous=FULL: apply() returns only after its writes are on disk, so the node can
// send what the engine signed right after it. Keys compare as bytes (memcmp), the order the
// engine's ranges assume.
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

    // Applies `ops` in order inside ONE transaction and makes it durable. A PersistErase
    // deletes every key in [from, to). On error ("io") nothing of `ops` is applied.
    Status apply(const std::vector<bft::PersistOp>& ops);

    // Every record, sorted by key (bytewise). Error "io".
    Result<std::vector<std::pair<std::string, std::string>>> load_all() const;

    const std::string& path() const { return path_; }

private:
    Store(std::string path, sqlite3* db);
    Status prepare();
    Status apply_ops(const std::vector<bft::PersistOp>& ops);
    Error sqlite_error(const std::string& what) const;

    std::string path_;
    sqlite3* db_ = nullptr;
    sqlite3_stmt* put_ = nullptr;
    sqlite3_stmt* erase_ = nullptr;
    sqlite3_stmt* all_ = nullptr;
};

}  // namespace tally::node
