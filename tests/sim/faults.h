// What a simulation (sim/node_cluster.h) may do besides crashing and partitioning: the faults of
// its network, and the hook through which a Byzantine replica of the simulator's own making
// (sim/byzantine.h: message mutation, twins) wraps the honest engine.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "bft/engine.h"
#include "bft/pbft/pbft.h"
#include "crypto/keys.h"
#include "ledger/account.h"

namespace tally::sim {

struct NetworkFaults {
    double drop = 0.0;       // probability a message is lost
    double duplicate = 0.0;  // probability a message is delivered twice
    uint32_t delay_min_ticks = 0;
    uint32_t delay_max_ticks = 2;  // uniform delay; different delays reorder messages
};

// What a NodeSimConfig::wrap function gets: the honest engine to wrap and what it needs to make
// more of them (a twin).
struct WrapContext {
    bft::ReplicaId id = 0;
    std::unique_ptr<bft::Engine> honest;
    bft::pbft::Config config;  // the honest engine's
    const crypto::KeyPair* key = nullptr;
    const std::vector<crypto::PublicKey>* replicas = nullptr;
    const ledger::Genesis* genesis = nullptr;
    uint64_t seed = 0;
};

}  // namespace tally::sim
