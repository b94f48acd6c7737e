// Rejections: counts of input a replica refused, by reason ("bad_signature", "truncated",
// "queue_full", ...), shown by `tally net status`, with a rate-limited log line per reason so
// a flood of garbage cannot flood the log.
//
// Threads: thread-safe (worker threads and the consensus thread both count).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tally::node {

class Rejections {
public:
    // Counts one rejection; logs at warn level unless this reason was logged in the last
    // second (then the next line says how many went unlogged). `detail` must never hold
    // secrets (it is logged).
    void count(std::string_view reason, std::string_view detail);

    // Every reason seen so far with its count, sorted by reason.
    std::vector<std::pair<std::string, uint64_t>> snapshot() const;
    uint64_t get(std::string_view reason) const;

private:
    struct Entry {
        uint64_t count = 0;
        uint64_t unlogged = 0;
        std::chrono::steady_clock::time_point last_log{};
    };
    mutable std::mutex mutex_;
    std::map<std::string, Entry, std::less<>> entries_;
};

// A gate for log lines about one recurring thing: open at most once per interval.
class LogLimiter {
public:
    explicit LogLimiter(std::chrono::milliseconds interval = std::chrono::seconds(1))
        : interval_(interval) {}
    // True when a line may be logged now; `suppressed` receives how many were skipped since.
    bool allow(uint64_t* suppressed);

private:
    std::chrono::milliseconds interval_;
    std::chrono::steady_clock::time_point last_{};
    uint64_t skipped_ = 0;
    bool first_ = true;
};

}  // namespace tally::node
