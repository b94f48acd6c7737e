// What a Replica runs on besides its engine: the time it reads and the network it speaks on.
// tallyd hands it the system clock and ZeroMQ (node/transport.h); the simulator
// (tests/sim/node_cluster.h) a virtual clock and a seeded in-memory network, so the code that
// runs in the daemon is the code the simulator tests (TigerBeetle's replica is generic over its
// bus, storage and time the same way).
//
// Threads: both are used by the consensus thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <zmq.hpp>

#include "bft/engine.h"
#include "crypto/result.h"

namespace tally::node {

class Clock {
public:
    using TimePoint = std::chrono::steady_clock::time_point;
    virtual ~Clock() = default;
    // Monotonic: ticks, timeouts, retries and rates are measured in it.
    virtual TimePoint now() const = 0;
    // Milliseconds since the Unix epoch, for what users read (traces, `tally explain`).
    virtual int64_t wall_ms() const = 0;
    // now() in microseconds, for phase durations.
    int64_t mono_us() const {
        return std::chrono::duration_cast<std::chrono::microseconds>(now().time_since_epoch()).count();
    }
};

class SystemClock final : public Clock {
public:
    TimePoint now() const override { return std::chrono::steady_clock::now(); }
    int64_t wall_ms() const override {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }
};

// Routing ids handed out by Network::receive carry the socket they came on in their first
// byte, so that they are unique across both sockets and a reply goes back the same way.
inline constexpr char kPeerPortTag = 'p';
inline constexpr char kClientPortTag = 'c';
// Whether a routing id from Network::receive came in on the clients' socket.
inline bool on_client_port(std::string_view routing_id) {
    return !routing_id.empty() && routing_id.front() == kClientPortTag;
}
// A connection to the peers' socket whose CURVE key the transport matched to a replica's
// transport key (its ZAP handler) has routing ids that name that replica: the tag, the
// replica's id (4 bytes), then the connection's own id. A replica's message is then held to
// the connection it came on before its signature costs anything (WorkerPool::verify): one
// replica cannot make another check frames that name a third as their sender.
inline constexpr char kReplicaConnectionTag = 'r';
inline std::string replica_routing_id(bft::ReplicaId replica, std::string_view connection) {
    std::string id(1 + sizeof replica, kReplicaConnectionTag);
    std::memcpy(id.data() + 1, &replica, sizeof replica);
    id.append(connection);
    return id;
}
// The replica a routing id's connection was authenticated as; none for any other connection.
inline std::optional<bft::ReplicaId> replica_connection(std::string_view routing_id) {
    bft::ReplicaId replica = 0;
    if (routing_id.size() < 1 + sizeof replica || routing_id.front() != kReplicaConnectionTag)
        return std::nullopt;
    std::memcpy(&replica, routing_id.data() + 1, sizeof replica);
    return replica;
}
// The connection's own id, as the socket knows it, without what receive() put in front.
inline std::string_view socket_routing_id(std::string_view routing_id) {
    if (replica_connection(routing_id)) return routing_id.substr(1 + sizeof(bft::ReplicaId));
    return routing_id.empty() ? routing_id : routing_id.substr(1);
}

// A replica's two doors: one for its peers, one for clients (which may be the same).
// Sends never block: a message that cannot be queued is dropped and counted.
class Network {
public:
    virtual ~Network() = default;

    enum class Received {
        kNone,        // nothing waiting
        kFrame,       // routing_id and frame are set
        kBadFraming,  // a message of other than one frame after the routing id (read and dropped)
    };
    // Receives one message without waiting, taking turns between the peers' and the clients'
    // doors (only the peers' when `clients_too` is false: the replica's back-pressure on
    // clients). `routing_id` gets the door's tag in front.
    virtual Received receive(std::string& routing_id, zmq::message_t& frame, bool clients_too) = 0;
    // Waits until a message may be waiting (on the clients' door only when `clients_too`),
    // `wake_fd` (-1: none) is readable, or `wait` passed. Error "network".
    virtual Status wait(std::chrono::milliseconds wait, bool clients_too, int wake_fd) = 0;

    // False when dropped (queue full, peer not connected, unknown id).
    virtual bool send_to_replica(bft::ReplicaId to, std::string_view envelope) = 0;
    // `routing_id` as receive() gave it (tag included).
    virtual bool send_to_client(std::string_view routing_id, std::string_view envelope) = 0;

    virtual bool clients_have_own_port() const = 0;
    virtual const std::string& endpoint() const = 0;
    virtual uint64_t dropped_sends() const = 0;
    // Connections refused: a peer key that is no replica's, an address over its connection
    // limit; and handshakes that failed. Zero where the network has no handshakes.
    virtual uint64_t refused_connections() const { return 0; }
    virtual uint64_t refused_client_connections() const { return 0; }
    virtual uint64_t failed_handshakes() const { return 0; }
};

}  // namespace tally::node
