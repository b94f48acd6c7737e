// network.json: a valid file round-trips; each invalid file is refused with an error that names
// the file and the field.
#include "node/api/network_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "crypto/hash.h"
#include "tests/unit/node/test_dir.h"

namespace tally::node::api {
namespace {

using nlohmann::json;

crypto::PublicKey key_n(uint8_t n) {
    crypto::Seed seed{};
    seed[0] = n;
    return crypto::KeyPair::from_seed(seed).public_key();
}

json valid_json() {
    json replicas = json::array();
    for (uint32_t i = 0; i < 4; ++i) {
        replicas.push_back({{"id", i},
                            {"host", "127.0.0.1"},
                            {"port", 7100 + i},
                            {"public_key", crypto::key_to_hex(key_n(static_cast<uint8_t>(i)))},
                            {"key_file", "keys/replica-" + std::to_string(i) + ".key"},
                            {"data_dir", "data/" + std::to_string(i)}});
    }
    return {{"protocol", "pbft"},
            {"f", 1},
            {"replicas", replicas},
            {"genesis", {{{"account", crypto::key_to_hex(key_n(100))}, {"balance", 1000}}}},
            {"consensus",
             {{"tick_ms", 5},
              {"batch_size_max", 64},
              {"batch_bytes_max", 65536},
              {"pipeline_depth", 4},
              {"checkpoint_interval", 16},
              {"watermark_window", 64},
              {"view_change_timeout_ticks", 100}}}};
}

class ConfigTest : public ::testing::Test {
protected:
    std::string write(const std::string& text) {
        const std::string path = dir_ / "network.json";
        std::ofstream(path) << text;
        return path;
    }
    std::string write(const json& j) { return write(j.dump(2)); }

    // Loads `j` expecting an error whose message names the file and `field`.
    void expect_invalid(const json& j, const std::string& field, const std::string& code = "invalid") {
        const std::string path = write(j);
        auto config = load_network_config(path);
        ASSERT_FALSE(config.ok()) << "accepted: " << j.dump();
        EXPECT_EQ(config.error().code, code);
        EXPECT_NE(config.error().message.find(path), std::string::npos) << config.error().message;
        EXPECT_NE(config.error().message.find(field), std::string::npos)
            << "expected the error to name \"" << field << "\": " << config.error().message;
    }

    TempDir dir_;
};

TEST_F(ConfigTest, AValidFileLoadsWithPathsResolvedAgainstItsFolder) {
    auto config = load_network_config(write(valid_json()));
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_EQ(config->protocol, bft::Protocol::kPbft);
    EXPECT_EQ(config->f, 1u);
    ASSERT_EQ(config->n(), 4u);
    EXPECT_EQ(config->dir, dir_.path());
    for (uint32_t i = 0; i < 4; ++i) {
        const auto& r = config->replicas[i];
        EXPECT_EQ(r.id, i);
        EXPECT_EQ(r.port, 7100 + i);
        EXPECT_EQ(r.public_key, key_n(static_cast<uint8_t>(i)));
        EXPECT_EQ(r.key_file, dir_ / ("keys/replica-" + std::to_string(i) + ".key"));
        EXPECT_EQ(r.data_dir, dir_ / ("data/" + std::to_string(i)));
        EXPECT_EQ(r.endpoint(), "tcp://127.0.0.1:" + std::to_string(7100 + i));
    }
    ASSERT_EQ(config->genesis.accounts.size(), 1u);
    EXPECT_EQ(config->genesis.accounts[0].key, key_n(100));
    EXPECT_EQ(config->genesis.accounts[0].balance, 1000u);
    EXPECT_EQ(config->consensus.tick_ms, 5u);
    EXPECT_EQ(config->consensus.batch_size_max, 64u);
    EXPECT_EQ(config->consensus.batch_bytes_max, 65536u);
    EXPECT_EQ(config->consensus.pipeline_depth, 4u);
    EXPECT_EQ(config->consensus.checkpoint_interval, 16u);
    EXPECT_EQ(config->consensus.watermark_window, 64u);
    EXPECT_EQ(config->consensus.view_change_timeout_ticks, 100u);
    // PBFT with f = 1: a client believes f+1 = 2 matching replies, 2f+1 = 3 for a fast read.
    EXPECT_EQ(config->quorums().n(), 4u);
    EXPECT_EQ(config->quorums().client().ordered, 2u);
    EXPECT_EQ(config->quorums().client().fast_read, 3u);
    EXPECT_EQ(config->quorums().client().read_heard_enough, 3u);
}

// network.json files written before the "protocol" field ran PBFT, and still do.
TEST_F(ConfigTest, AFileWithoutAProtocolRunsPbft) {
    json j = valid_json();
    j.erase("protocol");
    auto config = load_network_config(write(j));
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_EQ(config->protocol, bft::Protocol::kPbft);
    EXPECT_EQ(config->quorums().client().ordered, 2u);
    // Saving writes the field out.
    const std::string saved = dir_ / "saved.json";
    ASSERT_TRUE(save_network_config(*config, saved).ok());
    json again;
    std::ifstream(saved) >> again;
    EXPECT_EQ(again["protocol"], "pbft");
}

// The client's acceptance rule comes with the protocol: Raft (crash faults) believes the
// leader's one reply, and a majority for a fast read.
TEST_F(ConfigTest, TheClientQuorumIsAPropertyOfTheProtocol) {
    json j = valid_json();
    j["protocol"] = "raft";
    j["replicas"].erase(3);  // 3 = 2f+1 with f = 1
    auto config = load_network_config(write(j));
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_EQ(config->protocol, bft::Protocol::kRaft);
    EXPECT_EQ(config->quorums().n(), 3u);
    EXPECT_EQ(config->quorums().client().ordered, 1u);
    EXPECT_EQ(config->quorums().client().fast_read, 2u);
    EXPECT_EQ(config->quorums().client().read_heard_enough, 2u);
}

TEST_F(ConfigTest, SaveThenLoadGivesTheSameConfigWithRelativePaths) {
    auto first = load_network_config(write(valid_json()));
    ASSERT_TRUE(first.ok()) << first.error().message;
    const std::string copy = dir_ / "copy.json";
    ASSERT_TRUE(save_network_config(*first, copy).ok());

    // Stored paths are relative, so the folder can move.
    json saved;
    std::ifstream(copy) >> saved;
    EXPECT_EQ(saved["replicas"][2]["key_file"], "keys/replica-2.key");
    EXPECT_EQ(saved["replicas"][2]["data_dir"], "data/2");

    auto second = load_network_config(copy);
    ASSERT_TRUE(second.ok()) << second.error().message;
    EXPECT_EQ(second->protocol, first->protocol);
    EXPECT_EQ(second->f, first->f);
    ASSERT_EQ(second->n(), first->n());
    for (uint32_t i = 0; i < first->n(); ++i) {
        EXPECT_EQ(second->replicas[i].host, first->replicas[i].host);
        EXPECT_EQ(second->replicas[i].port, first->replicas[i].port);
        EXPECT_EQ(second->replicas[i].public_key, first->replicas[i].public_key);
        EXPECT_EQ(second->replicas[i].key_file, first->replicas[i].key_file);
        EXPECT_EQ(second->replicas[i].data_dir, first->replicas[i].data_dir);
    }
    ASSERT_EQ(second->genesis.accounts.size(), 1u);
    EXPECT_EQ(second->genesis.accounts[0].balance, 1000u);
    EXPECT_EQ(second->consensus.view_change_timeout_ticks, 100u);
}

TEST_F(ConfigTest, ReplicasInAnyOrderAreSortedByIdAndOptionalSectionsDefault) {
    json j = valid_json();
    std::swap(j["replicas"][0], j["replicas"][3]);
    j.erase("consensus");
    j.erase("genesis");
    auto config = load_network_config(write(j));
    ASSERT_TRUE(config.ok()) << config.error().message;
    for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(config->replicas[i].id, i);
    EXPECT_EQ(config->consensus.tick_ms, ConsensusConfig{}.tick_ms);
    EXPECT_TRUE(config->genesis.accounts.empty());
}

// Ballast accounts (ledger/account.h) are two numbers in the file, kept as two numbers: a
// network of a million accounts is not a million lines of JSON.
TEST_F(ConfigTest, TheGenesisBallastRoundTripsAsTwoNumbersAndItsBoundsAreChecked) {
    json j = valid_json();
    j["genesis_ballast"] = {{"accounts", 1'000'000}, {"balance", 3}};
    auto first = load_network_config(write(j));
    ASSERT_TRUE(first.ok()) << first.error().message;
    EXPECT_EQ(first->genesis.ballast.accounts, 1'000'000u);
    EXPECT_EQ(first->genesis.ballast.balance, 3u);
    EXPECT_EQ(first->genesis.accounts.size(), 1u);
    const std::string copy = dir_ / "copy.json";
    ASSERT_TRUE(save_network_config(*first, copy).ok());
    json saved;
    std::ifstream(copy) >> saved;
    EXPECT_EQ(saved["genesis_ballast"], j["genesis_ballast"]);
    EXPECT_EQ(saved["genesis"].size(), 1u);

    j["genesis_ballast"] = {{"accounts", 100'000'001}, {"balance", 1}};
    expect_invalid(j, "genesis_ballast.accounts");
    j["genesis_ballast"] = {{"accounts", 2}, {"balance", UINT64_MAX / 2}};  // plus genesis[0]'s 1000
    expect_invalid(j, "genesis_ballast.balance");
    j["genesis_ballast"] = {{"accounts", 2}, {"balance", 1}, {"weight", 1}};
    expect_invalid(j, "genesis_ballast.weight");
}

TEST_F(ConfigTest, AMissingFileIsNotFound) {
    auto config = load_network_config(dir_ / "nope.json");
    ASSERT_FALSE(config.ok());
    EXPECT_EQ(config.error().code, "not_found");
    EXPECT_NE(config.error().message.find("nope.json"), std::string::npos);
}

TEST_F(ConfigTest, BadJsonIsAParseErrorNamingTheFile) {
    const std::string path = write(std::string("{\"protocol\": \"pbft\", "));
    auto config = load_network_config(path);
    ASSERT_FALSE(config.ok());
    EXPECT_EQ(config.error().code, "parse");
    EXPECT_NE(config.error().message.find(path), std::string::npos);
}

TEST_F(ConfigTest, EachMissingRequiredFieldIsNamed) {
    for (const char* field : {"f", "replicas"}) {  // "protocol" has a default: pbft
        json j = valid_json();
        j.erase(field);
        expect_invalid(j, field);
    }
    for (const char* field : {"id", "host", "port", "public_key", "key_file", "data_dir"}) {
        json j = valid_json();
        j["replicas"][1].erase(field);
        expect_invalid(j, std::string("replicas[1].") + field);
    }
    json j = valid_json();
    j["genesis"][0].erase("balance");
    expect_invalid(j, "genesis[0].balance");
}

TEST_F(ConfigTest, NMustBe3fPlus1ForPbftAndRaftsFMustBeFloorOfNMinusOneHalved) {
    json j = valid_json();
    j["f"] = 2;
    expect_invalid(j, "3f+1");
    j = valid_json();
    j["replicas"].erase(3);
    expect_invalid(j, "3f+1");
    j = valid_json();
    j["protocol"] = "raft";
    j["f"] = 2;  // 4 replicas tolerate one crash, not two
    expect_invalid(j, "2f+1");
    j["f"] = 1;  // an even n: f = floor((4-1)/2) = 1
    auto even = load_network_config(write(j));
    EXPECT_TRUE(even.ok()) << even.error().message;
    j["replicas"].erase(3);  // 3 replicas = 2f+1 with f = 1
    auto config = load_network_config(write(j));
    EXPECT_TRUE(config.ok()) << config.error().message;
}

TEST_F(ConfigTest, RaftTimeoutsAreReadAndTheHeartbeatMustBeShorterThanTheElection) {
    json j = valid_json();
    j["protocol"] = "raft";
    j["replicas"].erase(3);
    j["consensus"]["election_timeout_ticks"] = 50;
    j["consensus"]["heartbeat_ticks"] = 5;
    auto config = load_network_config(write(j));
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_EQ(config->consensus.election_timeout_ticks, 50u);
    EXPECT_EQ(config->consensus.heartbeat_ticks, 5u);
    j["consensus"]["heartbeat_ticks"] = 50;
    expect_invalid(j, "heartbeat_ticks");
}

// Lease reads are Raft's, off unless asked for; saved with the Raft settings; a PBFT file that
// asks for them is refused (it has no lease to read from), as is anything but a boolean.
TEST_F(ConfigTest, LeaseReadsAreRaftsOffByDefaultAndRefusedUnderPbft) {
    json j = valid_json();
    j["protocol"] = "raft";
    j["replicas"].erase(3);
    auto config = load_network_config(write(j));
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_FALSE(config->consensus.lease_reads);
    j["consensus"]["lease_reads"] = true;
    config = load_network_config(write(j));
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_TRUE(config->consensus.lease_reads);
    const std::string saved = dir_ / "saved.json";
    ASSERT_TRUE(save_network_config(*config, saved).ok());
    auto again = load_network_config(saved);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_TRUE(again->consensus.lease_reads);
    j["consensus"]["lease_reads"] = "yes";
    expect_invalid(j, "lease_reads");

    json pbft = valid_json();
    pbft["consensus"]["lease_reads"] = false;
    EXPECT_TRUE(load_network_config(write(pbft)).ok()) << "false says nothing PBFT cannot do";
    pbft["consensus"]["lease_reads"] = true;
    expect_invalid(pbft, "lease_reads");
}

TEST_F(ConfigTest, DuplicateIdsPortsAndKeysAreRefused) {
    json j = valid_json();
    j["replicas"][2]["id"] = 1;
    expect_invalid(j, "replicas[2].id");
    j = valid_json();
    j["replicas"][3]["port"] = 7100;
    expect_invalid(j, "replicas[3].port");
    j = valid_json();
    j["replicas"][3]["public_key"] = j["replicas"][0]["public_key"];
    expect_invalid(j, "replicas[3].public_key");
    // The optional ports take an address of their own: not another replica's, nor each other's.
    j = valid_json();
    j["replicas"][2]["client_port"] = 7101;
    expect_invalid(j, "replicas[2].client_port");
    j = valid_json();
    j["replicas"][1]["client_port"] = 7201;
    j["replicas"][2]["metrics_port"] = 7201;
    expect_invalid(j, "replicas[2].metrics_port");
    j = valid_json();
    j["replicas"][0]["client_port"] = 7200;
    j["replicas"][0]["metrics_port"] = 7300;
    auto fine = load_network_config(write(j));
    EXPECT_TRUE(fine.ok()) << fine.error().message;
}

TEST_F(ConfigTest, IdsMustBeZeroToNMinusOne) {
    json j = valid_json();
    j["replicas"][3]["id"] = 7;
    expect_invalid(j, "replicas[3].id");
}

TEST_F(ConfigTest, BadHexKeysAreRefused) {
    json j = valid_json();
    j["replicas"][0]["public_key"] = std::string(63, 'a');
    expect_invalid(j, "replicas[0].public_key");
    j["replicas"][0]["public_key"] = std::string(64, 'z');
    expect_invalid(j, "replicas[0].public_key");
    j = valid_json();
    j["genesis"][0]["account"] = "not hex";
    expect_invalid(j, "genesis[0].account");
}

TEST_F(ConfigTest, WrongTypesAndRangesAreRefused) {
    json j = valid_json();
    j["replicas"][0]["port"] = 70000;
    expect_invalid(j, "replicas[0].port");
    j["replicas"][0]["port"] = -1;
    expect_invalid(j, "replicas[0].port");
    j["replicas"][0]["port"] = "7100";
    expect_invalid(j, "replicas[0].port");
    j = valid_json();
    j["protocol"] = "paxos";
    expect_invalid(j, "protocol");
    j = valid_json();
    j["consensus"]["tick_ms"] = 0;
    expect_invalid(j, "consensus.tick_ms");
    j = valid_json();
    j["consensus"]["watermark_window"] = 8;  // below checkpoint_interval 16
    expect_invalid(j, "consensus.watermark_window");
    j = valid_json();
    j["replicas"] = json::object();
    expect_invalid(j, "replicas");
}

TEST_F(ConfigTest, UnknownFieldsAreRefusedSoTyposAreCaught) {
    json j = valid_json();
    j["consensus"]["tick_msec"] = 5;
    expect_invalid(j, "consensus.tick_msec");
    j = valid_json();
    j["replicas"][0]["hots"] = "x";
    expect_invalid(j, "replicas[0].hots");
    j = valid_json();
    j["extra"] = 1;
    expect_invalid(j, "extra");
}

TEST_F(ConfigTest, GenesisDuplicatesAndOverflowAreRefused) {
    json j = valid_json();
    j["genesis"].push_back(j["genesis"][0]);
    expect_invalid(j, "genesis[1].account");
    j = valid_json();
    j["genesis"][0]["balance"] = std::numeric_limits<uint64_t>::max();
    j["genesis"].push_back({{"account", crypto::key_to_hex(key_n(101))}, {"balance", 1}});
    expect_invalid(j, "genesis[1].balance");
}

}  // namespace
}  // namespace tally::node::api

namespace tally::node::api {
namespace {

class ClientPortConfigTest : public ::testing::Test {
protected:
    TempDir dir_;
};

TEST_F(ClientPortConfigTest, AClientPortIsReadSavedAndMayCollideWithNoOtherEndpoint) {
    json j = valid_json();
    for (uint32_t i = 0; i < 4; ++i) j["replicas"][i]["client_port"] = 7200 + i;
    const std::string path = dir_ / "network.json";
    std::ofstream(path) << j.dump(2);
    auto config = load_network_config(path);
    ASSERT_TRUE(config.ok()) << config.error().message;
    EXPECT_EQ(config->replicas[2].client_port, 7202);
    EXPECT_EQ(config->replicas[2].client_endpoint(), "tcp://127.0.0.1:7202");
    EXPECT_EQ(config->replicas[2].endpoint(), "tcp://127.0.0.1:7102");
    const std::string saved = dir_ / "saved.json";
    ASSERT_TRUE(save_network_config(*config, saved).ok());
    auto again = load_network_config(saved);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(again->replicas[2].client_port, 7202);

    j["replicas"][1]["client_port"] = 7100;  // replica 0's port
    std::ofstream(path) << j.dump(2);
    auto clash = load_network_config(path);
    ASSERT_FALSE(clash.ok());
    EXPECT_NE(clash.error().message.find("client_port"), std::string::npos) << clash.error().message;
}

}  // namespace
}  // namespace tally::node::api
