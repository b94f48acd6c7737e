// ClientRoutes: a route is taken once; a retransmission refreshes it; the map is bounded and
// forgets the oldest first, also after many routes were taken out of order.
#include "node/client_routes.h"

#include <gtest/gtest.h>

namespace tally::node {
namespace {

crypto::Hash id(uint32_t n) {
    crypto::Hash h{};
    h[0] = static_cast<uint8_t>(n);
    h[1] = static_cast<uint8_t>(n >> 8);
    h[2] = static_cast<uint8_t>(n >> 16);
    return h;
}

TEST(ClientRoutesTest, ARouteIsTakenOnce) {
    ClientRoutes routes;
    routes.remember(id(1), ClientRoute{"conn-a", {}, 5});
    auto route = routes.take(id(1));
    ASSERT_TRUE(route.has_value());
    EXPECT_EQ(route->routing_id, "conn-a");
    EXPECT_EQ(route->nonce, 5u);
    EXPECT_FALSE(routes.take(id(1)).has_value());
    EXPECT_FALSE(routes.take(id(2)).has_value());
}

TEST(ClientRoutesTest, ARetransmissionOnANewConnectionRefreshesTheRoute) {
    ClientRoutes routes;
    routes.remember(id(1), ClientRoute{"old", {}, 5});
    routes.remember(id(1), ClientRoute{"new", {}, 5});
    EXPECT_EQ(routes.size(), 1u);
    EXPECT_EQ(routes.take(id(1))->routing_id, "new");
}

TEST(ClientRoutesTest, TheOldestRouteIsForgottenFirst) {
    ClientRoutes routes(2);
    routes.remember(id(1), ClientRoute{"1", {}, 1});
    routes.remember(id(2), ClientRoute{"2", {}, 2});
    routes.remember(id(3), ClientRoute{"3", {}, 3});
    EXPECT_EQ(routes.size(), 2u);
    EXPECT_FALSE(routes.take(id(1)).has_value());
    EXPECT_TRUE(routes.take(id(2)).has_value());
    EXPECT_TRUE(routes.take(id(3)).has_value());
}

TEST(ClientRoutesTest, StaysBoundedWhenRoutesAreTakenOutOfOrderBehindALongLivedOne) {
    ClientRoutes routes(4);
    routes.remember(id(0), ClientRoute{"long-lived", {}, 0});
    for (uint32_t i = 1; i < 10000; ++i) {
        routes.remember(id(i), ClientRoute{"x", {}, i});
        ASSERT_TRUE(routes.take(id(i)).has_value());
    }
    EXPECT_EQ(routes.size(), 1u);
    EXPECT_EQ(routes.take(id(0))->routing_id, "long-lived");
}

}  // namespace
}  // namespace tally::node
