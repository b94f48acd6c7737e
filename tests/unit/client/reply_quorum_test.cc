// ReplyQuorum: a client accepts a result only when f+1 distinct replicas sent matching signed
// replies (2f+1 matching read replies for a fast read), and counts everything else.
#include "client/reply_quorum.h"

#include <gtest/gtest.h>

#include <vector>

#include "crypto/envelope.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "ledger/tx.h"

namespace tally::client {
namespace {

using crypto::KeyPair;
using crypto::MessageType;

KeyPair replica_key(uint8_t i) {
    crypto::Seed seed{};
    seed.fill(static_cast<uint8_t>(0x40 + i));
    return KeyPair::from_seed(seed);
}

struct Fixture {
    std::vector<KeyPair> keys;
    ExpectedRequest expected;
    Fixture() {
        for (uint8_t i = 0; i < 4; ++i) keys.push_back(replica_key(i));
        expected.tx_id = crypto::sha256("a transfer");
        expected.client = replica_key(9).public_key();
        expected.nonce = 7;
    }

    node::api::pb::Reply reply(uint32_t replica, uint32_t result = 0, uint64_t seq = 5) const {
        node::api::pb::Reply r;
        r.set_tx_id(std::string(crypto::as_bytes(expected.tx_id)));
        r.set_client(std::string(crypto::as_bytes(expected.client)));
        r.set_nonce(expected.nonce);
        r.set_result(result);
        r.set_seq(seq);
        r.set_value(0);
        r.set_account_nonce(0);
        r.set_view(0);
        r.set_replica(replica);
        return r;
    }
    std::string frame(uint32_t replica, const node::api::pb::Reply& r) const {
        return crypto::seal(keys[replica], MessageType::kReply, r.SerializeAsString());
    }
    std::string read_frame(uint32_t replica, const node::api::pb::Reply& r) const {
        node::api::pb::ReadReply read;
        *read.mutable_reply() = r;
        read.set_state_digest(std::string(32, 'd'));
        return crypto::seal(keys[replica], MessageType::kReadReply, read.SerializeAsString());
    }
    // A frame that claims to be from `replica` but whose signature does not verify.
    std::string forged(uint32_t replica, const node::api::pb::Reply& r) const {
        std::string f = frame(replica, r);
        f.back() = static_cast<char>(f.back() ^ 0x01);
        return f;
    }
    ReplyQuorum ordered() const { return ReplyQuorum(QuorumKind::kOrdered, 2, 4, expected); }
    ReplyQuorum read() const { return ReplyQuorum(QuorumKind::kRead, 3, 4, expected); }
    const crypto::PublicKey& pk(uint32_t i) const { return keys[i].public_key(); }
};

TEST(ReplyQuorum, AcceptsWhenFPlusOneDistinctReplicasMatch) {
    Fixture fx;
    auto q = fx.ordered();
    EXPECT_EQ(q.add(0, fx.pk(0), fx.frame(0, fx.reply(0))), Vote::kPending);
    EXPECT_FALSE(q.done());
    EXPECT_EQ(q.add(1, fx.pk(1), fx.frame(1, fx.reply(1))), Vote::kAccepted);
    ASSERT_TRUE(q.done());
    EXPECT_EQ(q.accepted()->seq(), 5u);
    EXPECT_EQ(q.accepted()->result(), 0u);
    EXPECT_EQ(q.counters().accepted, 2u);
    EXPECT_EQ(q.counters().rejected(), 0u);
}

TEST(ReplyQuorum, ViewAndReplicaMayDifferBetweenMatchingReplies) {
    Fixture fx;
    auto q = fx.ordered();
    auto a = fx.reply(0);
    a.set_view(3);
    auto b = fx.reply(2);
    b.set_view(4);
    EXPECT_EQ(q.add(0, fx.pk(0), fx.frame(0, a)), Vote::kPending);
    EXPECT_EQ(q.add(2, fx.pk(2), fx.frame(2, b)), Vote::kAccepted);
}

TEST(ReplyQuorum, DuplicatesFromOneReplicaAreCountedOnce) {
    Fixture fx;
    auto q = fx.ordered();
    const auto f0 = fx.frame(0, fx.reply(0));
    EXPECT_EQ(q.add(0, fx.pk(0), f0), Vote::kPending);
    EXPECT_EQ(q.add(0, fx.pk(0), f0), Vote::kDuplicate);
    auto again = fx.reply(0);
    again.set_view(1);  // a retransmitted reply after a view change: the same answer
    EXPECT_EQ(q.add(0, fx.pk(0), fx.frame(0, again)), Vote::kDuplicate);
    EXPECT_FALSE(q.done());
    EXPECT_EQ(q.counters().duplicate, 2u);
    EXPECT_EQ(q.add(3, fx.pk(3), fx.frame(3, fx.reply(3))), Vote::kAccepted);
}

TEST(ReplyQuorum, MismatchingRepliesDoNotCountTogetherAndAreCountedAsRejected) {
    Fixture fx;
    auto q = fx.ordered();
    EXPECT_EQ(q.add(0, fx.pk(0), fx.frame(0, fx.reply(0, 0, 5))), Vote::kPending);
    EXPECT_EQ(q.add(1, fx.pk(1), fx.frame(1, fx.reply(1, 0, 6))), Vote::kPending);  // other seq
    EXPECT_EQ(q.add(2, fx.pk(2), fx.frame(2, fx.reply(2, 4, 5))), Vote::kPending);  // other result
    EXPECT_FALSE(q.done());
    EXPECT_EQ(q.add(3, fx.pk(3), fx.frame(3, fx.reply(3, 0, 5))), Vote::kAccepted);
    EXPECT_EQ(q.accepted()->seq(), 5u);
    EXPECT_EQ(q.counters().mismatch, 2u);
    EXPECT_EQ(q.counters().rejected(), 2u);
}

TEST(ReplyQuorum, AReplyWithABadSignatureIsDroppedAndCounted) {
    Fixture fx;
    auto q = fx.ordered();
    // One short of a quorum of two, so checked at once: the forged one fails.
    EXPECT_EQ(q.add(1, fx.pk(1), fx.forged(1, fx.reply(1))), Vote::kRejected);
    EXPECT_EQ(q.counters().bad_signature, 1u);
    EXPECT_EQ(q.add(0, fx.pk(0), fx.frame(0, fx.reply(0))), Vote::kPending);
    EXPECT_FALSE(q.done());
    EXPECT_EQ(q.counters().bad_signature, 1u);
    // The real replica 1 is not shut out by the forgery in its name.
    EXPECT_EQ(q.add(1, fx.pk(1), fx.frame(1, fx.reply(1))), Vote::kAccepted);
    EXPECT_EQ(q.counters().rejected(), 1u);
}

TEST(ReplyQuorum, TheReplyThatFailsVerificationIsReportedRejected) {
    Fixture fx;
    auto q = fx.ordered();
    EXPECT_EQ(q.add(0, fx.pk(0), fx.frame(0, fx.reply(0))), Vote::kPending);
    EXPECT_EQ(q.add(2, fx.pk(2), fx.forged(2, fx.reply(2))), Vote::kRejected);
    EXPECT_FALSE(q.done());
}

TEST(ReplyQuorum, SignaturesAreOnlyCheckedWhenTheirGroupIsAtMostOneShortOfAQuorum) {
    Fixture fx;
    // A fast read needs 2f+1 = 3: its first reply waits unchecked, the second (one short) is
    // checked with it while the client waits for the third.
    auto read = fx.read();
    std::string forged_read = fx.read_frame(0, fx.reply(0));
    forged_read.back() = static_cast<char>(forged_read.back() ^ 0x01);
    EXPECT_EQ(read.add(0, fx.pk(0), forged_read), Vote::kPending);
    EXPECT_EQ(read.counters().bad_signature, 0u) << "not checked yet";
    EXPECT_EQ(read.add(1, fx.pk(1), fx.read_frame(1, fx.reply(1))), Vote::kPending);
    EXPECT_EQ(read.counters().bad_signature, 1u) << "checked one short of the quorum";
    auto q = fx.ordered();
    EXPECT_EQ(q.add(0, fx.pk(0), fx.frame(0, fx.reply(0))), Vote::kPending);
    EXPECT_EQ(q.add(1, fx.pk(1), fx.frame(1, fx.reply(1))), Vote::kAccepted);
    // After the quorum, a matching reply is not verified at all (not needed) ...
    EXPECT_EQ(q.add(2, fx.pk(2), fx.forged(2, fx.reply(2))), Vote::kLate);
    EXPECT_EQ(q.counters().bad_signature, 0u);
    // ... and a disagreeing one is counted as a lie.
    EXPECT_EQ(q.add(3, fx.pk(3), fx.frame(3, fx.reply(3, 4))), Vote::kLate);
    EXPECT_EQ(q.counters().mismatch, 1u);
}

TEST(ReplyQuorum, ALaterExecutionOfANotFinalResultIsNotALie) {
    // kNonceTooHigh is not recorded by the ledger: another copy of the transfer may be ordered
    // later and succeed; honest replicas then reply again with a higher seq.
    Fixture fx;
    auto q = fx.ordered();
    const uint32_t too_high = static_cast<uint32_t>(ledger::ResultCode::kNonceTooHigh);
    EXPECT_EQ(q.add(0, fx.pk(0), fx.frame(0, fx.reply(0, too_high, 5))), Vote::kPending);
    EXPECT_EQ(q.add(1, fx.pk(1), fx.frame(1, fx.reply(1, too_high, 5))), Vote::kAccepted);
    EXPECT_EQ(q.add(2, fx.pk(2), fx.frame(2, fx.reply(2, 0, 9))), Vote::kLate);
    EXPECT_EQ(q.counters().superseded, 1u);
    EXPECT_EQ(q.counters().rejected(), 0u);
    // A final result cannot be superseded: a later different answer is a lie.
    auto final_q = fx.ordered();
    EXPECT_EQ(final_q.add(0, fx.pk(0), fx.frame(0, fx.reply(0, 0, 5))), Vote::kPending);
    EXPECT_EQ(final_q.add(1, fx.pk(1), fx.frame(1, fx.reply(1, 0, 5))), Vote::kAccepted);
    EXPECT_EQ(final_q.add(2, fx.pk(2), fx.frame(2, fx.reply(2, 0, 9))), Vote::kLate);
    EXPECT_EQ(final_q.counters().mismatch, 1u);
}

TEST(ReplyQuorum, AQueryExecutedAgainAtAnotherSeqIsNotALie) {
    // A query is never recorded: a retransmitted copy ordered again executes again, and a
    // replica that does not remember the first answer (restarted, or caught up past it by
    // state transfer) answers from the state at the new seq. Found by the node simulator.
    Fixture fx;
    fx.expected.query = true;
    auto q = fx.ordered();
    EXPECT_EQ(q.add(0, fx.pk(0), fx.frame(0, fx.reply(0, 0, 5))), Vote::kPending);
    EXPECT_EQ(q.add(3, fx.pk(3), fx.frame(3, fx.reply(3, 0, 8))), Vote::kPending);
    EXPECT_EQ(q.add(1, fx.pk(1), fx.frame(1, fx.reply(1, 0, 5))), Vote::kAccepted);
    EXPECT_EQ(q.add(2, fx.pk(2), fx.frame(2, fx.reply(2, 0, 11))), Vote::kLate);
    EXPECT_EQ(q.counters().superseded, 2u);
    EXPECT_EQ(q.counters().rejected(), 0u);
    // At the accepted seq, another answer is still a lie.
    auto lie = fx.ordered();
    EXPECT_EQ(lie.add(0, fx.pk(0), fx.frame(0, fx.reply(0, 0, 5))), Vote::kPending);
    EXPECT_EQ(lie.add(1, fx.pk(1), fx.frame(1, fx.reply(1, 0, 5))), Vote::kAccepted);
    auto other_value = fx.reply(2, 0, 5);
    other_value.set_value(42);
    EXPECT_EQ(lie.add(2, fx.pk(2), fx.frame(2, other_value)), Vote::kLate);
    EXPECT_EQ(lie.counters().mismatch, 1u);
}

TEST(ReplyQuorum, ALaggingReplicasRefusalToAdmitIsNotALie) {
    // A replica that has not yet executed the block funding the sender refuses its transfer
    // (unknown_sender, seq 0: never ordered) while the others order it: honest, not a lie,
    // whether it arrives before the quorum or after it.
    Fixture fx;
    const uint32_t unknown = static_cast<uint32_t>(ledger::ResultCode::kUnknownSender);
    auto q = fx.ordered();
    EXPECT_EQ(q.add(3, fx.pk(3), fx.frame(3, fx.reply(3, unknown, 0))), Vote::kPending);
    EXPECT_EQ(q.add(0, fx.pk(0), fx.frame(0, fx.reply(0, 0, 5))), Vote::kPending);
    EXPECT_EQ(q.add(1, fx.pk(1), fx.frame(1, fx.reply(1, 0, 5))), Vote::kAccepted);
    EXPECT_EQ(q.add(2, fx.pk(2), fx.frame(2, fx.reply(2, unknown, 0))), Vote::kLate);
    EXPECT_EQ(q.counters().superseded, 2u);
    EXPECT_EQ(q.counters().rejected(), 0u);
    // An ordered result that contradicts another is still a lie.
    auto lie = fx.ordered();
    EXPECT_EQ(lie.add(0, fx.pk(0), fx.frame(0, fx.reply(0, 0, 5))), Vote::kPending);
    EXPECT_EQ(lie.add(1, fx.pk(1), fx.frame(1, fx.reply(1, 0, 5))), Vote::kAccepted);
    EXPECT_EQ(lie.add(2, fx.pk(2), fx.frame(2, fx.reply(2, unknown, 6))), Vote::kLate);
    EXPECT_EQ(lie.counters().mismatch, 1u);
}

TEST(ReplyQuorum, AFrameSignedByAnotherReplicaIsRejectedAsMalformed) {
    Fixture fx;
    auto q = fx.ordered();
    // Replica 2's genuine reply arriving on replica 1's socket: wrong sender.
    EXPECT_EQ(q.add(1, fx.pk(1), fx.frame(2, fx.reply(2))), Vote::kRejected);
    EXPECT_EQ(q.counters().malformed, 1u);
}

TEST(ReplyQuorum, RepliesAboutAnotherRequestAreRejected) {
    Fixture fx;
    auto q = fx.ordered();
    auto other_tx = fx.reply(0);
    other_tx.set_tx_id(std::string(32, 'x'));
    auto other_nonce = fx.reply(1);
    other_nonce.set_nonce(8);
    auto other_client = fx.reply(2);
    other_client.set_client(std::string(32, 'c'));
    auto wrong_replica_field = fx.reply(3);
    wrong_replica_field.set_replica(0);
    EXPECT_EQ(q.add(0, fx.pk(0), fx.frame(0, other_tx)), Vote::kRejected);
    EXPECT_EQ(q.add(1, fx.pk(1), fx.frame(1, other_nonce)), Vote::kRejected);
    EXPECT_EQ(q.add(2, fx.pk(2), fx.frame(2, other_client)), Vote::kRejected);
    EXPECT_EQ(q.add(3, fx.pk(3), fx.frame(3, wrong_replica_field)), Vote::kRejected);
    EXPECT_EQ(q.counters().mismatch, 4u);
    EXPECT_FALSE(q.done());
}

TEST(ReplyQuorum, GarbageAndWrongTypesAreMalformed) {
    Fixture fx;
    auto q = fx.ordered();
    EXPECT_EQ(q.add(0, fx.pk(0), "not an envelope"), Vote::kRejected);
    EXPECT_EQ(q.add(0, fx.pk(0), ""), Vote::kRejected);
    EXPECT_EQ(q.add(1, fx.pk(1), fx.read_frame(1, fx.reply(1))), Vote::kRejected);
    EXPECT_EQ(q.add(2, fx.pk(2), crypto::seal(fx.keys[2], MessageType::kReply, "\xff\xff\xff")),
              Vote::kRejected);
    EXPECT_EQ(q.counters().malformed, 4u);
}

TEST(ReplyQuorum, AReplicaCannotFloodWithEndlessDifferentReplies) {
    Fixture fx;
    auto q = fx.ordered();
    EXPECT_EQ(q.add(0, fx.pk(0), fx.frame(0, fx.reply(0, 0, 10))), Vote::kPending);
    EXPECT_EQ(q.add(0, fx.pk(0), fx.frame(0, fx.reply(0, 0, 11))), Vote::kPending);
    for (uint64_t seq = 12; seq < 20; ++seq)
        EXPECT_EQ(q.add(0, fx.pk(0), fx.frame(0, fx.reply(0, 0, seq))), Vote::kRejected);
    EXPECT_EQ(q.counters().mismatch, 8u);
}

TEST(ReplyQuorum, AFastReadNeedsTwoFPlusOneRepliesAtOneSeqWithOneDigest) {
    Fixture fx;
    auto q = fx.read();
    for (uint32_t i = 0; i < 3; ++i) {
        auto r = fx.reply(i, 0, 10);
        r.set_value(100);
        r.set_account_nonce(2);
        EXPECT_EQ(q.add(i, fx.pk(i), fx.read_frame(i, r)), i == 2 ? Vote::kAccepted : Vote::kPending);
    }
    EXPECT_EQ(q.accepted()->value(), 100u);
    EXPECT_EQ(q.accepted()->seq(), 10u);
    EXPECT_EQ(q.accepted_state_digest(), std::string(32, 'd'));
}

TEST(ReplyQuorum, AFastReadDoesNotCountTheSameValueAtDifferentSeqsTogether) {
    Fixture fx;
    auto q = fx.read();
    // Three replicas answered at three points of the log with the same account state: that
    // proves nothing about the newest point (one of them may lie, and the one that is ahead
    // may be the only honest replica that executed a later write of the account).
    for (uint32_t i = 0; i < 3; ++i) {
        auto r = fx.reply(i, 0, 10 + i);
        r.set_value(100);
        r.set_account_nonce(2);
        EXPECT_EQ(q.add(i, fx.pk(i), fx.read_frame(i, r)), Vote::kPending);
    }
    EXPECT_FALSE(q.done());
    EXPECT_TRUE(q.impossible());  // the client falls back to an ordered read
}

TEST(ReplyQuorum, AFastReadDoesNotCountDifferentDigestsAtOneSeqTogether) {
    Fixture fx;
    auto q = fx.read();
    for (uint32_t i = 0; i < 3; ++i) {
        auto r = fx.reply(i, 0, 10);
        r.set_value(100);
        node::api::pb::ReadReply read;
        *read.mutable_reply() = r;
        read.set_state_digest(std::string(32, i == 2 ? 'x' : 'd'));  // replica 2 lies about it
        EXPECT_EQ(q.add(i, fx.pk(i), crypto::seal(fx.keys[i], MessageType::kReadReply,
                                                  read.SerializeAsString())),
                  Vote::kPending);
    }
    EXPECT_FALSE(q.done());
    auto r3 = fx.reply(3, 0, 10);
    r3.set_value(100);
    EXPECT_EQ(q.add(3, fx.pk(3), fx.read_frame(3, r3)), Vote::kAccepted);
    EXPECT_EQ(q.accepted_state_digest(), std::string(32, 'd'));
}

// The stale read of issue 11: a write of the account executed at seq 12 and was acknowledged
// (f+1 replies), but of the 2f+1 other answers, f come from a liar and f+1 from honest
// replicas that lag at different seqs. Matching on the value alone, they made a quorum for the
// old balance; matching on (seq, value), they do not, and the client falls back to ordered.
TEST(ReplyQuorum, FLiarsAndFPlusOneLaggingReplicasCannotMakeAFastReadStale) {
    Fixture fx;
    auto q = fx.read();
    auto at = [&](uint32_t replica, uint64_t seq, uint64_t value) {
        auto r = fx.reply(replica, 0, seq);
        r.set_value(value);
        return fx.read_frame(replica, r);
    };
    EXPECT_EQ(q.add(1, fx.pk(1), at(1, 10, 100)), Vote::kPending);  // honest, lagging
    EXPECT_EQ(q.add(2, fx.pk(2), at(2, 11, 100)), Vote::kPending);  // honest, lagging
    EXPECT_EQ(q.add(3, fx.pk(3), at(3, 12, 100)), Vote::kPending);  // the liar, claiming seq 12
    EXPECT_FALSE(q.done());
    EXPECT_EQ(q.add(0, fx.pk(0), at(0, 12, 150)), Vote::kPending);  // honest, up to date
    EXPECT_FALSE(q.done());
    EXPECT_TRUE(q.impossible());
}

TEST(ReplyQuorum, AFastReadKnowsWhenAgreementHasBecomeImpossible) {
    Fixture fx;
    auto q = fx.read();
    for (uint32_t i = 0; i < 3; ++i) {
        auto r = fx.reply(i);
        r.set_value(100 + i);  // one seq (the fixture's), three answers
        EXPECT_EQ(q.add(i, fx.pk(i), fx.read_frame(i, r)), Vote::kPending);
        // Any one answer plus the silent replicas could still make 3; after three different
        // answers no group can.
        EXPECT_EQ(q.impossible(), i == 2) << i;
    }
    EXPECT_FALSE(q.done());
}

TEST(ReplyQuorum, ReadRepliesMustMatchOnValueAndNonce) {
    Fixture fx;
    auto q = fx.read();
    auto r0 = fx.reply(0);
    r0.set_value(5);
    auto r1 = fx.reply(1);
    r1.set_value(5);
    auto r2 = fx.reply(2);
    r2.set_value(5);
    r2.set_account_nonce(1);  // different nonce
    EXPECT_EQ(q.add(0, fx.pk(0), fx.read_frame(0, r0)), Vote::kPending);
    EXPECT_EQ(q.add(1, fx.pk(1), fx.read_frame(1, r1)), Vote::kPending);
    EXPECT_EQ(q.add(2, fx.pk(2), fx.read_frame(2, r2)), Vote::kPending);
    EXPECT_FALSE(q.done());
    auto r3 = fx.reply(3);
    r3.set_value(5);
    EXPECT_EQ(q.add(3, fx.pk(3), fx.read_frame(3, r3)), Vote::kAccepted);
    // A replica at another point of the log is not lying: counted, but not as rejected.
    EXPECT_EQ(q.counters().disagreed, 1u);
    EXPECT_EQ(q.counters().rejected(), 0u);
}

}  // namespace
}  // namespace tally::client
