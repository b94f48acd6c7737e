// WAL checkpoints off the thread that commits: the ledger's, and the consensus store's.
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
// copy (WalCheckpoints::on_commit, below): SQLite restarts the WAL from its beginning only when a
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
// its own connection again (failed() says so; WalCheckpoints::on_commit).
//
// The consensus store (node/store.h) follows the same rule for its WAL (its seq is a commit
// count, and its durability does not depend on the checkpoints: each of its synced commits
// syncs the WAL). Its checkpoints, SQLite's automatic ones until session 27, took 5-25 ms
// inside a synced commit on the consensus thread every ~1,000 pages.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace tally::ledger {

// Replica `index` of `count`'s share of `period`: how much later than replica 0 it does work
// that every replica would otherwise do at the same point (WalCheckpoints::stagger,
// State::stagger). 0 when count is 0.
inline uint64_t stagger_offset(uint64_t period, uint32_t index, uint32_t count) {
    return count == 0 ? 0 : period * (index % count) / count;
}

class Checkpointer {
public:
    // Opens a second connection to the database file at `path` (which must be in WAL mode).
    // `after_complete`, for tests: called on the checkpointer's thread after each complete
    // checkpoint with the seq it made durable, while the database file cannot change (the
    // committing connection checkpoints only while the checkpointer is idle).
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

// The checkpoints of one WAL so far: on the checkpointer's thread (the bulk of the copying),
// and on the committing connection's (finishing one, or alone).
struct WalCheckpointCounts {
    uint64_t on_checkpointer = 0;
    uint64_t on_connection = 0;
    std::string checkpointer_failure;  // why it stopped (all run on the connection since)
    bool checkpointer_busy = false;    // one is asked for or under way on its thread
};

// When a WAL is checkpointed, and on which connection, in place of SQLite's automatic
// checkpoint: the rule the ledger (State) and the consensus store (node::Store) share. The
// connection's WAL hook calls on_commit() after each commit. Every kPages pages it asks a
// Checkpointer to copy the bulk, in rounds, and once that is idle again and little is left,
// it finishes on the connection itself (the header above says why). It checkpoints on the
// connection alone when the caller says so, when the checkpointer failed, or when the WAL
// outgrew what the checkpointer keeps up with (kAlonePages).
// Threads: the committing thread's; the Checkpointer has its own.
class WalCheckpoints {
public:
    // SQLite's own default. 8,000 and 250 were measured against it for the ledger and not
    // kept (README, "One client's latency under Raft").
    static constexpr int kPages = 1000;
    // Beyond this the checkpointer has not kept up (a slow disk, or it failed): the
    // connection checkpoints alone, between two commits, so that the WAL cannot grow without
    // bound.
    static constexpr int kAlonePages = 16 * kPages;
    // The checkpointer copies in rounds until what is left for the connection to copy is at
    // most this many pages (or it had this many rounds).
    static constexpr int kFinishPages = kPages / 8;
    static constexpr int kRoundsMax = 4;

    WalCheckpoints() = default;
    // Stops the checkpointer first: its connection closes before the owner's, so that the
    // owner's is the last and removes the WAL.
    ~WalCheckpoints() { stop(); }
    WalCheckpoints(const WalCheckpoints&) = delete;
    WalCheckpoints& operator=(const WalCheckpoints&) = delete;

    // From the WAL hook of connection `db` (database `name`), after a commit left `pages`
    // pages in its WAL. `alone`: checkpoint on this connection, not on the checkpointer. True
    // when a checkpoint on this connection copied the whole WAL: it synced the WAL first, so
    // everything committed is durable.
    bool on_commit(sqlite3* db, const char* name, int pages, bool alone);
    // After the commit returned (outside the hook, where the caller knows what it committed):
    // hands the checkpointer the request on_commit made, if any, tagged `seq`
    // (Checkpointer::durable_seq). The checkpointer starts at the first request.
    void hand_over(uint64_t seq);
    // Stops the checkpointer, after the checkpoint under way; a later request starts another.
    void stop() {
        checkpointer_.reset();
        wanted_ = false;
    }

    // Staggers this WAL's checkpoints against those of the other replicas' copies of the same
    // file: its first checkpoint waits for kPages * index / count more pages, and every later
    // one comes kPages after the WAL started over, as before. Replicas write nearly the same
    // pages per block, so without it all of them copy their WAL in the same block, and their
    // synced commits wait on the disk together; a quorum then waits for the slowest of them.
    // Staggered, one replica at a time is slowed, and the others make the quorum. (On one
    // machine, the replicas' bursts also no longer land on its one disk at once.)
    // Call before the WAL first reaches kPages; 0 of any count (the default) is no stagger.
    void stagger(uint32_t index, uint32_t count) {
        first_extra_pages_ = static_cast<int>(stagger_offset(kPages, index, count));
    }

    int wal_pages() const { return wal_pages_; }  // after the last commit (0 before any)
    const Checkpointer* checkpointer() const { return checkpointer_.get(); }  // null until started
    WalCheckpointCounts counts() const;

private:
    std::string path_;           // the database file (the checkpointer's to open)
    int wal_pages_ = 0;
    int asked_pages_ = 0;        // the WAL's length when the checkpointer was last asked (0: not asked)
    int rounds_ = 0;             // times it was asked since the WAL last started over
    bool wanted_ = false;        // set in the hook, read by hand_over()
    int first_extra_pages_ = 0;  // stagger(): until the first checkpoint is asked for
    uint64_t checkpoints_here_ = 0;  // on the connection
    std::unique_ptr<Checkpointer> checkpointer_;
};

}  // namespace tally::ledger
