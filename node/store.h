// Store: the consensus engine's durable key-value records (bft::PersistOp), in SQLite.
//
// One file, DATA_DIR/consensus.db, one table kv(key BLOB PRIMARY KEY, value BLOB), WAL journal.
// One tallyd at a time: the store holds an exclusive flock(2) on DATA_DIR/consensus.db.lock
// while it is open. Its WAL is checkpointed mostly on a thread of its own
// (ledger/checkpointer.h, WalCheckpoints), as the ledger's is, not inside a commit on the
// consensus thread; that second connection needs SQLite's normal locking, so other programs
// can open the file too: read it with the sqlite3 shell if you must, never write it while the
// replica runs (a write lock held for more than 5 s makes the replica's next commit fail, and
// the replica stops).
// apply() returns once its writes are in the OS (they survive the process being killed); with
// `sync` it returns only once they, and every earlier write, are on disk (synchronous=FULL for
// that commit; the WAL is one append-only file, so its fsync covers every earlier frame). The
// other commits run with synchronous=NORMAL, under which SQLite still syncs at WAL checkpoints.
// Keys compare as bytes (memcmp), the order the engine's ranges assume.
//
// The file is marked as Tally's (PRAGMA application_id "TALC", PRAGMA user_version the schema
// version) and bound to its replica and ledger (table meta, see Binding): a replica must never
// run on a store that is not the one it voted with (node/store_binding.h decides).
//
// In memory (open_memory, for the deterministic simulator, tests/sim): the same tables in a
// private in-memory SQLite database, no file, no WAL (journal in memory). What a power loss
// would leave is modelled by the caller: set_sync_observer() is called after every write that
// the file store makes durable before returning — apply(ops, sync=true), bind(),
// set_ledger_seq_max(), set_recovering() — and the caller keeps image() there; a later
// open_memory(that image) is the store after a power loss. Writes by apply(ops, sync=false)
// are in memory only until the next synced write, so a power loss between the two loses them,
// as it may on disk (on disk SQLite may also sync them earlier, at a WAL checkpoint: the memory
// store models the worst case). What open_memory() returns is itself "durable" (no observer
// call: take image() after opening).
//
// What it trusts: once opened and bound, the file is this replica's own. A file that is not a
// Tally store of this schema is refused at open. Any SQLite error is an Error the caller
// must treat as fatal: a replica must stop rather than continue on records it cannot trust.
// Threads: thread-compatible; the consensus thread owns it.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bft/engine.h"
#include "crypto/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace tally::ledger {
class WalCheckpoints;
struct WalCheckpointCounts;
}  // namespace tally::ledger

namespace tally::node {

class Store {
public:
    // The schema this build reads and writes (PRAGMA user_version).
    static constexpr int32_t kSchemaVersion = 1;
    // PRAGMA application_id: "TALC" (the ledger's is "TALY").
    static constexpr int32_t kApplicationId = 0x54414C43;

    enum class Create {
        kIfMissing,  // a missing or empty file becomes a new, unbound store
        kNever,      // a missing or empty file is the Error "missing"
    };
    // Opens the store at `path`. Errors: "missing" (kNever, and no store or an empty file),
    // "foreign" (an SQLite file that is not a Tally consensus store of this schema version),
    // "corrupt" (not an SQLite file), "io".
    static Result<std::unique_ptr<Store>> open(const std::string& path,
                                               Create create = Create::kIfMissing);
    // A private in-memory store (path() ":memory:"). With an empty `image`, a new, unbound one
    // (created() true); otherwise the store in `image` (bytes of image()), checked as open()
    // checks a file it finds (application_id, user_version, schema). Errors as open()'s:
    // "corrupt" (not an SQLite database), "foreign", "io".
    static Result<std::unique_ptr<Store>> open_memory(std::string_view image = {});
    // The database's bytes (sqlite3_serialize): what the simulator keeps as the store's durable
    // state. Copies the whole database; for in-memory stores (it works on a file store too).
    std::string image() const;
    // Called after every write that is durable when it returns (see the header comment), on the
    // thread that wrote. One observer; empty removes it. Called for a file store too.
    void set_sync_observer(std::function<void()> observer);
    // Replica `index` of `count`: its WAL's checkpoints staggered against the other replicas'
    // (ledger/checkpointer.h, WalCheckpoints::stagger). No effect on an in-memory store.
    void stagger(uint32_t index, uint32_t count);

    // True when open() found no store (a missing or empty file) and created this one.
    bool created() const { return created_; }

    // Whose store this is: written once when the store is made (bind), and `ledger_seq_max`
    // raised as the ledger advances. Invariant (kept by the node): the ledger's last seq never
    // exceeds ledger_seq_max on disk — the store is synced before the ledger may pass it — so a
    // ledger beyond it proves the store is older than the ledger (restored from a backup,
    // or swapped).
    struct Binding {
        std::string replica_key;      // the replica's public key (32 bytes)
        int64_t ledger_id = 0;        // ledger::State::ledger_id() of its ledger.db
        uint64_t ledger_seq_max = 0;  // the ledger may have executed up to here
        bool recovering = false;      // made by `tallyd --recover`: silent until caught up
    };
    // The binding, or nullopt in a store that was never bound. Errors: "io", "corrupt".
    Result<std::optional<Binding>> binding() const;
    // Writes the whole binding, synced. Error "io".
    Status bind(const Binding& binding);
    // Raises ledger_seq_max (synced before returning) / clears `recovering` (synced). "io".
    Status set_ledger_seq_max(uint64_t seq);
    Status set_recovering(bool recovering);
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

    // The WAL's checkpoints so far, on the checkpointer's thread and on the committing thread
    // (all zero in memory).
    ledger::WalCheckpointCounts checkpoints() const;  // (ledger/checkpointer.h)

    // Every record, sorted by key (bytewise). Error "io".
    Result<std::vector<std::pair<std::string, std::string>>> load_all() const;

    const std::string& path() const { return path_; }

private:
    Store(std::string path, sqlite3* db);
    Status prepare();
    Status apply_ops(const std::vector<bft::PersistOp>& ops);
    Error sqlite_error(const std::string& what) const;
    Status set_synchronous(bool full);
    Status put_meta(const std::vector<std::pair<std::string, std::string>>& rows);
    // open()'s and open_memory()'s shared part, on a connection just opened: checks what the
    // database is, sets it up (a new one gets the schema), prepares the statements.
    static Result<std::unique_ptr<Store>> check_and_set_up(std::unique_ptr<Store> store,
                                                           Create create, bool in_memory);
    void synced();  // after a durable commit: counts it and calls the observer
    void committed();  // after every commit
    static int on_wal_commit(void* self, sqlite3* db, const char* name, int pages);

    std::string path_;
    sqlite3* db_ = nullptr;
    sqlite3_stmt* put_ = nullptr;
    sqlite3_stmt* erase_ = nullptr;
    sqlite3_stmt* all_ = nullptr;
    bool created_ = false;
    bool full_sync_ = true;       // the connection's current synchronous setting
    bool unsynced_ = false;       // a commit since the last synced one
    uint64_t commits_ = 0;
    uint64_t synced_commits_ = 0;
    std::function<void()> sync_observer_;
    int lock_fd_ = -1;  // a file store's flock (PATH.lock), released when the store closes
    std::unique_ptr<ledger::WalCheckpoints> wal_;  // a file store's
};

}  // namespace tally::node
