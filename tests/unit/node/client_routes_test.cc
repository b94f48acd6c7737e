// ClientRoutes: a request is taken once with all its routes; the first connection owns its
// route and a copy from another connection cannot take it over; per-sender and per-connection
// counts follow admissions, takes and expiry; the order deque stays bounded.
#include "node/client_routes.h"

#include <gtest/gtest.h>

namespace tally::node {
namespace {

using Clock = ClientRoutes::Clock;

crypto::Hash id(uint32_t n) {
    crypto::Hash h{};
    h[0] = static_cast<uint8_t>(n);
    h[1] = static_cast<uint8_t>(n >> 8);
    h[2] = static_cast<uint8_t>(n >> 16);
    return h;
}

crypto::PublicKey key(uint8_t n) {
    crypto::PublicKey k{};
    k[0] = n;
    return k;
}

const Clock::time_point kT0{};

TEST(ClientRoutesTest, ARequestIsTakenOnceWithItsRoute) {
    ClientRoutes routes;
    routes.add(id(1), key(1), 5, false, "conn-a", kT0);
    auto pending = routes.take(id(1));
    ASSERT_TRUE(pending.has_value());
    ASSERT_EQ(pending->routing_ids.size(), 1u);
    EXPECT_EQ(pending->routing_ids[0], "conn-a");
    EXPECT_EQ(pending->nonce, 5u);
    EXPECT_EQ(pending->client, key(1));
    EXPECT_FALSE(routes.take(id(1)).has_value());
    EXPECT_FALSE(routes.take(id(2)).has_value());
}

TEST(ClientRoutesTest, ACopyOnAnotherConnectionAddsARouteAndNeverReplacesTheClientsOwn) {
    ClientRoutes routes;
    routes.add(id(1), key(1), 5, false, "client", kT0);
    // A Byzantine replica (or anyone) resends the bytes it saw, from connection after
    // connection: the client's own route stays first, whatever it does.
    for (int i = 0; i < 50; ++i) routes.add_route(id(1), "traitor-" + std::to_string(i));
    EXPECT_FALSE(routes.add_route(id(1), "client"));  // already a route
    auto pending = routes.take(id(1));
    ASSERT_TRUE(pending.has_value());
    EXPECT_EQ(pending->routing_ids.front(), "client");
    EXPECT_LE(pending->routing_ids.size(), ClientRoutesLimits{}.routes_per_request_max);
    EXPECT_EQ(routes.connections(), 0u);  // every route's count released
}

TEST(ClientRoutesTest, TheClientsRetransmissionOnANewConnectionIsAnsweredThere) {
    ClientRoutes routes;
    routes.add(id(1), key(1), 5, false, "old", kT0);
    EXPECT_TRUE(routes.add_route(id(1), "new"));
    auto pending = routes.take(id(1));
    ASSERT_TRUE(pending.has_value());
    EXPECT_EQ(pending->routing_ids, (std::vector<std::string>{"old", "new"}));
}

TEST(ClientRoutesTest, CountsPerSenderAndPerConnectionFollowAdmissionsAndTakes) {
    ClientRoutes routes;
    routes.add(id(1), key(1), 1, false, "a", kT0);
    routes.add(id(2), key(1), 2, false, "a", kT0);
    routes.add(id(3), key(2), 1, true, "b", kT0);
    routes.add_route(id(3), "a");
    EXPECT_EQ(routes.of_sender(key(1)), 2u);
    EXPECT_EQ(routes.of_sender(key(2)), 1u);
    EXPECT_EQ(routes.of_connection("a"), 3u);
    EXPECT_EQ(routes.of_connection("b"), 1u);
    EXPECT_EQ(routes.queries(), 1u);
    routes.take(id(3));
    EXPECT_EQ(routes.of_connection("a"), 2u);
    EXPECT_EQ(routes.of_connection("b"), 0u);
    EXPECT_EQ(routes.queries(), 0u);
    routes.take(id(1));
    routes.take(id(2));
    EXPECT_EQ(routes.of_sender(key(1)), 0u);
    EXPECT_EQ(routes.senders(), 0u);
    EXPECT_EQ(routes.connections(), 0u);
}

TEST(ClientRoutesTest, ARequestExpiresAfterItsTimeToLiveAndStopsCounting) {
    ClientRoutesLimits limits;
    limits.ttl = std::chrono::seconds(30);
    ClientRoutes routes(limits);
    routes.add(id(1), key(1), 1, false, "a", kT0);
    routes.add(id(2), key(1), 2, false, "a", kT0 + std::chrono::seconds(20));
    routes.expire(kT0 + std::chrono::seconds(29));
    EXPECT_EQ(routes.size(), 2u);
    routes.expire(kT0 + std::chrono::seconds(30));
    EXPECT_EQ(routes.size(), 1u);
    EXPECT_FALSE(routes.contains(id(1)));
    EXPECT_EQ(routes.of_sender(key(1)), 1u);
    EXPECT_EQ(routes.of_connection("a"), 1u);
    EXPECT_EQ(routes.expired(), 1u);
}

TEST(ClientRoutesTest, FullMeansFullAndNothingIsEvicted) {
    ClientRoutesLimits limits;
    limits.requests_max = 2;
    ClientRoutes routes(limits);
    routes.add(id(1), key(1), 1, false, "1", kT0);
    EXPECT_FALSE(routes.full());
    routes.add(id(2), key(2), 2, false, "2", kT0);
    EXPECT_TRUE(routes.full());
    EXPECT_TRUE(routes.contains(id(1)));
}

TEST(ClientRoutesTest, StaysBoundedWhenRequestsAreTakenOutOfOrderBehindALongLivedOne) {
    ClientRoutesLimits limits;
    limits.requests_max = 4;
    ClientRoutes routes(limits);
    routes.add(id(0), key(0), 0, false, "long-lived", kT0);
    for (uint32_t i = 1; i < 10000; ++i) {
        routes.add(id(i), key(1), i, false, "x", kT0);
        ASSERT_TRUE(routes.take(id(i)).has_value());
    }
    EXPECT_EQ(routes.size(), 1u);
    EXPECT_EQ(routes.take(id(0))->routing_ids.front(), "long-lived");
}

}  // namespace
}  // namespace tally::node
