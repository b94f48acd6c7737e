// node/engine_factory: the one place a replica's engine and its configuration are made from
// network.json.
#include "node/engine_factory.h"

#include <gtest/gtest.h>

#include "bft/pbft/traitor.h"
#include "node/authenticator.h"

namespace tally::node {
namespace {

crypto::KeyPair key_of(uint8_t i) {
    crypto::Seed seed{};
    seed[0] = static_cast<uint8_t>(i + 1);
    return crypto::KeyPair::from_seed(seed);
}

api::NetworkConfig four_replicas() {
    api::NetworkConfig config;
    config.f = 1;
    for (uint8_t i = 0; i < 4; ++i) {
        api::ReplicaConfig r;
        r.id = i;
        r.port = static_cast<uint16_t>(7100 + i);
        r.public_key = key_of(i).public_key();
        config.replicas.push_back(r);
    }
    config.consensus.batch_size_max = 17;
    config.consensus.batch_bytes_max = 65536;
    config.consensus.pipeline_depth = 3;
    config.consensus.checkpoint_interval = 16;
    config.consensus.watermark_window = 64;
    config.consensus.view_change_timeout_ticks = 99;
    return config;
}

TEST(EngineFactory, PbftConfigCarriesTheNetworksReplicasFAndConsensusSettings) {
    const auto config = four_replicas();
    const bft::pbft::Config pbft = pbft_config(config, 2, true);
    EXPECT_EQ(pbft.id, 2u);
    EXPECT_EQ(pbft.f, 1u);
    ASSERT_EQ(pbft.replicas.size(), 4u);
    for (uint8_t i = 0; i < 4; ++i) EXPECT_EQ(pbft.replicas[i], key_of(i).public_key());
    EXPECT_EQ(pbft.batch_size_max, 17u);
    EXPECT_EQ(pbft.batch_bytes_max, 65536u);
    EXPECT_EQ(pbft.pipeline_depth, 3u);
    EXPECT_EQ(pbft.checkpoint_interval, 16u);
    EXPECT_EQ(pbft.watermark_window, 64u);
    EXPECT_EQ(pbft.view_change_timeout_ticks, 99u);
    EXPECT_TRUE(pbft.recovering);
}

// A lost vote must be sent again before the backups give up on the primary, or each lost
// message costs a view change: the retransmission period is at most a quarter of the
// view-change timeout (and never above the engine's own 50 ticks).
TEST(EngineFactory, PbftRetransmitsWellWithinTheViewChangeTimeout) {
    auto config = four_replicas();
    EXPECT_EQ(pbft_config(config, 0, false).retransmit_ticks, 24u);  // 99 / 4
    config.consensus.view_change_timeout_ticks = 200;  // network.json's default
    EXPECT_EQ(pbft_config(config, 0, false).retransmit_ticks, 50u);
    config.consensus.view_change_timeout_ticks = 2000;
    EXPECT_EQ(pbft_config(config, 0, false).retransmit_ticks, 50u);
    config.consensus.view_change_timeout_ticks = 2;
    EXPECT_EQ(pbft_config(config, 0, false).retransmit_ticks, 1u);
}

TEST(EngineFactory, AnHonestReplicaGetsTheBareEngineATraitorItWrapped) {
    const auto config = four_replicas();
    const auto key = key_of(1);
    TxAuthenticator authenticator;
    auto honest = make_engine(config, 1, key, authenticator, EngineOptions{});
    ASSERT_TRUE(honest.ok()) << honest.error().message;
    EXPECT_EQ(dynamic_cast<bft::pbft::TraitorEngine*>(honest->get()), nullptr);
    auto traitor = make_engine(config, 1, key, authenticator,
                               EngineOptions{false, {bft::Behaviour::kEquivocate}, 7});
    ASSERT_TRUE(traitor.ok()) << traitor.error().message;
    auto* wrapped = dynamic_cast<bft::pbft::TraitorEngine*>(traitor->get());
    ASSERT_NE(wrapped, nullptr);
    EXPECT_TRUE(wrapped->has(bft::Behaviour::kEquivocate));
}

TEST(EngineFactory, RaftIsBuiltFromTheNetworksReplicasAndTimeoutsAndPlaysOnlyItsOwnTraitors) {
    auto config = four_replicas();
    config.protocol = bft::Protocol::kRaft;
    config.replicas.pop_back();  // 3 = 2f+1
    config.consensus.election_timeout_ticks = 40;
    config.consensus.heartbeat_ticks = 4;
    EXPECT_TRUE(check_protocol(config).ok());
    const bft::raft::Config raft = raft_config(config, 2, 9);
    EXPECT_EQ(raft.id, 2u);
    ASSERT_EQ(raft.replicas.size(), 3u);
    for (uint8_t i = 0; i < 3; ++i) EXPECT_EQ(raft.replicas[i], key_of(i).public_key());
    EXPECT_EQ(raft.seed, 9u);
    EXPECT_EQ(raft.election_timeout_ticks, 40u);
    EXPECT_EQ(raft.heartbeat_ticks, 4u);
    EXPECT_FALSE(raft.lease_reads) << "off unless network.json asks for it";
    config.consensus.lease_reads = true;
    EXPECT_TRUE(raft_config(config, 2, 9).lease_reads);
    EXPECT_EQ(raft.batch_size_max, 17u);
    EXPECT_EQ(raft.pipeline_depth, 3u);
    const auto key = key_of(0);
    TxAuthenticator authenticator;
    auto engine = make_engine(config, 0, key, authenticator, EngineOptions{});
    ASSERT_TRUE(engine.ok()) << engine.error().message;
    EXPECT_EQ((*engine)->status().protocol, "raft");
    auto traitor = make_engine(config, 0, key, authenticator,
                               EngineOptions{false, {bft::Behaviour::kEquivocate}, 7});
    ASSERT_TRUE(traitor.ok()) << traitor.error().message;
    EXPECT_EQ((*traitor)->status().protocol, "raft");
    auto pbft_only = make_engine(config, 0, key, authenticator,
                                 EngineOptions{false, {bft::Behaviour::kLyingViewChange}, 7});
    ASSERT_FALSE(pbft_only.ok());
    EXPECT_EQ(pbft_only.error().code, "unsupported");
    EXPECT_NE(pbft_only.error().message.find("lying-view-change"), std::string::npos);
}

}  // namespace
}  // namespace tally::node
