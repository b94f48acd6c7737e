// ReplyQuorum with batched replies (crypto/reply_batch.h): a reply counts only when its audit
// path leads to a root its replica signed. Tampered fields, paths of other leaves or other
// batches, and roots signed by another replica are each rejected and counted; a liar that
// signs its lies correctly is outvoted by the quorum; a shared VerifiedRoots makes each
// replica's root of a batch cost one signature check however many requests the batch holds.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "client/reply_quorum.h"
#include "client/verified_roots.h"
#include "crypto/envelope.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/reply_batch.h"

namespace tally::client {
namespace {

using crypto::KeyPair;
using crypto::MessageType;

KeyPair replica_key(uint8_t i) {
    crypto::Seed seed{};
    seed.fill(static_cast<uint8_t>(0x60 + i));
    return KeyPair::from_seed(seed);
}

// The frame `frame` with its body's leaf replaced by `leaf`, and its path, index and count
// replaced when given; header (sender) and signature kept, the length fixed up.
std::string rebuilt(std::string_view frame, const crypto::BatchedReply& body) {
    std::string b;
    auto put = [&b](uint64_t v, size_t n) {
        for (size_t i = 0; i < n; ++i) b.push_back(static_cast<char>(v >> (8 * (n - 1 - i))));
    };
    put(body.batch, 8);
    put(body.index, 4);
    put(body.count, 4);
    b.push_back(static_cast<char>(body.path.size()));
    for (const auto& h : body.path) b.append(crypto::as_bytes(h));
    b.append(body.leaf);
    std::string out(frame.substr(0, crypto::kEnvelopeHeaderBytes));
    const auto n = static_cast<uint32_t>(b.size());
    for (size_t i = 0; i < 4; ++i) out[34 + i] = static_cast<char>(n >> (24 - 8 * i));
    out += b;
    out.append(frame.substr(frame.size() - 64));
    return out;
}

crypto::BatchedReply body_of(std::string_view frame) {
    crypto::OpenOptions header_only;
    header_only.verify_signature = false;
    auto env = crypto::open(frame, header_only);
    EXPECT_TRUE(env.ok());
    return crypto::decode_reply_batch(env->body).value();
}

// Four replicas that executed one batch of kRequests requests; the request under test is
// number kMine. seal(i) gives replica i's frames for the whole batch.
struct Fixture {
    static constexpr size_t kRequests = 6;
    static constexpr size_t kMine = 2;
    std::vector<KeyPair> keys;
    std::vector<ExpectedRequest> requests;

    Fixture() {
        for (uint8_t i = 0; i < 4; ++i) keys.push_back(replica_key(i));
        for (size_t k = 0; k < kRequests; ++k) {
            ExpectedRequest e;
            e.tx_id = crypto::sha256("transfer " + std::to_string(k));
            e.client = replica_key(static_cast<uint8_t>(20 + k)).public_key();
            e.nonce = 1 + k;
            requests.push_back(e);
        }
    }

    node::api::pb::Reply reply(uint32_t replica, size_t k, uint64_t value = 0, uint64_t seq = 9) const {
        node::api::pb::Reply r;
        r.set_tx_id(std::string(crypto::as_bytes(requests[k].tx_id)));
        r.set_client(std::string(crypto::as_bytes(requests[k].client)));
        r.set_nonce(requests[k].nonce);
        r.set_result(0);
        r.set_seq(seq);
        r.set_value(value);
        r.set_replica(replica);
        return r;
    }
    // Replica i's frames for batch `seq` (one per request), signed by `signer` (default: i).
    std::vector<std::string> seal(uint32_t i, uint64_t seq = 9, uint64_t value = 0,
                                  std::optional<uint32_t> signer = std::nullopt) const {
        std::vector<std::string> leaves;
        for (size_t k = 0; k < kRequests; ++k)
            leaves.push_back(reply(i, k, value, seq).SerializeAsString());
        return crypto::seal_reply_batch(keys[signer.value_or(i)], seq, leaves);
    }
    ReplyQuorum ordered(size_t k = kMine, VerifiedRoots* roots = nullptr) const {
        return ReplyQuorum(QuorumKind::kOrdered, 2, 4, requests[k], roots);
    }
    const crypto::PublicKey& pk(uint32_t i) const { return keys[i].public_key(); }
};

TEST(BatchReplyQuorum, BatchedRepliesFromFPlusOneReplicasAreAccepted) {
    Fixture fx;
    auto q = fx.ordered();
    EXPECT_EQ(q.add(0, fx.pk(0), fx.seal(0)[Fixture::kMine]), Vote::kPending);
    EXPECT_EQ(q.add(3, fx.pk(3), fx.seal(3)[Fixture::kMine]), Vote::kAccepted);
    ASSERT_TRUE(q.done());
    EXPECT_EQ(q.accepted()->nonce(), fx.requests[Fixture::kMine].nonce);
    EXPECT_EQ(q.accepted()->seq(), 9u);
    EXPECT_EQ(q.counters().rejected(), 0u);
}

TEST(BatchReplyQuorum, ABatchedAndASingleSignedReplyCountTogether) {
    // One replica answers from its reply cache (signed alone), another from its batch.
    Fixture fx;
    auto q = fx.ordered();
    const auto single = crypto::seal(fx.keys[1], MessageType::kReply,
                                     fx.reply(1, Fixture::kMine).SerializeAsString());
    EXPECT_EQ(q.add(1, fx.pk(1), single), Vote::kPending);
    EXPECT_EQ(q.add(2, fx.pk(2), fx.seal(2)[Fixture::kMine]), Vote::kAccepted);
}

TEST(BatchReplyQuorum, AReplyForAnotherRequestOfTheBatchIsAMismatch) {
    Fixture fx;
    auto q = fx.ordered();
    EXPECT_EQ(q.add(0, fx.pk(0), fx.seal(0)[Fixture::kMine + 1]), Vote::kRejected);
    EXPECT_EQ(q.counters().mismatch, 1u);
}

TEST(BatchReplyQuorum, ATamperedFieldIsRejectedAndCounted) {
    Fixture fx;
    auto q = fx.ordered();
    // Replica 2 honestly signed value 7 (say it lies); replica 1's honest value-0 reply is
    // changed in transit to agree with it. The pair would complete a quorum: the check of
    // replica 1's path finds another root, and its reply is dropped and counted.
    EXPECT_EQ(q.add(2, fx.pk(2), fx.seal(2, 9, 7)[Fixture::kMine]), Vote::kPending);
    const std::string honest = fx.seal(1)[Fixture::kMine];
    auto body = body_of(honest);
    body.leaf = fx.reply(1, Fixture::kMine, 7).SerializeAsString();
    EXPECT_EQ(q.add(1, fx.pk(1), rebuilt(honest, body)), Vote::kRejected);
    EXPECT_FALSE(q.done());
    EXPECT_EQ(q.counters().bad_signature, 1u);
    // The honest replies still make the quorum, and replica 1's real reply still counts.
    EXPECT_EQ(q.add(0, fx.pk(0), fx.seal(0)[Fixture::kMine]), Vote::kPending);
    EXPECT_EQ(q.add(1, fx.pk(1), honest), Vote::kAccepted);
    EXPECT_EQ(q.accepted()->value(), 0u);
}

TEST(BatchReplyQuorum, AProofForAnotherLeafIsRejectedAndCounted) {
    Fixture fx;
    auto q = fx.ordered();
    EXPECT_EQ(q.add(0, fx.pk(0), fx.seal(0)[Fixture::kMine]), Vote::kPending);
    const auto frames = fx.seal(1);
    auto body = body_of(frames[Fixture::kMine]);
    const auto other = body_of(frames[Fixture::kMine + 3]);
    body.path = other.path;  // the path of another leaf, claimed for this one
    EXPECT_EQ(q.add(1, fx.pk(1), rebuilt(frames[Fixture::kMine], body)), Vote::kRejected);
    body.index = other.index;  // and at that leaf's place
    ReplyQuorum q2 = fx.ordered();
    EXPECT_EQ(q2.add(0, fx.pk(0), fx.seal(0)[Fixture::kMine]), Vote::kPending);
    EXPECT_EQ(q2.add(1, fx.pk(1), rebuilt(frames[Fixture::kMine], body)), Vote::kRejected);
    EXPECT_EQ(q.counters().bad_signature + q2.counters().bad_signature, 2u);
    EXPECT_FALSE(q.done());
    EXPECT_FALSE(q2.done());
}

TEST(BatchReplyQuorum, ARootSignedByAnotherReplicaIsRejectedAndCounted) {
    Fixture fx;
    auto q = fx.ordered();
    EXPECT_EQ(q.add(0, fx.pk(0), fx.seal(0)[Fixture::kMine]), Vote::kPending);
    // Replica 1's replies, signed by replica 3, with replica 1 named as the sender.
    std::string f = fx.seal(1, 9, 0, 3)[Fixture::kMine];
    std::copy(fx.pk(1).begin(), fx.pk(1).end(), f.begin() + 2);
    EXPECT_EQ(q.add(1, fx.pk(1), f), Vote::kRejected);
    EXPECT_EQ(q.counters().bad_signature, 1u);
    // Unaltered, replica 3's frame is not replica 1's: refused before any group.
    EXPECT_EQ(q.add(1, fx.pk(1), fx.seal(1, 9, 0, 3)[Fixture::kMine]), Vote::kRejected);
    EXPECT_EQ(q.counters().malformed, 1u);
    EXPECT_FALSE(q.done());
}

TEST(BatchReplyQuorum, AReplyWhoseProofIsForAnotherBatchIsRejectedAndCounted) {
    Fixture fx;
    auto q = fx.ordered();
    EXPECT_EQ(q.add(0, fx.pk(0), fx.seal(0)[Fixture::kMine]), Vote::kPending);
    // Replica 1's reply at seq 9, carried in its frame (path and signature) of batch 10.
    const std::string batch10 = fx.seal(1, 10)[Fixture::kMine];
    auto body = body_of(batch10);
    body.leaf = fx.reply(1, Fixture::kMine).SerializeAsString();
    EXPECT_EQ(q.add(1, fx.pk(1), rebuilt(batch10, body)), Vote::kRejected);
    // And batch 10's path and signature with the header claiming batch 9.
    body.batch = 9;
    EXPECT_EQ(q.add(1, fx.pk(1), rebuilt(batch10, body)), Vote::kRejected);
    EXPECT_EQ(q.counters().bad_signature, 2u);
    EXPECT_FALSE(q.done());
}

TEST(BatchReplyQuorum, ALiarThatSignsItsLiesCorrectlyIsOutvoted) {
    Fixture fx;
    auto q = fx.ordered();
    // The wrong-reply traitor: another seq and value, under a root it really signed.
    EXPECT_EQ(q.add(3, fx.pk(3), fx.seal(3, 10, 7)[Fixture::kMine]), Vote::kPending);
    EXPECT_EQ(q.add(0, fx.pk(0), fx.seal(0)[Fixture::kMine]), Vote::kPending);
    EXPECT_EQ(q.add(1, fx.pk(1), fx.seal(1)[Fixture::kMine]), Vote::kAccepted);
    EXPECT_EQ(q.accepted()->value(), 0u);
    EXPECT_EQ(q.counters().mismatch, 1u);
    EXPECT_EQ(q.counters().bad_signature, 0u);
}

TEST(BatchReplyQuorum, AMalformedBatchBodyIsCounted) {
    Fixture fx;
    auto q = fx.ordered();
    std::string f = fx.seal(0)[Fixture::kMine];
    f[crypto::kEnvelopeHeaderBytes + 16] = static_cast<char>(crypto::kReplyBatchPathMax + 1);
    EXPECT_EQ(q.add(0, fx.pk(0), f), Vote::kRejected);
    EXPECT_EQ(q.counters().malformed, 1u);
}

TEST(BatchReplyQuorum, EachReplicasRootIsVerifiedOnceAcrossTheBatchsRequests) {
    Fixture fx;
    VerifiedRoots roots;
    std::vector<std::vector<std::string>> frames;
    for (uint32_t i = 0; i < 4; ++i) frames.push_back(fx.seal(i));
    for (size_t k = 0; k < Fixture::kRequests; ++k) {
        auto q = fx.ordered(k, &roots);
        EXPECT_EQ(q.add(0, fx.pk(0), frames[0][k]), Vote::kPending);
        EXPECT_EQ(q.add(1, fx.pk(1), frames[1][k]), Vote::kAccepted) << k;
    }
    // Two roots checked by signature (replica 0's and 1's); every later request hit both.
    EXPECT_EQ(roots.size(), 2u);
    EXPECT_EQ(roots.hits(), 2 * (Fixture::kRequests - 1));
}

TEST(BatchReplyQuorum, AVerifiedRootVouchesOnlyForRepliesWhosePathLeadsToIt) {
    Fixture fx;
    VerifiedRoots roots;
    auto first = fx.ordered(0, &roots);
    EXPECT_EQ(first.add(0, fx.pk(0), fx.seal(0)[0]), Vote::kPending);
    EXPECT_EQ(first.add(1, fx.pk(1), fx.seal(1)[0]), Vote::kAccepted);
    // Replica 1's root is cached; a tampered reply under it still fails: its path leads to
    // another root, which has no signature of replica 1.
    auto q = fx.ordered(Fixture::kMine, &roots);
    EXPECT_EQ(q.add(2, fx.pk(2), fx.seal(2, 9, 7)[Fixture::kMine]), Vote::kPending);
    const std::string honest = fx.seal(1)[Fixture::kMine];
    auto body = body_of(honest);
    body.leaf = fx.reply(1, Fixture::kMine, 7).SerializeAsString();
    EXPECT_EQ(q.add(1, fx.pk(1), rebuilt(honest, body)), Vote::kRejected);
    EXPECT_EQ(q.counters().bad_signature, 1u);
    // Nor does a root cached for replica 1 vouch for another replica (statements are per key).
    const std::string statement = crypto::reply_batch_claim(body_of(fx.seal(1)[0])).value();
    EXPECT_TRUE(roots.contains(fx.pk(1), statement));
    EXPECT_FALSE(roots.contains(fx.pk(3), statement));
}

TEST(VerifiedRoots, KeepsTheNewestPerReplica) {
    VerifiedRoots roots(2);
    const auto a = replica_key(0).public_key();
    const auto b = replica_key(1).public_key();
    roots.insert(a, "one");
    roots.insert(a, "two");
    roots.insert(b, "one");
    roots.insert(a, "three");
    EXPECT_FALSE(roots.contains(a, "one"));
    EXPECT_TRUE(roots.contains(a, "two"));
    EXPECT_TRUE(roots.contains(a, "three"));
    EXPECT_TRUE(roots.contains(b, "one"));
    EXPECT_FALSE(roots.contains(b, "two"));
    EXPECT_EQ(roots.size(), 3u);
    EXPECT_EQ(roots.hits(), 3u);
}

}  // namespace
}  // namespace tally::client
