// Quorum arithmetic for n replicas tolerating f faults, in one place.
#pragma once

#include <cstdint>

namespace tally::bft {

// PBFT: n = 3f+1. Any two quorums of 2f+1 intersect in f+1 replicas, at least one honest.
struct ByzantineQuorum {
    uint32_t f = 1;
    uint32_t n() const { return 3 * f + 1; }
    uint32_t quorum() const { return 2 * f + 1; }      // prepared/committed/checkpoint/view change
    uint32_t prepares() const { return 2 * f; }        // matching prepares from backups
    uint32_t weak() const { return f + 1; }            // at least one honest: replies, join rule
    static uint32_t max_faults(uint32_t n) { return n == 0 ? 0 : (n - 1) / 3; }
};

// Raft: n = 2f+1; a majority is f+1.
struct CrashQuorum {
    uint32_t f = 1;
    uint32_t n() const { return 2 * f + 1; }
    uint32_t majority() const { return f + 1; }
    static uint32_t max_faults(uint32_t n) { return n == 0 ? 0 : (n - 1) / 2; }
};

}  // namespace tally::bft
