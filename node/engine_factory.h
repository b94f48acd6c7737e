// The one place where a replica's consensus engine is made from the network's description:
// network.json names the protocol and its settings; this picks the engine and builds its
// configuration, and wraps it in the protocol's traitor when the replica is started as one.
// Each protocol plugs in here: a case in make_engine and its own configuration builder
// (pbft_config, raft_config); its traitors, when it has any, beside the protocol.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "bft/behaviours.h"
#include "bft/engine.h"
#include "bft/pbft/pbft.h"
#include "bft/raft/raft.h"
#include "crypto/keys.h"
#include "crypto/result.h"
#include "node/api/network_config.h"

namespace tally::node {

// Error "unsupported" when this build has no engine for the network's protocol.
Status check_protocol(const api::NetworkConfig& config);

// Replica `id`'s PBFT configuration: the replicas' keys, f and the "consensus" settings of
// network.json. `recovering`: it lost its consensus store (pbft::Config::recovering).
bft::pbft::Config pbft_config(const api::NetworkConfig& config, bft::ReplicaId id, bool recovering);

// Replica `id`'s Raft configuration: the replicas' keys and the "consensus" settings of
// network.json (batching, election timeout, heartbeat); `seed` randomises its election timeouts.
bft::raft::Config raft_config(const api::NetworkConfig& config, bft::ReplicaId id, uint64_t seed,
                              bool recovering = false);

struct EngineOptions {
    bool recovering = false;  // it lost its consensus store (pbft::Config::recovering)
    // Fault injection: the engine is wrapped in the protocol's traitor (bft/pbft/traitor.h)
    // with these behaviours, its random choices seeded with traitor_seed. Empty: honest.
    std::vector<bft::Behaviour> traitor;
    uint64_t traitor_seed = 1;
    // The caller's randomness, new at each start: Raft's election timeouts and recovery nonce,
    // PBFT's recovery request's nonce.
    uint64_t seed = 0;
};

// The engine of replica `id`, for the network's protocol. `key` and `authenticator` must
// outlive it. Error "unsupported" as check_protocol.
Result<std::unique_ptr<bft::Engine>> make_engine(const api::NetworkConfig& config, bft::ReplicaId id,
                                                 const crypto::KeyPair& key,
                                                 bft::RequestAuthenticator& authenticator,
                                                 const EngineOptions& options);

}  // namespace tally::node
