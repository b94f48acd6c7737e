// The engine factory. See engine_factory.h.
#include "node/engine_factory.h"

#include <string>

#include "bft/pbft/traitor.h"

namespace tally::node {

Status check_protocol(const api::NetworkConfig& config) {
    if (config.protocol != bft::Protocol::kPbft)
        return make_error("unsupported", "protocol \"" +
                                             std::string(bft::protocol_name(config.protocol)) +
                                             "\" is not available in this tallyd (pbft only)");
    return Ok{};
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
    pbft.recovering = recovering;
    return pbft;
}

Result<std::unique_ptr<bft::Engine>> make_engine(const api::NetworkConfig& config, bft::ReplicaId id,
                                                 const crypto::KeyPair& key,
                                                 bft::RequestAuthenticator& authenticator,
                                                 const EngineOptions& options) {
    if (auto s = check_protocol(config); !s) return s.error();
    switch (config.protocol) {
        case bft::Protocol::kPbft: {
            const bft::pbft::Config pbft = pbft_config(config, id, options.recovering);
            std::unique_ptr<bft::Engine> engine = bft::pbft::make_engine(pbft, key, authenticator);
            if (options.traitor.empty()) return engine;
            return std::unique_ptr<bft::Engine>(std::make_unique<bft::pbft::TraitorEngine>(
                std::move(engine), options.traitor, key, pbft.replicas, id, options.traitor_seed));
        }
        case bft::Protocol::kRaft:
            break;  // refused by check_protocol
    }
    return make_error("unsupported", "no engine for this protocol");
}

}  // namespace tally::node
