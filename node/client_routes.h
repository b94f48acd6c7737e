// ClientRoutes: where to send the reply to a request — the ROUTER routing id of the
// connection a client's request came in on — kept from when the request arrives until its
// batch executes. Keyed by the transaction id (which fixes the client and the nonce).
// Bounded: the oldest route is forgotten first (its client will retransmit and be answered
// from the ledger's reply cache).
//
// Threads: thread-compatible; the consensus thread owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "crypto/hash.h"
#include "crypto/keys.h"

namespace tally::node {

struct ClientRoute {
    std::string routing_id;
    crypto::PublicKey client{};
    uint64_t nonce = 0;
};

class ClientRoutes {
public:
    explicit ClientRoutes(size_t routes_max = 100'000) : routes_max_(routes_max == 0 ? 1 : routes_max) {}

    // Remembers (or refreshes: a retransmission may come on a new connection) a route.
    void remember(const crypto::Hash& tx_id, ClientRoute route) {
        auto [it, fresh] = routes_.try_emplace(tx_id);
        it->second.route = std::move(route);
        if (!fresh) return;
        it->second.generation = ++generation_;
        order_.emplace_back(tx_id, it->second.generation);
        while (routes_.size() > routes_max_) evict_oldest();
        // Taken routes leave stale entries behind a live one; drop them all now and then.
        if (order_.size() > 2 * routes_max_ + 16) {
            std::deque<Order> kept;
            for (const Order& o : order_)
                if (live(o)) kept.push_back(o);
            order_.swap(kept);
        }
    }

    // Takes the route for `tx_id`, if one is known (once: a reply is sent once per arrival).
    std::optional<ClientRoute> take(const crypto::Hash& tx_id) {
        auto it = routes_.find(tx_id);
        if (it == routes_.end()) return std::nullopt;
        ClientRoute route = std::move(it->second.route);
        routes_.erase(it);
        // Trim stale order entries so the deque stays proportional to the map.
        while (!order_.empty() && !live(order_.front())) order_.pop_front();
        return route;
    }

    size_t size() const { return routes_.size(); }

private:
    struct Entry {
        ClientRoute route;
        uint64_t generation = 0;
    };
    struct HashOfHash {
        size_t operator()(const crypto::Hash& h) const noexcept {
            size_t out = 0;
            std::memcpy(&out, h.data(), sizeof(out));
            return out;
        }
    };
    using Order = std::pair<crypto::Hash, uint64_t>;

    bool live(const Order& o) const {
        auto it = routes_.find(o.first);
        return it != routes_.end() && it->second.generation == o.second;
    }
    void evict_oldest() {
        while (!order_.empty()) {
            Order o = order_.front();
            order_.pop_front();
            if (live(o)) {
                routes_.erase(o.first);
                return;
            }
        }
    }

    size_t routes_max_;
    uint64_t generation_ = 0;
    std::unordered_map<crypto::Hash, Entry, HashOfHash> routes_;
    std::deque<Order> order_;  // insertion order, with stale entries for taken routes
};

}  // namespace tally::node
