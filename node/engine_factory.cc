// The engine factory. See engine_factory.h.
#include "node/engine_factory.h"

#include <algorithm>
#include <string>

#include "bft/pbft/traitor.h"
#include "bft/raft/traitor.h"
#include "bft/raft/raft.h"
#include "ledger/tx.h"

namespace tally::node {

Status check_protocol(const api::NetworkConfig& config) {
    switch (config.protocol) {
        case bft::Protocol::kPbft:
        case bft::Protocol::kRaft: return Ok{};
    }
    return make_error("unsupported", "protocol \"" + std::string(bft::protocol_name(config.protocol)) +
                                         "\" is not available in this tallyd");
}

bft::pbft::Config pbft_config(const api::NetworkConfig& config, bft::ReplicaId id, bool recovering) {
    bft::pbft::Config pbft;
    pbft.id = id;
    for (const auto& replica : config.replicas) pbft.replicas.push_back(replica.public_key);
    pbft.f = config.f;
    pbft.batch_size_max = config.consensus.batch_size_max;
    pbft.batch_bytes_max = config.consensus.batch_bytes_max;
    pbft.pipeline_depth = config.consensus.pipeline_depth;
    pbft.checkpoint_interval = config.consensus.checkpoint_interval;
    pbft.watermark_window = config.consensus.watermark_window;
    pbft.view_change_timeout_ticks = config.consensus.view_change_timeout_ticks;
    // A lost vote is sent again well before the backups give up on the primary: with a short
    // view-change timeout, a retransmission period of 50 ticks turned every lost message into
    // a view change (the node simulator's 60-tick timeout: 20 views in 2,800 ticks at 5% loss).
    pbft.retransmit_ticks =
        std::clamp<uint64_t>(config.consensus.view_change_timeout_ticks / 4, 1, pbft.retransmit_ticks);
    pbft.recovering = recovering;
    return pbft;
}

bft::raft::Config raft_config(const api::NetworkConfig& config, bft::ReplicaId id, uint64_t seed,
                              bool recovering) {
    bft::raft::Config raft;
    raft.id = id;
    raft.recovering = recovering;
    for (const auto& replica : config.replicas) raft.replicas.push_back(replica.public_key);
    raft.seed = seed;
    raft.batch_size_max = config.consensus.batch_size_max;
    raft.batch_bytes_max = config.consensus.batch_bytes_max;
    raft.pipeline_depth = config.consensus.pipeline_depth;
    raft.election_timeout_ticks = config.consensus.election_timeout_ticks;
    raft.heartbeat_ticks = config.consensus.heartbeat_ticks;
    raft.lease_reads = config.consensus.lease_reads;
    // Log compaction at the ledger states the node keeps and serves: multiples of
    // checkpoint_interval (node/replica_state.cc, keep_snapshot). With the default 128: the log
    // is compacted every 8,192 entries, keeping the last 1,024 for followers slightly behind;
    // one further behind is offered the newest of those states (InstallSnapshot).
    const uint64_t k = config.consensus.checkpoint_interval;
    raft.snapshot_every = k;
    raft.snapshot_interval = 64 * k;
    raft.snapshot_trailing = 8 * k;
    return raft;
}

Result<std::unique_ptr<bft::Engine>> make_engine(const api::NetworkConfig& config, bft::ReplicaId id,
                                                 const crypto::KeyPair& key,
                                                 bft::RequestAuthenticator& authenticator,
                                                 const EngineOptions& options) {
    if (auto s = check_protocol(config); !s) return s.error();
    switch (config.protocol) {
        case bft::Protocol::kPbft: {
            bft::pbft::Config pbft = pbft_config(config, id, options.recovering);
            // Recovery ends once a request only this start made commits (pbft::Config): an
            // ordered balance query under this replica's own key, its nonce this start's seed.
            if (options.recovering)
                pbft.recovery_request = ledger::make_balance_query(key, key.public_key(), std::max<uint64_t>(options.seed, 1));
            std::unique_ptr<bft::Engine> engine = bft::pbft::make_engine(pbft, key, authenticator);
            if (options.traitor.empty()) return engine;
            return std::unique_ptr<bft::Engine>(std::make_unique<bft::pbft::TraitorEngine>(
                std::move(engine), options.traitor, key, pbft.replicas, id, options.traitor_seed));
        }
        case bft::Protocol::kRaft: {
            for (const auto b : options.traitor)
                if (!bft::raft_plays(b))
                    return make_error("unsupported", "Raft has no '" + std::string(bft::behaviour_name(b)) +
                                                         "' traitor (" + bft::raft_behaviour_names() +
                                                         " are Raft's; the rest are PBFT's)");
            // Raft trusts its replicas: the leader's node checked each client signature when the
            // request arrived (node/worker_pool), and followers apply what the leader's log says.
            if (options.traitor.empty())
                return bft::raft::make_engine(raft_config(config, id, options.seed, options.recovering), key, authenticator);
            return std::unique_ptr<bft::Engine>(std::make_unique<bft::raft::TraitorEngine>(
                bft::raft::make_raft_engine(raft_config(config, id, options.seed, options.recovering), key), options.traitor));
        }
    }
    return make_error("unsupported", "no engine for this protocol");
}

}  // namespace tally::node
