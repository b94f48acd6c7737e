// Rejections: per-reason counters of refused input with rate-limited logging (rejections.h).
#include "node/rejections.h"

#include <spdlog/spdlog.h>

namespace tally::node {

void Rejections::count(std::string_view reason, std::string_view detail) {
    const auto now = std::chrono::steady_clock::now();
    uint64_t unlogged = 0;
    bool log = false;
    {
        std::lock_guard lock(mutex_);
        auto it = entries_.find(reason);
        if (it == entries_.end()) it = entries_.emplace(std::string(reason), Entry{}).first;
        Entry& e = it->second;
        ++e.count;
        if (e.count == 1 || now - e.last_log >= std::chrono::seconds(1)) {
            log = true;
            unlogged = e.unlogged;
            e.unlogged = 0;
            e.last_log = now;
        } else {
            ++e.unlogged;
        }
    }
    if (!log) return;
    if (unlogged > 0) {
        spdlog::warn("rejected input ({}): {} [{} more not logged]", reason, detail, unlogged);
    } else {
        spdlog::warn("rejected input ({}): {}", reason, detail);
    }
}

std::vector<std::pair<std::string, uint64_t>> Rejections::snapshot() const {
    std::lock_guard lock(mutex_);
    std::vector<std::pair<std::string, uint64_t>> out;
    out.reserve(entries_.size());
    for (const auto& [reason, e] : entries_) out.emplace_back(reason, e.count);
    return out;
}

uint64_t Rejections::get(std::string_view reason) const {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(reason);
    return it == entries_.end() ? 0 : it->second.count;
}

bool LogLimiter::allow(uint64_t* suppressed) {
    const auto now = std::chrono::steady_clock::now();
    if (!first_ && now - last_ < interval_) {
        ++skipped_;
        return false;
    }
    first_ = false;
    last_ = now;
    if (suppressed) *suppressed = skipped_;
    skipped_ = 0;
    return true;
}

}  // namespace tally::node
