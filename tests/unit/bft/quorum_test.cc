// bft/quorum.h: the one place that says how many replicas a protocol runs, how many may fail
// and how many must answer alike.
#include "bft/quorum.h"

#include <gtest/gtest.h>

namespace tally::bft {
namespace {

TEST(Quorums, PbftRunsThreeFPlusOneAndDecidesWithTwoFPlusOne) {
    for (uint32_t f = 1; f <= 5; ++f) {
        const Quorums q(Protocol::kPbft, f);
        EXPECT_EQ(q.n(), 3 * f + 1);
        EXPECT_EQ(Quorums::max_faults(Protocol::kPbft, q.n()), f);
        EXPECT_EQ(ByzantineQuorum{f}.quorum(), 2 * f + 1);
        // Any two decision quorums share f+1 replicas: at least one honest.
        EXPECT_EQ(2 * ByzantineQuorum{f}.quorum() - q.n(), ByzantineQuorum{f}.weak());
    }
    EXPECT_EQ(Quorums::max_faults(Protocol::kPbft, 6), 1u);  // 6 replicas tolerate no more than 4
    EXPECT_EQ(Quorums::size_rule(Protocol::kPbft), "3f+1");
}

TEST(Quorums, APbftClientBelievesFPlusOneRepliesAndTwoFPlusOneForAFastRead) {
    const ClientQuorum rule = Quorums(Protocol::kPbft, 2).client();
    EXPECT_EQ(rule.ordered, 3u);            // f+1: at least one honest
    EXPECT_EQ(rule.fast_read, 5u);          // 2f+1: f+1 honest at one seq
    EXPECT_EQ(rule.read_heard_enough, 5u);  // n-f: the other f may never answer
}

TEST(Quorums, RaftRunsTwoFPlusOneAndItsClientBelievesTheLeader) {
    const Quorums q(Protocol::kRaft, 2);
    EXPECT_EQ(q.n(), 5u);
    EXPECT_EQ(Quorums::max_faults(Protocol::kRaft, 5), 2u);
    EXPECT_EQ(Quorums::size_rule(Protocol::kRaft), "2f+1");
    EXPECT_EQ(q.client().ordered, 1u);
    EXPECT_EQ(q.client().fast_read, 3u);  // a majority
    EXPECT_EQ(q.client().read_heard_enough, 3u);
}

TEST(Quorums, ProtocolNamesRoundTripAndUnknownNamesAreRefused) {
    for (Protocol p : {Protocol::kPbft, Protocol::kRaft})
        EXPECT_EQ(protocol_from_name(protocol_name(p)), p);
    EXPECT_FALSE(protocol_from_name("paxos").has_value());
    EXPECT_FALSE(protocol_from_name("PBFT").has_value());
}

}  // namespace
}  // namespace tally::bft
