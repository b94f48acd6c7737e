// The one place where a replica's consensus engine is made from the network's description:
// network.json names the protocol and its settings; this picks the engine and builds its
// configuration. A second protocol (Raft) plugs in here: a case in make_engine and its own
// configuration builder beside pbft_config.
#pragma once

#include <memory>

#include "bft/engine.h"
#include "bft/pbft/pbft.h"
#include "crypto/keys.h"
#include "crypto/result.h"
#include "node/api/network_config.h"

namespace tally::node {

// Error "unsupported" when this build has no engine for the network's protocol.
Status check_protocol(const api::NetworkConfig& config);

// Replica `id`'s PBFT configuration: the replicas' keys, f and the "consensus" settings of
// network.json. `recovering`: it lost its consensus store (pbft::Config::recovering).
bft::pbft::Config pbft_config(const api::NetworkConfig& config, bft::ReplicaId id, bool recovering);

// The honest engine of replica `id`, for the network's protocol. `key` and `authenticator`
// must outlive it. Error "unsupported" as check_protocol.
Result<std::unique_ptr<bft::Engine>> make_engine(const api::NetworkConfig& config, bft::ReplicaId id,
                                                 const crypto::KeyPair& key,
                                                 bft::RequestAuthenticator& authenticator,
                                                 bool recovering);

}  // namespace tally::node
