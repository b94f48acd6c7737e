// Transport: a replica's ZeroMQ sockets. The framing is shared with the client library
// (client/client.h) and must not change:
//   - each replica binds ONE ROUTER socket at tcp://host:port (network.json);
//   - every peer replica and every client connects a DEALER to it and sends single-frame
//     messages, each frame one sealed envelope; the ROUTER sees [routing_id][envelope];
//   - a replica sends to a peer over its own outgoing DEALER (one per peer), and answers a
//     client through the ROUTER as [routing_id][envelope].
// Sends never block: a full queue (or a peer not connected) drops the message and counts it.
//
// What it trusts: nothing received. A message that is not exactly [routing_id][frame] is
// reported as bad framing; sizes above max_message_bytes never get past ZeroMQ.
// Threads: thread-compatible; the consensus thread owns it (ZeroMQ sockets are not
// thread-safe).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "bft/engine.h"
#include "crypto/envelope.h"
#include "crypto/result.h"
#include "node/config.h"

namespace tally::node {

struct TransportOptions {
    int peer_send_hwm = 10000;    // messages queued per peer DEALER
    int router_send_hwm = 10000;  // messages queued per client connection
    int router_receive_hwm = 1000;
    // Leaves room above the envelope limit so an oversized envelope still arrives and is
    // counted as "oversized" instead of ZeroMQ silently dropping the connection.
    size_t max_message_bytes = crypto::kEnvelopeMaxBytes + 64 * 1024;
};

class Transport {
public:
    // Binds the ROUTER at replica `self`'s endpoint and connects a DEALER to every other
    // replica. Error "bind" (for example, the port is in use) or "network".
    static Result<std::unique_ptr<Transport>> open(const NetworkConfig& config, bft::ReplicaId self,
                                                   const TransportOptions& options = {});
    ~Transport();
    Transport(const Transport&) = delete;
    Transport& operator=(const Transport&) = delete;

    // For zmq::poll (ZMQ_POLLIN on the ROUTER).
    zmq::socket_t& router() { return router_; }
    const std::string& endpoint() const { return endpoint_; }

    enum class Received {
        kNone,        // nothing waiting
        kFrame,       // routing_id and frame are set
        kBadFraming,  // a message of other than one frame after the routing id (read and dropped)
    };
    // Receives one message from the ROUTER without waiting.
    Received receive(std::string& routing_id, zmq::message_t& frame);

    // Non-blocking sends; false when dropped (queue full, peer not connected, unknown id).
    bool send_to_replica(bft::ReplicaId to, std::string_view envelope);
    bool send_to_client(std::string_view routing_id, std::string_view envelope);

    uint64_t dropped_sends() const { return dropped_sends_; }

private:
    Transport() = default;

    zmq::context_t context_{1};
    zmq::socket_t router_;
    std::vector<zmq::socket_t> peers_;  // index = replica id; self's is not connected
    bft::ReplicaId self_ = 0;
    std::string endpoint_;
    uint64_t dropped_sends_ = 0;
};

}  // namespace tally::node
