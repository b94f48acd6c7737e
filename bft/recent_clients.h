// The clients an engine heard from lately, so that a leader with nothing in flight can wait for
// each prompt one to have a request queued before it starts a batch (PBFT's primary and Raft's
// leader alike). Pure: time is the engine's tick count.
//
// Why wait at all: every batch costs each replica its messages, a write, an fsync and a SQLite
// transaction, and on a CPU-bound machine that is what bounds throughput. Closed-loop clients
// fall into cohorts: those answered by one batch send again while the next is in flight, and a
// leader that starts a batch as soon as nothing is in flight keeps them apart (batches of 31,
// 33, 31, ... at 64 clients). Waiting until every recent prompt client has a request queued
// merges the cohorts into one batch, at the cost of at most one client round trip. One client
// waits for nothing; a prompt client that went quiet holds batches back one to two ticks, and
// only for kQuietTicks.
//
// Prompt: a client whose latest request followed the one before within kPromptTicks, as a
// closed-loop client's next request follows its reply. Users who each send now and then (an
// open-loop load, `tally bench --rate`) are not: waiting for every client heard from lately held
// nearly every batch back a whole tick (PBFT at 500 transfers/s from 256 clients: p50 16 ms).
// kPromptTicks is absolute time (40 ms at the default 10 ms tick): closed-loop clients whose
// round trip is longer (a slow network, a WAN) are not waited for, and their cohorts are not
// merged; their batches then only go sooner.
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
    // ... and is waited for only while it is prompt: its latest request came at most this many
    // ticks after the one before it, as a closed-loop client's next request follows its reply.
    static constexpr uint64_t kPromptTicks = 4;

    // At most `cap` clients are remembered: once that many requests wait, a batch goes anyway.
    explicit RecentClients(size_t cap) : cap_(cap) {}

    void heard(const crypto::PublicKey& client, uint64_t now) {
        auto it = clients_.find(client);
        if (it == clients_.end()) {
            // Heard once is not yet prompt: nothing says when its next request comes.
            if (clients_.size() < cap_) clients_.emplace(client, Client{now, false});
            return;
        }
        const bool prompt = now - it->second.last_heard <= kPromptTicks;
        if (prompt && !it->second.prompt) ++prompt_;
        if (!prompt && it->second.prompt) --prompt_;
        it->second = Client{now, prompt};
    }

    // Called once a tick: forgets clients quiet for longer than kQuietTicks.
    void forget_quiet(uint64_t now) {
        std::erase_if(clients_, [&](const auto& c) {
            const bool quiet = c.second.last_heard + kQuietTicks < now;
            if (quiet && c.second.prompt) --prompt_;
            return quiet;
        });
    }

    // With nothing in flight: should `queued` requests, the oldest queued at tick `oldest`,
    // wait for more? Yes while fewer wait than recent prompt clients and the oldest has not yet
    // waited a whole tick. (A whole tick, not just to the next tick boundary: a boundary falls
    // anywhere in a cohort's arrival and would split it again.)
    bool worth_waiting(size_t queued, uint64_t oldest, uint64_t now) const {
        return queued < prompt_ && oldest + 1 >= now;
    }

private:
    struct Client {
        uint64_t last_heard = 0;  // the tick of its latest request
        bool prompt = false;      // that request came at most kPromptTicks after the one before
    };
    size_t cap_;
    std::map<crypto::PublicKey, Client> clients_;
    size_t prompt_ = 0;  // clients_ that are prompt
};

}  // namespace tally::bft
