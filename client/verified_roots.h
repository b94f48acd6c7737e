// VerifiedRoots: the batch roots (crypto/reply_batch.h statements) whose signatures a client
// has already checked, per replica key, so each is checked once.
//
// Why: a replica signs the replies of an executed batch once, over their Merkle root. A client
// carrying many requests of one batch — a pipelined Client, or a gateway serving many users
// through one — gets one reply per request from each replica, all under that replica's same
// root. Once the root's signature verified, each further reply needs only its audit path
// checked against the root (a few hashes) instead of a signature check (~44 us).
//
// What it trusts: only what its caller inserts, which must be statements whose signature the
// caller verified under that key. Bounded: the newest `per_replica_max` statements per key, and
// at most `replicas_max` keys (a client knows its network's n keys; more is a caller's bug, and
// the oldest key's entries are then forgotten).
//
// Threads: thread-compatible (one per Client).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "crypto/keys.h"

namespace tally::client {

class VerifiedRoots {
public:
    explicit VerifiedRoots(size_t per_replica_max = 64, size_t replicas_max = 256)
        : per_replica_max_(per_replica_max == 0 ? 1 : per_replica_max),
          replicas_max_(replicas_max == 0 ? 1 : replicas_max) {}

    // True when `statement` was inserted for `replica` and not yet forgotten; counts a hit.
    bool contains(const crypto::PublicKey& replica, std::string_view statement) {
        auto it = by_replica_.find(replica);
        if (it == by_replica_.end() || it->second.set.find(statement) == it->second.set.end())
            return false;
        ++hits_;
        return true;
    }

    // Remembers a statement whose signature by `replica` the caller verified.
    void insert(const crypto::PublicKey& replica, std::string statement) {
        if (by_replica_.size() >= replicas_max_ && by_replica_.find(replica) == by_replica_.end())
            by_replica_.erase(by_replica_.begin());
        Recent& recent = by_replica_[replica];
        if (!recent.set.insert(statement).second) return;
        recent.order.push_back(std::move(statement));
        if (recent.order.size() > per_replica_max_) {
            recent.set.erase(recent.order.front());
            recent.order.pop_front();
        }
    }

    uint64_t hits() const { return hits_; }
    size_t size() const {
        size_t n = 0;
        for (const auto& [key, recent] : by_replica_) n += recent.order.size();
        return n;
    }

private:
    struct Recent {
        std::deque<std::string> order;         // oldest first
        std::set<std::string, std::less<>> set;  // the same statements, for lookup
    };
    size_t per_replica_max_;
    size_t replicas_max_;
    std::map<crypto::PublicKey, Recent> by_replica_;
    uint64_t hits_ = 0;
};

}  // namespace tally::client
