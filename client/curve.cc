// CurveZMQ for a client's connection to a replica (curve.h).
#include "client/curve.h"

#include <string>
#include <string_view>

namespace tally::client {

namespace {
std::string_view bytes_of(const uint8_t* bytes, size_t size) {
    return {reinterpret_cast<const char*>(bytes), size};
}
}  // namespace

Status secure_to_replica(zmq::socket_t& socket, const node::api::ReplicaConfig& replica) {
    auto server = crypto::transport_public_key(replica.public_key);
    if (!server)
        return make_error("invalid", "replica " + std::to_string(replica.id) + ": " + server.error().message);
    crypto::CurveKey own{};
    const crypto::TransportSecret secret(own);
    socket.set(zmq::sockopt::curve_serverkey, bytes_of(server->data(), server->size()));
    socket.set(zmq::sockopt::curve_publickey, bytes_of(own.data(), own.size()));
    socket.set(zmq::sockopt::curve_secretkey, bytes_of(secret.data(), secret.size()));
    return Ok{};
}

}  // namespace tally::client
