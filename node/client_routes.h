// ClientRoutes: the client requests a replica admitted and has not answered yet, each with
// where its reply goes — the routing ids of the client connections it came in on — kept from
// when the request is admitted until its batch executes (or it expires). Keyed by the
// transaction id (which fixes the client and the nonce). It also counts what each sender and
// each connection has pending, which admission (node/admission.h) caps.
//
// Route ownership: the first connection a request came in on owns its reply route for good;
// a copy of the same bytes arriving on another connection only adds a route beside it (a
// client that reconnected is still answered), at most routes_per_request_max, and when they
// are full the newest extra route gives way, never the first. So a Byzantine replica (or
// anyone) that resends requests it sees cannot take their replies away from the connection
// the client itself used: at worst it gets a copy of a signed reply it could have asked for.
//
// Bounds: requests_max requests in all (admission refuses beyond it, nothing is evicted, so
// a flood cannot push an honest request out); routes_per_request_max routes each; every
// entry expires `ttl` after it was admitted (a request the engine dropped, or one that never
// gets ordered, stops counting against its sender and connections; its client retransmits).
//
// Threads: thread-compatible; the consensus thread owns it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "crypto/hash.h"
#include "crypto/keys.h"

namespace tally::node {

// Where one reply goes, and what it answers.
struct ClientRoute {
    std::string routing_id;
    crypto::PublicKey client{};
    uint64_t nonce = 0;
};

// A request waiting for its execution.
struct PendingRequest {
    crypto::PublicKey client{};
    uint64_t nonce = 0;
    bool query = false;
    // Invariant: 1 <= size <= routes_per_request_max, no repeats; [0] is the owner's.
    std::vector<std::string> routing_ids;
};

struct ClientRoutesLimits {
    size_t requests_max = 100'000;
    size_t routes_per_request_max = 4;
    std::chrono::steady_clock::duration ttl = std::chrono::seconds(30);
};

class ClientRoutes {
public:
    using Clock = std::chrono::steady_clock;

    explicit ClientRoutes(ClientRoutesLimits limits = {}) : limits_(limits) {
        if (limits_.requests_max == 0) limits_.requests_max = 1;
        if (limits_.routes_per_request_max == 0) limits_.routes_per_request_max = 1;
    }

    bool contains(const crypto::Hash& tx_id) const { return entries_.count(tx_id) != 0; }
    bool full() const { return entries_.size() >= limits_.requests_max; }

    // Admits a request that came in on `routing_id`, which becomes its owning route.
    // Precondition (asserted by the caller's admission): !contains(tx_id) and !full().
    void add(const crypto::Hash& tx_id, const crypto::PublicKey& client, uint64_t nonce, bool query,
             std::string routing_id, Clock::time_point now) {
        auto [it, fresh] = entries_.try_emplace(tx_id);
        if (!fresh) {
            add_route(tx_id, std::move(routing_id));
            return;
        }
        Entry& e = it->second;
        e.request.client = client;
        e.request.nonce = nonce;
        e.request.query = query;
        e.generation = ++generation_;
        e.admitted = now;
        ++of_sender_[client];
        if (query) ++queries_;
        order_.emplace_back(tx_id, e.generation);
        attach(e, std::move(routing_id));
        compact();
    }

    // Another copy of a pending request came in on `routing_id`: a route to it too, unless it
    // is one already (the rule in the file comment). True when a route was added.
    bool add_route(const crypto::Hash& tx_id, std::string routing_id) {
        auto it = entries_.find(tx_id);
        if (it == entries_.end()) return false;
        Entry& e = it->second;
        for (const auto& r : e.request.routing_ids)
            if (r == routing_id) return false;
        if (e.request.routing_ids.size() >= limits_.routes_per_request_max) {
            if (e.request.routing_ids.size() < 2) return false;  // only the owner's: keep it
            detach_last(e);
        }
        attach(e, std::move(routing_id));
        return true;
    }

    // Takes the request (once: its reply is sent once per route).
    std::optional<PendingRequest> take(const crypto::Hash& tx_id) {
        auto it = entries_.find(tx_id);
        if (it == entries_.end()) return std::nullopt;
        PendingRequest request = std::move(it->second.request);
        forget(it, request);
        // Trim stale order entries so the deque stays proportional to the map.
        while (!order_.empty() && !live(order_.front())) order_.pop_front();
        return request;
    }

    // Forgets every request admitted `ttl` or longer before `now`.
    void expire(Clock::time_point now) {
        while (!order_.empty()) {
            const Order& o = order_.front();
            auto it = entries_.find(o.first);
            if (it != entries_.end() && it->second.generation == o.second) {
                if (now - it->second.admitted < limits_.ttl) return;
                PendingRequest request = std::move(it->second.request);
                forget(it, request);
                ++expired_;
            }
            order_.pop_front();
        }
    }

    // The transfers pending (not queries), in the order they were admitted: for a caller that
    // settles those its ledger executed without it (Replica::answer_settled_routes).
    struct PendingTransfer {
        crypto::Hash tx_id{};
        crypto::PublicKey client{};
        uint64_t nonce = 0;
    };
    std::vector<PendingTransfer> transfers() const {
        std::vector<PendingTransfer> out;
        for (const Order& o : order_) {
            auto it = entries_.find(o.first);
            if (it == entries_.end() || it->second.generation != o.second || it->second.request.query) continue;
            out.push_back({o.first, it->second.request.client, it->second.request.nonce});
        }
        return out;
    }

    size_t size() const { return entries_.size(); }
    size_t queries() const { return queries_; }
    uint64_t expired() const { return expired_; }
    size_t of_sender(const crypto::PublicKey& client) const {
        auto it = of_sender_.find(client);
        return it == of_sender_.end() ? 0 : it->second;
    }
    // Routes pending on one connection.
    size_t of_connection(const std::string& routing_id) const {
        auto it = of_connection_.find(routing_id);
        return it == of_connection_.end() ? 0 : it->second;
    }
    size_t connections() const { return of_connection_.size(); }
    size_t senders() const { return of_sender_.size(); }

private:
    struct Entry {
        PendingRequest request;
        uint64_t generation = 0;
        Clock::time_point admitted{};
    };
    using Map = std::unordered_map<crypto::Hash, Entry, crypto::KeyedBytesHash>;
    using Order = std::pair<crypto::Hash, uint64_t>;

    bool live(const Order& o) const {
        auto it = entries_.find(o.first);
        return it != entries_.end() && it->second.generation == o.second;
    }
    void attach(Entry& e, std::string routing_id) {
        ++of_connection_[routing_id];
        e.request.routing_ids.push_back(std::move(routing_id));
    }
    void detach_last(Entry& e) {
        release_connection(e.request.routing_ids.back());
        e.request.routing_ids.pop_back();
    }
    void release_connection(const std::string& routing_id) {
        auto it = of_connection_.find(routing_id);
        if (it != of_connection_.end() && --it->second == 0) of_connection_.erase(it);
    }
    void forget(Map::iterator it, const PendingRequest& request) {
        for (const auto& r : request.routing_ids) release_connection(r);
        auto s = of_sender_.find(request.client);
        if (s != of_sender_.end() && --s->second == 0) of_sender_.erase(s);
        if (request.query) --queries_;
        entries_.erase(it);
    }
    // Taken requests leave stale entries behind a live one; drop them all now and then.
    void compact() {
        if (order_.size() <= 2 * limits_.requests_max + 16) return;
        std::deque<Order> kept;
        for (const Order& o : order_)
            if (live(o)) kept.push_back(o);
        order_.swap(kept);
    }

    ClientRoutesLimits limits_;
    uint64_t generation_ = 0;
    uint64_t expired_ = 0;
    size_t queries_ = 0;
    Map entries_;
    std::deque<Order> order_;  // admission order, with stale entries for taken requests
    std::unordered_map<crypto::PublicKey, size_t, crypto::KeyedBytesHash> of_sender_;
    std::unordered_map<std::string, size_t> of_connection_;
};

}  // namespace tally::node
