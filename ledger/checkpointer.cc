#include "ledger/checkpointer.h"

#include <utility>

namespace tally::ledger {

Checkpointer::Checkpointer(std::string path, std::function<void(uint64_t)> after_complete)
    : path_(std::move(path)), after_complete_(std::move(after_complete)) {
    int rc = sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
    // synchronous=NORMAL, as the ledger's own connection: in WAL mode a checkpoint syncs the
    // WAL before it copies it and the database after.
    if (rc == SQLITE_OK) rc = sqlite3_exec(db_, "PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
        fail("opening a second connection");
        return;
    }
    thread_ = std::thread([this] { run(); });
}

Checkpointer::~Checkpointer() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
    sqlite3_close_v2(db_);  // (null when the open failed before allocating: a no-op)
}

void Checkpointer::fail(const std::string& what) {
    failure_ = path_ + ": " + what + ": " + (db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory");
    failed_.store(true, std::memory_order_release);
}

void Checkpointer::request(uint64_t seq) {
    if (failed()) return;
    {
        std::lock_guard lock(mu_);
        wanted_ = seq;
        busy_.store(true, std::memory_order_release);
    }
    wake_.notify_one();
}

void Checkpointer::run() {
    for (;;) {
        uint64_t seq = 0;
        {
            std::unique_lock lock(mu_);
            if (!wanted_) busy_.store(false, std::memory_order_release);
            wake_.wait(lock, [this] { return stop_ || wanted_; });
            if (stop_) return;
            seq = *wanted_;
            wanted_.reset();
        }
        int log = -1, done = -1;
        const int rc = sqlite3_wal_checkpoint_v2(db_, "main", SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        runs_.fetch_add(1, std::memory_order_relaxed);
        if (rc == SQLITE_BUSY) continue;  // another checkpoint holds the lock: the next request retries
        if (rc != SQLITE_OK) {
            fail("a checkpoint");
            busy_.store(false, std::memory_order_release);
            return;
        }
        // Complete: every frame, those of block `seq` among them, was synced and copied. An
        // incomplete one (a frame a read still needed) is retried at the next request.
        if (log >= 0 && log == done) {
            complete_.fetch_add(1, std::memory_order_relaxed);
            if (seq > durable_.load(std::memory_order_relaxed)) durable_.store(seq, std::memory_order_release);
            if (after_complete_) after_complete_(seq);
        }
    }
}

bool WalCheckpoints::on_commit(sqlite3* db, const char* name, int pages, bool alone) {
    wal_pages_ = pages;
    if (pages < asked_pages_) asked_pages_ = 0;  // the WAL started over
    if (pages < kPages + first_extra_pages_) return false;
    first_extra_pages_ = 0;  // (stagger: the first checkpoint only)
    if (path_.empty()) {
        const char* file = sqlite3_db_filename(db, name);
        if (file != nullptr) path_ = file;  // (empty for a temporary database: no checkpointer)
    }
    alone = alone || path_.empty() || (checkpointer_ && checkpointer_->failed()) ||
            pages >= kAlonePages;
    if (!alone) {
        if (checkpointer_ && !checkpointer_->idle()) return false;  // still copying
        // What it copied last time was committed before; what came since is to copy still.
        // While that is more than a little, and for a few rounds at most (each is shorter
        // than the one before), the checkpointer copies it too.
        const bool asked = asked_pages_ != 0;
        if (!asked || (pages - asked_pages_ > kFinishPages && rounds_ < kRoundsMax)) {
            wanted_ = true;
            asked_pages_ = pages;
            rounds_ = asked ? rounds_ + 1 : 1;
            return false;
        }
        asked_pages_ = 0;  // it copied the bulk: the rest is this connection's
    }
    int log = -1, done = -1;
    const int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    ++checkpoints_here_;
    // An incomplete checkpoint is retried at the next commit, as SQLite's own.
    return rc == SQLITE_OK && log >= 0 && log == done;
}

WalCheckpointCounts WalCheckpoints::counts() const {
    WalCheckpointCounts c;
    c.on_connection = checkpoints_here_;
    if (checkpointer_) {
        c.on_checkpointer = checkpointer_->runs();
        c.checkpointer_failure = checkpointer_->failure();
        c.checkpointer_busy = !checkpointer_->idle();
    }
    return c;
}

void WalCheckpoints::hand_over(uint64_t seq) {
    if (!wanted_) return;
    wanted_ = false;
    if (!checkpointer_) checkpointer_ = std::make_unique<Checkpointer>(path_);
    checkpointer_->request(seq);
}

}  // namespace tally::ledger
