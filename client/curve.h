// CurveZMQ for a client's connection to a replica (node/transport.h): the replica's socket is a
// CURVE server whose key derives from its public_key in network.json (crypto/keys.h); a client
// connects with an ephemeral key pair of its own (a client is authenticated by its
// transactions' signatures, not by its connection). The connection is then encrypted, and it
// reaches only the replica holding that key: anyone else at the address fails the handshake.
#pragma once

#include <zmq.hpp>

#include "crypto/keys.h"
#include "crypto/result.h"
#include "node/api/network_config.h"

namespace tally::client {

// Makes `socket` (before connect) a CURVE client of `replica` under a fresh ephemeral key pair
// (its secret is wiped from our memory once libzmq has its copy). Error "invalid" when the
// replica's public key gives no transport key.
Status secure_to_replica(zmq::socket_t& socket, const node::api::ReplicaConfig& replica);

}  // namespace tally::client
