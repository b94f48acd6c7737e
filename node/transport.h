// Transport: a replica's ZeroMQ sockets. The framing is shared with the client library
// (client/client.h) and must not change:
//   - each replica binds a ROUTER for its peers at tcp://host:port (network.json) and, when
//     network.json gives it a client_port, a second ROUTER for clients at tcp://host:client_port
//     (without one, clients share the peers' ROUTER, as before client ports existed);
//   - every peer replica connects a DEALER to the peers' ROUTER, every client one to the
//     clients' ROUTER, and sends single-frame messages, each frame one sealed envelope; a
//     ROUTER sees [routing_id][envelope];
//   - a replica sends to a peer over its own outgoing DEALER (one per peer), and answers a
//     client through the ROUTER it came on as [routing_id][envelope].
// Routing ids handed out by receive() carry the socket they came on in their first byte
// (kPeerPortTag, kReplicaConnectionTag or kClientPortTag), so that they are unique across both
// sockets and a reply goes back through the right one.
// Sends never block: a full queue (or a peer not connected) drops the message and counts it.
//
// Bounds per connection: the clients' ROUTER takes frames of at most
// client_message_bytes_max (the largest valid client message, with room to spare: an
// oversized one closes the connection in ZeroMQ) and queues at most client_receive_hwm of
// them from one connection (and client_send_hwm replies to it), so one client connection holds
// at most client_receive_hwm * client_message_bytes_max bytes of a replica's memory (1 MiB).
// The peers' ROUTER keeps the envelope limit (pre-prepares, view changes and snapshot pieces
// are big) and router_receive_hwm messages per connection.
//
// CurveZMQ on every socket (always on). Transport keys derive from the signing keys
// (crypto/keys.h, TransportSecret): each ROUTER is a CURVE server under this replica's
// transport secret, each DEALER to a peer a CURVE client that expects that peer's transport key
// (derived from its public_key in network.json) and presents this replica's own. A ZAP handler
// (RFC 27, on inproc://zeromq.zap.01 in this Transport's context, served by a thread the
// Transport owns) decides who may connect:
//   - domain "peers" (the peers' ROUTER): only the transport keys of the OTHER replicas in
//     network.json; any other key is refused, counted (refused_connections()) and logged with its
//     address and key (rate-limited). Without a client port, clients share that ROUTER and it
//     must take any key (a warning says so once at start: no allowlist then). A connection
//     under a replica's key is admitted with that replica's id as its ZAP user id, which
//     libzmq puts on each of its messages; receive() reads it back and hands out a routing id
//     that names the replica (kReplicaConnectionTag, node/host.h), so its messages can be held
//     to their sender's connection;
//   - domain "clients" (the clients' ROUTER): any key. A client is authenticated by its
//     transactions' signatures, not by its connection; it connects with an ephemeral key. But
//     one address may hold at most connections_per_address_max connections open at once
//     (node/connection_limits.h): the ZAP thread also reads the clients' ROUTER's socket
//     monitor (accepted / disconnected, each with its descriptor, whose peer address it looks
//     up) and refuses a connection beyond that, counted (refused_client_connections()) and
//     logged (rate-limited). libzmq's one I/O thread writes a connection's "accepted" event
//     before its ZAP request, and the handler drains the monitor before each request, so the
//     count it checks includes the connection asking.
// A connection without CURVE (the NULL mechanism) never completes its handshake; such failures
// on either ROUTER are counted (failed_handshakes(), from socket monitors the ZAP thread reads).
//
// What it trusts: nothing received. A message that is not exactly [routing_id][frame] is
// reported as bad framing; sizes above a socket's limit never get past ZeroMQ.
// Threads: thread-compatible; the consensus thread owns it (ZeroMQ sockets are not
// thread-safe). The ZAP handler runs on a thread of its own, started by open() and stopped
// (the context shut down, the thread joined) by the destructor; it shares only the allowlist
// (written before it starts) and four atomic counters; the address counts are its own.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "bft/engine.h"
#include "crypto/envelope.h"
#include "crypto/keys.h"
#include "crypto/result.h"
#include "node/api/network_config.h"
#include "node/connection_limits.h"
#include "node/host.h"
#include "node/socket_wait.h"

namespace tally::node {

// The largest frame the clients' socket accepts. A client sends transactions (~200 bytes),
// read requests (a query inside an envelope, ~350) and status requests (~110): 4 KiB leaves
// room for any field growth while keeping a connection's queue small (tests/unit/node checks
// the largest valid messages fit).
inline constexpr size_t kClientMessageBytesMax = 4096;

struct TransportOptions {
    int peer_send_hwm = 10000;    // messages queued per peer DEALER
    int router_send_hwm = 10000;  // messages queued per connection on the peers' ROUTER
    int router_receive_hwm = 1000;
    // Leaves room above the envelope limit so an oversized envelope still arrives and is
    // counted as "oversized" instead of ZeroMQ silently dropping the connection.
    size_t max_message_bytes = crypto::kEnvelopeMaxBytes + 64 * 1024;
    // The clients' ROUTER (when network.json gives a client_port).
    int client_send_hwm = 1024;    // replies queued per client connection
    int client_receive_hwm = 256;  // messages queued per client connection
    size_t client_message_bytes_max = kClientMessageBytesMax;
    // Connections per address on the clients' ROUTER (the ZAP handler), and the bytes per
    // second each may send (the replica's receive loop).
    ConnectionLimits client_connections;
};

class Transport final : public Network {
public:
    // Binds the peers' ROUTER (and the clients', if replica `self` has a client_port) and
    // connects a DEALER to every other replica, all under CURVE with `key` (replica `self`'s
    // signing key pair, whose public key is network.json's). Error "bind" (for example, the port
    // is in use), "invalid" (a replica's public key gives no transport key) or "network".
    static Result<std::unique_ptr<Transport>> open(const api::NetworkConfig& config, bft::ReplicaId self,
                                                   const crypto::KeyPair& key,
                                                   const TransportOptions& options = {});
    ~Transport() override;
    Transport(const Transport&) = delete;
    Transport& operator=(const Transport&) = delete;

    // For zmq::poll (ZMQ_POLLIN on each ROUTER). clients() is null without a client port.
    zmq::socket_t& router() { return router_; }
    zmq::socket_t* clients() { return has_clients_ ? &clients_ : nullptr; }
    const std::string& endpoint() const override { return endpoint_; }
    const std::string& client_endpoint() const { return client_endpoint_; }
    bool clients_have_own_port() const override { return has_clients_; }

    // Receives one message from either ROUTER without waiting, taking turns between them so
    // that neither starves the other (Network::receive). A ROUTER is read only while it may
    // hold a message: since wait() said so, and until a read finds it empty (each empty read
    // costs ZeroMQ two system calls).
    Received receive(std::string& routing_id, zmq::message_t& frame, bool clients_too = true) override;
    // Returns at once when a ROUTER (the clients' only when `clients_too`) holds a message, else
    // waits until one may, `wake_fd` is readable, or `wait` has passed (node/socket_wait.h: one
    // question per socket and one poll(2), where zmq::poll asks twice and polls twice).
    Status wait(std::chrono::milliseconds wait, bool clients_too, int wake_fd) override;

    // Non-blocking sends; false when dropped (queue full, peer not connected, unknown id).
    bool send_to_replica(bft::ReplicaId to, std::string_view envelope) override;
    // `routing_id` as receive() gave it (tag included).
    bool send_to_client(std::string_view routing_id, std::string_view envelope) override;

    uint64_t dropped_sends() const override { return dropped_sends_; }
    // Connections the ZAP handler refused on the peers' socket (a CURVE key that is no other
    // replica's). Thread-safe.
    uint64_t refused_connections() const override { return refused_connections_.load(std::memory_order_relaxed); }
    // Client connections the ZAP handler refused because their address had
    // connections_per_address_max open already. Thread-safe.
    uint64_t refused_client_connections() const override {
        return refused_client_connections_.load(std::memory_order_relaxed);
    }
    // Handshakes on either ROUTER that failed other than by a ZAP refusal: a connection
    // without CURVE (plain ZeroMQ or not ZeroMQ at all), or one expecting another server key.
    // Thread-safe.
    uint64_t failed_handshakes() const override { return failed_handshakes_.load(std::memory_order_relaxed); }
    // ZAP requests answered (accepted or refused), for tests. Thread-safe.
    uint64_t zap_requests() const { return zap_requests_.load(std::memory_order_relaxed); }

private:
    Transport() = default;
    // kNone without touching the socket unless `readable`; an empty read clears it.
    Received receive_from(WatchedSocket& socket, char tag, std::string& routing_id, zmq::message_t& frame);
    std::optional<bft::ReplicaId> authenticated_replica(zmq::message_t& frame);
    // The ZAP handler's loop (its own thread) until the context shuts down.
    void serve_zap();
    // Whether a connection to `domain` with CURVE client key `key` may proceed; `user_id` gets
    // the replica's id for a connection under another replica's transport key.
    bool admit(std::string_view domain, std::string_view address, std::string_view key, std::string* user_id);
    // Reads a socket monitor's pending events into client_addresses_ and failed_handshakes_
    // (ZAP thread).
    void drain_monitor(zmq::socket_t& monitor);

    zmq::context_t context_{1};
    zmq::socket_t zap_;  // used by zap_thread_ only once it started
    zmq::socket_t monitor_;  // the clients' ROUTER's events (a PAIR); likewise zap_thread_'s
    zmq::socket_t peers_monitor_;  // the peers' ROUTER's failed handshakes; likewise
    AddressCounts client_addresses_;  // zap_thread_ only
    size_t connections_per_address_max_ = 0;
    std::thread zap_thread_;
    std::vector<std::pair<bft::ReplicaId, crypto::CurveKey>> peer_keys_;  // the other replicas' transport keys
    bool peers_accept_any_ = false;            // no client port: clients share the peers' socket
    std::atomic<uint64_t> refused_connections_{0};
    std::atomic<uint64_t> zap_requests_{0};
    std::atomic<uint64_t> refused_client_connections_{0};
    std::atomic<uint64_t> failed_handshakes_{0};
    zmq::socket_t router_;
    zmq::socket_t clients_;
    bool has_clients_ = false;
    bool clients_first_ = false;  // whose turn it is to be read first
    // The ROUTERs as wait() watches them: the peers' first, then the clients' (when has_clients_).
    std::array<WatchedSocket, 2> watched_{};
    std::vector<zmq::socket_t> peers_;  // index = replica id; self's is not connected
    bft::ReplicaId self_ = 0;
    std::string endpoint_;
    std::string client_endpoint_;
    uint64_t dropped_sends_ = 0;
};

}  // namespace tally::node
