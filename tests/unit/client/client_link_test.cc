// The Client over a ClientLink that is not ZeroMQ (client/link.h): a fake network of queued
// frames and a virtual clock, as the simulator gives it. Retransmissions and deadlines run in
// the link's time, not the system's, and what the link delivers reaches the quorums.
#include <gtest/gtest.h>

#include <deque>
#include <utility>

#include "client/client.h"
#include "crypto/envelope.h"
#include "ledger/tx.h"

namespace tally::client {
namespace {

using crypto::KeyPair;
using namespace std::chrono_literals;

KeyPair replica_key(uint32_t i) {
    crypto::Seed seed{};
    seed.fill(static_cast<uint8_t>(0x40 + i));
    return KeyPair::from_seed(seed);
}

KeyPair sender_key() {
    crypto::Seed seed{};
    seed.fill(0x77);
    return KeyPair::from_seed(seed);
}

// Records what the Client sends, hands it the frames queued for it, and tells it the time the
// test sets. receive() never waits: it records how long the Client asked it to.
class FakeLink final : public ClientLink {
public:
    bool send(uint32_t replica, std::string_view frame) override {
        sent.emplace_back(replica, std::string(frame));
        return true;
    }
    void receive(Duration max_wait, const std::function<void(uint32_t, std::string_view)>& on_frame,
                 uint64_t& /*malformed*/) override {
        waits.push_back(max_wait);
        while (!inbox.empty()) {
            auto [replica, frame] = std::move(inbox.front());
            inbox.pop_front();
            on_frame(replica, frame);
        }
    }
    Clock::time_point now() const override { return clock; }

    std::vector<std::pair<uint32_t, std::string>> sent;
    std::deque<std::pair<uint32_t, std::string>> inbox;
    std::vector<Duration> waits;
    Clock::time_point clock{};  // virtual: starts at the clock's epoch
};

// Four PBFT replicas (f = 1) that exist only as keys: the fake link is the network.
node::api::NetworkConfig four_replicas() {
    node::api::NetworkConfig config;
    config.protocol = bft::Protocol::kPbft;
    config.f = 1;
    for (uint32_t i = 0; i < 4; ++i) {
        node::api::ReplicaConfig r;
        r.id = i;
        r.port = static_cast<uint16_t>(1 + i);  // never dialled
        r.public_key = replica_key(i).public_key();
        config.replicas.push_back(r);
    }
    return config;
}

// Replica i's honest, signed reply to `request`.
std::string reply_from(uint32_t i, const std::string& request, uint64_t seq) {
    auto tx = ledger::decode_tx(request);
    EXPECT_TRUE(tx.ok());
    node::api::pb::Reply reply;
    reply.set_tx_id(std::string(crypto::as_bytes(tx->id)));
    reply.set_client(std::string(crypto::as_bytes(tx->sender)));
    reply.set_nonce(tx->nonce);
    reply.set_result(0);
    reply.set_seq(seq);
    reply.set_replica(i);
    return crypto::seal(replica_key(i), crypto::MessageType::kReply, reply.SerializeAsString());
}

struct Connected {
    Client client;
    FakeLink* link;  // owned by client
};

std::unique_ptr<Connected> connect(ClientOptions options) {
    auto out = std::unique_ptr<Connected>(new Connected{Client(options), nullptr});
    auto link = std::make_unique<FakeLink>();
    out->link = link.get();
    EXPECT_TRUE(out->client.connect(four_replicas(), std::move(link)).ok());
    return out;
}

TEST(ClientLink, RetransmitsAndTimesOutInTheLinksTimeWithoutWaiting) {
    ClientOptions options;
    options.retransmit_interval = 1'000ms;
    auto c = connect(options);
    FakeLink& link = *c->link;
    std::optional<Result<OrderedResult>> out;
    const std::string request = ledger::make_transfer(sender_key(), replica_key(9).public_key(), 5, 1);
    ASSERT_TRUE(c->client.submit_async(request, [&](const Result<OrderedResult>& r) { out = r; }, 3'500ms).ok());
    ASSERT_EQ(link.sent.size(), 4u);  // one copy to every replica
    for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(link.sent[i], std::make_pair(i, request));

    // Asked to wait a minute, the Client waits only until its retransmission is due, in the
    // link's time.
    EXPECT_EQ(c->client.poll(60'000ms), 0u);
    ASSERT_FALSE(link.waits.empty());
    EXPECT_EQ(link.waits.back(), 1'000ms);

    link.clock += 999ms;
    c->client.poll(0ms);
    EXPECT_EQ(link.sent.size(), 4u);
    EXPECT_EQ(c->client.retransmits(), 0u);

    link.clock += 1ms;
    c->client.poll(0ms);
    ASSERT_EQ(link.sent.size(), 8u);
    EXPECT_EQ(c->client.retransmits(), 1u);
    for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(link.sent[4 + i], std::make_pair(i, request));

    link.clock += 2'499ms;  // 3'499 ms: another retransmission, the deadline not yet
    EXPECT_EQ(c->client.poll(0ms), 0u);
    EXPECT_FALSE(out.has_value());
    EXPECT_EQ(c->client.outstanding(), 1u);

    link.clock += 1ms;  // the deadline
    EXPECT_EQ(c->client.poll(0ms), 1u);
    ASSERT_TRUE(out.has_value());
    ASSERT_FALSE(out->ok());
    EXPECT_EQ(out->error().code, "timeout");
    EXPECT_EQ(c->client.outstanding(), 0u);
}

TEST(ClientLink, FramesTheLinkDeliversReachTheClient) {
    auto c = connect({});
    FakeLink& link = *c->link;
    std::optional<Result<OrderedResult>> out;
    const std::string request = ledger::make_transfer(sender_key(), replica_key(9).public_key(), 5, 1);
    ASSERT_TRUE(c->client.submit_async(request, [&](const Result<OrderedResult>& r) { out = r; }, 5s).ok());

    link.inbox.emplace_back(2, "not an envelope");
    link.inbox.emplace_back(0, reply_from(0, request, 7));
    c->client.poll(0ms);
    EXPECT_EQ(c->client.counters().malformed, 1u);
    EXPECT_FALSE(out.has_value()) << "one reply is not f+1";

    link.inbox.emplace_back(1, reply_from(1, request, 7));
    EXPECT_EQ(c->client.poll(0ms), 1u);
    ASSERT_TRUE(out.has_value());
    ASSERT_TRUE(out->ok()) << out->error().message;
    EXPECT_EQ((*out)->seq, 7u);
}

// A simulation replays a seed and expects the same sends in the same order: requests due at
// one instant are retransmitted in the order they were made, whatever their ids hash to.
TEST(ClientLink, RequestsDueTogetherAreRetransmittedInTheOrderTheyWereMade) {
    ClientOptions options;
    options.retransmit_interval = 1'000ms;
    auto c = connect(options);
    FakeLink& link = *c->link;
    std::vector<std::string> requests;
    for (uint64_t nonce = 1; nonce <= 32; ++nonce) {
        requests.push_back(ledger::make_transfer(sender_key(), replica_key(9).public_key(), 5, nonce));
        ASSERT_TRUE(c->client.submit_async(requests.back(), nullptr, 10s).ok());
    }
    link.sent.clear();
    link.clock += 1'000ms;
    c->client.poll(0ms);
    ASSERT_EQ(link.sent.size(), 4 * requests.size());
    for (size_t k = 0; k < requests.size(); ++k) {
        for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(link.sent[4 * k + i], std::make_pair(i, requests[k]));
    }
}

TEST(ClientLink, ASeedMakesTheClientsOwnRandomnessReplayable) {
    auto status_request = [](uint64_t seed) {
        ClientOptions options;
        options.seed = seed;
        auto c = connect(options);
        (void)c->client.status(0ms);  // nobody answers; the request is what counts
        EXPECT_EQ(c->link->sent.size(), 4u);
        return c->link->sent.empty() ? std::string() : c->link->sent.front().second;
    };
    EXPECT_EQ(status_request(1), status_request(1));
    EXPECT_NE(status_request(1), status_request(2));
}

TEST(ClientLink, ConnectRefusesNoLink) {
    Client client;
    auto s = client.connect(four_replicas(), nullptr);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, "invalid");
    EXPECT_EQ(client.submit_async(ledger::make_transfer(sender_key(), replica_key(9).public_key(), 5, 1),
                                  nullptr)
                  .error()
                  .code,
              "not_connected");
}

}  // namespace
}  // namespace tally::client
