// Transport: clients get a socket of their own, whose frame limit fits the largest valid
// client message and refuses anything bigger; replies go back through the socket a request
// came on; without a client port, clients share the peers' socket as before.
#include "node/transport.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <limits>

#include "crypto/envelope.h"
#include "ledger/tx.h"
#include "node/api/client.pb.h"

namespace tally::node {
namespace {

using namespace std::chrono_literals;

std::vector<uint16_t> free_ports(size_t count) {
    std::vector<int> fds;
    std::vector<uint16_t> ports;
    for (size_t i = 0; i < count; ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
        socklen_t len = sizeof(addr);
        EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
        ports.push_back(ntohs(addr.sin_port));
        fds.push_back(fd);
    }
    for (int fd : fds) ::close(fd);
    return ports;
}

api::NetworkConfig one_replica(bool client_port) {
    const auto ports = free_ports(2);
    api::NetworkConfig config;
    api::ReplicaConfig r;
    r.id = 0;
    r.port = ports[0];
    if (client_port) r.client_port = ports[1];
    r.public_key = crypto::KeyPair::generate().public_key();
    config.replicas.push_back(r);
    return config;
}

// Receives one frame (waiting up to a deadline), or nothing.
std::optional<std::pair<std::string, std::string>> receive(Transport& t, std::chrono::milliseconds wait) {
    const auto until = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < until) {
        std::vector<zmq::pollitem_t> items = {{t.router().handle(), 0, ZMQ_POLLIN, 0}};
        if (t.clients()) items.push_back({t.clients()->handle(), 0, ZMQ_POLLIN, 0});
        zmq::poll(items.data(), items.size(), 20ms);
        std::string routing_id;
        zmq::message_t frame;
        if (t.receive(routing_id, frame) == Transport::Received::kFrame)
            return std::make_pair(routing_id, frame.to_string());
    }
    return std::nullopt;
}

zmq::socket_t dealer(zmq::context_t& context, const std::string& endpoint) {
    zmq::socket_t s(context, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.connect(endpoint);
    return s;
}

TEST(TransportTest, TheLargestValidClientMessagesFitTheClientFrameLimitWithRoomToSpare) {
    const auto key = crypto::KeyPair::generate();
    const uint64_t max = std::numeric_limits<uint64_t>::max();
    const std::string transfer = ledger::make_transfer(key, key.public_key(), max, max);
    api::pb::ReadRequest read;
    read.set_query(ledger::make_balance_query(key, key.public_key(), max));
    const std::string read_request = crypto::seal(key, crypto::MessageType::kReadRequest, read.SerializeAsString());
    api::pb::StatusRequest status;
    status.set_nonce(max);
    const std::string status_request =
        crypto::seal(key, crypto::MessageType::kStatusRequest, status.SerializeAsString());
    for (const auto& m : {transfer, read_request, status_request})
        EXPECT_LE(4 * m.size(), kClientMessageBytesMax) << m.size() << " bytes";
}

TEST(TransportTest, ClientsHaveTheirOwnSocketAndAFrameAboveItsLimitNeverArrives) {
    const api::NetworkConfig config = one_replica(true);
    auto t = Transport::open(config, 0);
    ASSERT_TRUE(t.ok()) << t.error().message;
    Transport& transport = **t;
    ASSERT_NE(transport.clients(), nullptr);
    zmq::context_t context(1);

    auto client = dealer(context, config.replicas[0].client_endpoint());
    const std::string too_big(kClientMessageBytesMax + 1, 'x');
    client.send(zmq::buffer(too_big));  // ZeroMQ drops it and the connection with it
    auto client2 = dealer(context, config.replicas[0].client_endpoint());
    client2.send(zmq::str_buffer("hello"));
    auto got = receive(transport, 3000ms);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->second, "hello");
    EXPECT_TRUE(on_client_port(got->first));

    // The reply goes back through the clients' socket, to that connection.
    ASSERT_TRUE(transport.send_to_client(got->first, "reply"));
    zmq::pollitem_t item{client2.handle(), 0, ZMQ_POLLIN, 0};
    ASSERT_EQ(zmq::poll(&item, 1, 3000ms), 1);
    zmq::message_t reply;
    ASSERT_TRUE(client2.recv(reply, zmq::recv_flags::dontwait));
    EXPECT_EQ(reply.to_string(), "reply");

    // The peers' socket still takes big frames (pre-prepares, snapshot pieces).
    auto peer = dealer(context, config.replicas[0].endpoint());
    const std::string big(1 << 20, 'y');
    peer.send(zmq::buffer(big));
    got = receive(transport, 3000ms);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->second.size(), big.size());
    EXPECT_FALSE(on_client_port(got->first));
    EXPECT_FALSE(receive(transport, 200ms).has_value()) << "the oversized client frame arrived";
}

TEST(TransportTest, WithoutAClientPortClientsShareThePeersSocket) {
    const api::NetworkConfig config = one_replica(false);
    EXPECT_EQ(config.replicas[0].client_endpoint(), config.replicas[0].endpoint());
    auto t = Transport::open(config, 0);
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ((*t)->clients(), nullptr);
    zmq::context_t context(1);
    auto client = dealer(context, config.replicas[0].client_endpoint());
    client.send(zmq::str_buffer("hello"));
    auto got = receive(**t, 3000ms);
    ASSERT_TRUE(got.has_value());
    EXPECT_FALSE(on_client_port(got->first));
    EXPECT_TRUE((*t)->send_to_client(got->first, "reply"));
}

}  // namespace
}  // namespace tally::node
