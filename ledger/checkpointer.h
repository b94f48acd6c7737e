// The ledger's WAL checkpoints, off the thread that applies blocks.
//
// A kDeferred ledger (state.h) commits each block to the WAL unsynced; a WAL checkpoint syncs
// the WAL, copies it into ledger.db and syncs that, and so makes every block before it
// durable. Run inside a block's commit (SQLite's own autocheckpoint), that work, a few
// milliseconds every ~1,000 pages, sat on the consensus thread, and every client waited
// behind it. Here a second connection to the same file runs it on a thread of its own: the
// block's commit only asks (request), and reads back later which block a complete checkpoint
// made durable (durable_seq), which State::synced_seq reports.
//
// The checkpointer copies the bulk; the last few frames are the ledger's own connection's to
// copy (State::Impl::on_wal_commit): SQLite restarts the WAL from its beginning only when a
// write transaction begins with every frame copied, which a writer that commits block after
// block rarely lets a checkpoint on another thread achieve. So once the checkpointer is idle
// again, the next commit finishes the checkpoint itself (the frames committed meanwhile, and
// two fsyncs of what is mostly synced already), and the WAL starts over.
//
// Why it is safe: SQLite lets one connection checkpoint while another writes (a PASSIVE
// checkpoint copies only frames no reader still needs and never blocks the writer), and a
// checkpoint that started after block N's commit and reports every frame of the WAL copied
// (log == done) has synced the WAL through N at least.
//
// If the second connection cannot be opened, or a checkpoint fails, nothing is lost: the WAL
// still holds every block, State::sync still syncs it, and the ledger runs the checkpoint on
// its own connection again (failed() says so; State::Impl::on_wal_commit).
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace tally::ledger {

class Checkpointer {
public:
    // Opens a second connection to the ledger file at `path` (which must be in WAL mode).
    // `after_complete`, for tests: called on the checkpointer's thread after each complete
    // checkpoint with the seq it made durable, while the database file cannot change (the
    // ledger's own connection checkpoints only while the checkpointer is idle).
    explicit Checkpointer(std::string path, std::function<void(uint64_t seq)> after_complete = {});
    ~Checkpointer();  // finishes the checkpoint under way, then stops
    Checkpointer(const Checkpointer&) = delete;
    Checkpointer& operator=(const Checkpointer&) = delete;

    // Blocks through `seq` are committed and the WAL is long enough: checkpoint when free. A
    // request made while one runs is merged into the next (the newest seq wins).
    void request(uint64_t seq);
    // No request pending or running.
    bool idle() const { return !busy_.load(std::memory_order_acquire); }
    // The newest seq a complete checkpoint made durable (0: none yet).
    uint64_t durable_seq() const { return durable_.load(std::memory_order_acquire); }
    // Set for good once the connection could not be opened or a checkpoint failed.
    bool failed() const { return failed_.load(std::memory_order_acquire); }
    // Once failed(): what failed, with SQLite's message.
    std::string failure() const { return failed() ? failure_ : std::string(); }
    // Checkpoints run, and those that copied the whole WAL (for tests and metrics).
    uint64_t runs() const { return runs_.load(std::memory_order_relaxed); }
    uint64_t complete() const { return complete_.load(std::memory_order_relaxed); }

private:
    void run();
    void fail(const std::string& what);

    std::string path_;
    std::function<void(uint64_t)> after_complete_;
    sqlite3* db_ = nullptr;  // used only by the thread, after the constructor
    std::mutex mu_;
    std::condition_variable wake_;
    std::optional<uint64_t> wanted_;  // under mu_
    bool stop_ = false;               // under mu_
    std::atomic<bool> busy_{false};   // written under mu_
    std::atomic<uint64_t> durable_{0};
    std::string failure_;  // written once, before failed_
    std::atomic<bool> failed_{false};
    std::atomic<uint64_t> runs_{0};
    std::atomic<uint64_t> complete_{0};
    std::thread thread_;
};

}  // namespace tally::ledger
