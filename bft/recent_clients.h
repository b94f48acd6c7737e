// The clients an engine heard from lately, so that a leader with nothing in flight can wait for
// each of them to have a request queued before it starts a batch (PBFT's primary and Raft's
// leader alike). Pure: time is the engine's tick count.
//
// Why wait at all: every batch costs each replica its messages, a write, an fsync and a SQLite
// transaction, and on a CPU-bound machine that is what bounds throughput. Closed-loop clients
// fall into cohorts: those answered by one batch send again while the next is in flight, and a
// leader that starts a batch as soon as nothing is in flight keeps them apart (batches of 31,
// 33, 31, ... at 64 clients). Waiting until every recently heard client has a request queued
// merges the cohorts into one batch, at the cost of at most one client round trip. One client
// waits for nothing; a client that went quiet holds batches back one to two ticks, and only for
// kQuietTicks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>

#include "crypto/keys.h"

namespace tally::bft {

class RecentClients {
public:
    // A client counts as recent this many ticks after its latest request.
    static constexpr uint64_t kQuietTicks = 10;

    // At most `cap` clients are remembered: once that many requests wait, a batch goes anyway.
    explicit RecentClients(size_t cap) : cap_(cap) {}

    void heard(const crypto::PublicKey& client, uint64_t now) {
        auto it = last_heard_.find(client);
        if (it != last_heard_.end()) {
            it->second = now;
        } else if (last_heard_.size() < cap_) {
            last_heard_.emplace(client, now);
        }
    }

    // Called once a tick: forgets clients quiet for longer than kQuietTicks.
    void forget_quiet(uint64_t now) {
        std::erase_if(last_heard_, [&](const auto& c) { return c.second + kQuietTicks < now; });
    }

    // With nothing in flight: should `queued` requests, the oldest queued at tick `oldest`,
    // wait for more? Yes while fewer wait than clients were heard from lately and the oldest
    // has not yet waited a whole tick. (A whole tick, not just to the next tick boundary: a
    // boundary falls anywhere in a cohort's arrival and would split it again.)
    bool worth_waiting(size_t queued, uint64_t oldest, uint64_t now) const {
        return queued < last_heard_.size() && oldest + 1 >= now;
    }

private:
    size_t cap_;
    std::map<crypto::PublicKey, uint64_t> last_heard_;  // client -> tick of its latest request
};

}  // namespace tally::bft
