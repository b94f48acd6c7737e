// PBFT (Castro & Liskov, OSDI '99 / TOCS 2002, the variant with signatures), as an Engine.
// The protocol card is ../shared/PBFT.md; the rules are named where they are implemented.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "bft/engine.h"
#include "crypto/keys.h"

namespace tally::bft::pbft {

struct Config {
    ReplicaId id = 0;
    std::vector<crypto::PublicKey> replicas;  // index = replica id; n = 3f+1
    uint32_t f = 1;
    uint32_t batch_size_max = 256;     // requests in one pre-prepare
    // Bytes of requests in one pre-prepare. A backup refuses a bigger batch, so no traitor
    // primary can get one prepared (and carried, whole, in every later VIEW-CHANGE). 256 KiB
    // holds 256 transfers (~200 bytes each) five times over.
    uint32_t batch_bytes_max = 256u << 10;
    // Batches the primary keeps in flight at once; a second goes only when a full batch
    // waits (batch_is_due, bft/pbft/normal_case.cc).
    uint32_t pipeline_depth = 2;
    uint64_t checkpoint_interval = 128;        // K
    uint64_t watermark_window = 512;           // L: accept sequence numbers in (h, h + L]
    uint64_t view_change_timeout_ticks = 200;  // T; doubles on each failed view change
    // How often a replica re-sends what may have been lost (its votes on slots not yet
    // committed, its newest commit and checkpoint as a heartbeat) and, when peers are ahead,
    // asks one of them for the committed batches it lacks.
    uint64_t retransmit_ticks = 50;
    // The replica lost its consensus store (`tallyd --recover`): it may have voted, before,
    // in any view up to the network's current one, and cannot know which. It then sends no
    // pre-prepare, prepare, commit, VIEW-CHANGE or NEW-VIEW until recovery ends (PbftEngine::recovering_;
    // no VIEW-CHANGE for a while after: PbftEngine::forgot_through_).
    bool recovering = false;
    // With `recovering`: a client request that only this start made (the node's: an ordered
    // balance query under this replica's key with a nonce new at each start). The replica has it
    // ordered, and recovery ends once a batch holding it commits: a commit certificate made
    // after the store was lost, whatever old messages arrive meanwhile. Without one, recovery
    // never ends.
    std::string recovery_request;
};

// `key` is this replica's signing key (config.replicas[config.id]); `authenticator` checks
// the client signature of every request in a proposed batch and must outlive the engine.
std::unique_ptr<Engine> make_engine(const Config& config, const crypto::KeyPair& key,
                                    RequestAuthenticator& authenticator);

}  // namespace tally::bft::pbft
