// Per-connection limits for clients (connection_limits.h).
#include "node/connection_limits.h"

#include <algorithm>

namespace tally::node {

ConnectionRates::ConnectionRates(const ConnectionLimits& limits)
    : rate_(static_cast<double>(std::max<uint64_t>(limits.bytes_per_second, 1))),
      burst_(static_cast<double>(std::max<uint64_t>(limits.burst_bytes, 1))) {}

ConnectionRates::ConnectionRates(const PeerFaultLimits& limits)
    : rate_(static_cast<double>(std::max<uint64_t>(limits.per_second, 1))),
      burst_(static_cast<double>(std::max<uint64_t>(limits.burst, 1))) {}

double ConnectionRates::refilled(const Bucket& bucket, Clock::time_point now) const {
    const double elapsed = std::chrono::duration<double>(now - bucket.last).count();
    return std::min(burst_, bucket.tokens + rate_ * std::max(elapsed, 0.0));
}

ConnectionRates::Bucket& ConnectionRates::refill(std::string_view routing_id, Clock::time_point now) {
    auto it = buckets_.find(std::string(routing_id));
    if (it == buckets_.end()) it = buckets_.emplace(std::string(routing_id), Bucket{burst_, now}).first;
    Bucket& bucket = it->second;
    bucket.tokens = refilled(bucket, now);
    bucket.last = std::max(bucket.last, now);
    return bucket;
}

bool ConnectionRates::allow(std::string_view routing_id, size_t bytes, Clock::time_point now) {
    Bucket& bucket = refill(routing_id, now);
    const auto need = static_cast<double>(bytes);
    if (bucket.tokens < need) return false;
    bucket.tokens -= need;
    return true;
}

void ConnectionRates::charge(std::string_view routing_id, uint64_t bytes, Clock::time_point now) {
    refill(routing_id, now).tokens -= static_cast<double>(bytes);
}

void ConnectionRates::prune(Clock::time_point now) {
    std::erase_if(buckets_, [&](const auto& entry) { return refilled(entry.second, now) >= burst_; });
}

void AddressCounts::opened(int fd, std::string address) {
    closed(fd);
    if (address.empty()) return;
    ++by_address_[address];
    by_fd_.emplace(fd, std::move(address));
}

void AddressCounts::closed(int fd) {
    auto it = by_fd_.find(fd);
    if (it == by_fd_.end()) return;
    auto count = by_address_.find(it->second);
    if (count != by_address_.end() && --count->second == 0) by_address_.erase(count);
    by_fd_.erase(it);
}

size_t AddressCounts::count(std::string_view address) const {
    auto it = by_address_.find(address);
    return it == by_address_.end() ? 0 : it->second;
}

}  // namespace tally::node
