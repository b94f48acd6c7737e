// What the worker threads hand the consensus thread: inputs whose envelopes they opened and
// checked (signature, sender), and replies they signed. Plain data, moved, never shared.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <zmq.hpp>

#include "bft/engine.h"
#include "crypto/envelope.h"
#include "crypto/hash.h"
#include "crypto/keys.h"

namespace tally::node {

// A consensus message from replica `from` (its key signed it). `raw` holds the envelope's
// bytes, which the engine may keep as proof.
struct PeerMessage {
    bft::ReplicaId from = 0;
    crypto::Envelope envelope;
    zmq::message_t raw;
};

// A client's transaction, decoded and its signature checked. `routing_id` is the ROUTER
// identity of the connection it came on (where replies go).
struct RequestIn {
    std::string routing_id;
    bft::ClientRequest request;
    crypto::Hash tx_id{};
    bool query = false;  // an ordered read (balance or tx query), not a transfer
};

// An unordered read: `query` is a transaction envelope with a query body.
struct ReadIn {
    std::string routing_id;
    std::string query;
    crypto::PublicKey client{};
    uint64_t nonce = 0;
};

struct StatusIn {
    std::string routing_id;
    uint64_t nonce = 0;
    std::optional<crypto::Hash> explain_tx;  // `tally explain`
    uint32_t recent_seqs = 0;                // the live view's timeline (StatusRequest)
};

// A signed envelope for a client, to send through the ROUTER.
struct SignedOut {
    std::string routing_id;
    std::string envelope;
};

// A frame from connection `routing_id` (a client's, or a replica's own: node/host.h) cost a
// signature check and failed it: the consensus thread charges the connection, or the replica,
// for it (node/connection_limits.h).
struct ConnectionFault {
    std::string routing_id;
};

using Event = std::variant<PeerMessage, RequestIn, ReadIn, StatusIn, SignedOut, ConnectionFault>;

}  // namespace tally::node
