// Per-connection limits for clients: a token bucket of bytes per connection and the count of
// connections open per address; and what a replica's bad signatures may cost
// (node/connection_limits.h).
#include "node/connection_limits.h"

#include <gtest/gtest.h>

namespace tally::node {
namespace {

using namespace std::chrono_literals;
using Clock = ConnectionRates::Clock;

ConnectionLimits limits(uint64_t rate, uint64_t burst) {
    ConnectionLimits l;
    l.bytes_per_second = rate;
    l.burst_bytes = burst;
    return l;
}

TEST(ConnectionRates, ABurstPassesThenTheConnectionWaitsForItsRate) {
    ConnectionRates rates(limits(1000, 500));
    const Clock::time_point t0{};
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(rates.allow("a", 100, t0)) << i;
    EXPECT_FALSE(rates.allow("a", 100, t0)) << "beyond the burst";
    EXPECT_FALSE(rates.allow("a", 100, t0 + 50ms)) << "50 bytes refilled, 100 needed";
    EXPECT_TRUE(rates.allow("a", 100, t0 + 100ms)) << "100 bytes refilled at 1000/s";
    EXPECT_FALSE(rates.allow("a", 1, t0 + 100ms));
    // The bucket never holds more than the burst, however long the pause.
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(rates.allow("a", 100, t0 + 1h)) << i;
    EXPECT_FALSE(rates.allow("a", 100, t0 + 1h));
}

TEST(ConnectionRates, OneConnectionsFloodCostsNoOtherConnectionItsRate) {
    ConnectionRates rates(limits(1000, 500));
    const Clock::time_point t0{};
    for (int i = 0; i < 100; ++i) (void)rates.allow("flood", 100, t0);
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(rates.allow("honest", 100, t0)) << i;
    EXPECT_FALSE(rates.allow("a frame larger than the burst", 501, t0 + 1h));
}

TEST(ConnectionRates, PruningForgetsOnlyConnectionsWhoseBucketsAreFullAgain) {
    ConnectionRates rates(limits(1000, 500));
    const Clock::time_point t0{};
    EXPECT_TRUE(rates.allow("idle", 500, t0));
    EXPECT_TRUE(rates.allow("busy", 500, t0 + 400ms));
    EXPECT_EQ(rates.tracked(), 2u);
    rates.prune(t0 + 600ms);  // idle has refilled 600 bytes (full); busy 200 of 500
    EXPECT_EQ(rates.tracked(), 1u);
    // The verdicts are what they would have been: busy still has only 200 bytes.
    EXPECT_FALSE(rates.allow("busy", 300, t0 + 600ms));
    EXPECT_TRUE(rates.allow("busy", 200, t0 + 600ms));
    EXPECT_TRUE(rates.allow("idle", 500, t0 + 600ms));
}

TEST(ConnectionRates, ABadSignaturesChargeSilencesItsConnectionUntilTheDebtIsRepaid) {
    ConnectionRates rates(limits(1000, 500));
    const Clock::time_point t0{};
    EXPECT_TRUE(rates.allow("liar", 100, t0));
    rates.charge("liar", 2000, t0);  // 400 left, less 2000: 1600 in debt
    EXPECT_FALSE(rates.allow("liar", 1, t0 + 1500ms)) << "still 100 bytes in debt";
    EXPECT_TRUE(rates.allow("liar", 100, t0 + 1700ms));
    EXPECT_TRUE(rates.allow("bystander", 500, t0)) << "the charge is the liar's alone";
    rates.prune(t0 + 1s);
    EXPECT_FALSE(rates.allow("liar", 1, t0 + 1500ms)) << "pruning forgave a debt";
}

// A replica's bad signatures (PeerFaultLimits, used as the replica node does: a fault is one
// unit, and a frame costs nothing to let through while the replica is not in debt).
TEST(ConnectionRates, AReplicaMaySendABurstOfBadSignaturesThenOneASecond) {
    ConnectionRates faults(PeerFaultLimits{});
    const Clock::time_point t0{};
    EXPECT_TRUE(faults.allow("3", 0, t0)) << "a replica that never sent a bad signature is heard";
    for (int i = 0; i < 16; ++i) faults.charge("3", 1, t0);
    EXPECT_TRUE(faults.allow("3", 0, t0)) << "16 at once: the burst";
    faults.charge("3", 1, t0);
    EXPECT_FALSE(faults.allow("3", 0, t0)) << "the 17th puts it in debt: silenced";
    EXPECT_FALSE(faults.allow("3", 0, t0 + 900ms));
    EXPECT_TRUE(faults.allow("3", 0, t0 + 1s)) << "heard again once a second paid the debt";
    faults.charge("3", 1, t0 + 1s);
    EXPECT_FALSE(faults.allow("3", 0, t0 + 1500ms)) << "then one bad signature a second, no burst";
    EXPECT_TRUE(faults.allow("1", 0, t0 + 1500ms)) << "another replica is not charged";
}

TEST(AddressCounts, ConnectionsAreCountedPerAddressUntilTheyClose) {
    AddressCounts counts;
    counts.opened(7, "10.0.0.1");
    counts.opened(8, "10.0.0.1");
    counts.opened(9, "10.0.0.2");
    counts.opened(10, "");  // the peer was gone before its address was read: not counted
    EXPECT_EQ(counts.count("10.0.0.1"), 2u);
    EXPECT_EQ(counts.count("10.0.0.2"), 1u);
    EXPECT_EQ(counts.count("10.0.0.3"), 0u);
    counts.closed(7);
    counts.closed(7);   // a second close of the same descriptor changes nothing
    counts.closed(42);  // nor does an unknown one
    EXPECT_EQ(counts.count("10.0.0.1"), 1u);
    EXPECT_EQ(counts.open_connections(), 2u);
}

TEST(AddressCounts, AReusedDescriptorMovesToItsNewAddress) {
    AddressCounts counts;
    counts.opened(7, "10.0.0.1");
    counts.opened(7, "10.0.0.2");  // its close was not seen before the descriptor came back
    EXPECT_EQ(counts.count("10.0.0.1"), 0u);
    EXPECT_EQ(counts.count("10.0.0.2"), 1u);
    counts.closed(7);
    EXPECT_EQ(counts.open_connections(), 0u);
}

}  // namespace
}  // namespace tally::node
