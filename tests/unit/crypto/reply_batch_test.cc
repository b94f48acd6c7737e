// Batch-signed replies: every reply of a batch opens under the batch's one signature; a
// changed leaf, a path of another leaf or batch, another signer, a replaced header field, or a
// signature made for an envelope are all refused; garbage bodies never crash.
#include "crypto/reply_batch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "crypto/envelope.h"
#include "crypto/merkle.h"

namespace tally::crypto {
namespace {

KeyPair key_from_byte(uint8_t b) {
    Seed seed{};
    seed.fill(b);
    return KeyPair::from_seed(seed);
}

std::vector<std::string> leaves_of(size_t n, const std::string& tag = "reply") {
    std::vector<std::string> v;
    for (size_t i = 0; i < n; ++i) v.push_back(tag + " " + std::to_string(i));
    return v;
}

std::string code_of(std::string_view frame, const OpenOptions& options = {}) {
    auto r = open(frame, options);
    return r.ok() ? "ok" : r.error().code;
}

// A frame with `body` in place of its own, the signature kept (the length field fixed up).
std::string with_body(std::string_view frame, std::string_view body) {
    std::string out(frame.substr(0, kEnvelopeHeaderBytes));
    const auto n = static_cast<uint32_t>(body.size());
    for (size_t i = 0; i < 4; ++i) out[34 + i] = static_cast<char>(n >> (24 - 8 * i));
    out.append(body);
    out.append(frame.substr(frame.size() - 64));
    return out;
}

Signature decode_signature(std::string_view frame) {
    Signature s{};
    std::copy(frame.end() - 64, frame.end(), s.begin());
    return s;
}

std::string body_of(std::string_view frame) {
    return std::string(frame.substr(kEnvelopeHeaderBytes, frame.size() - kEnvelopeOverheadBytes));
}

class ReplyBatchTest : public ::testing::Test {
protected:
    KeyPair replica = key_from_byte(1);
    KeyPair other = key_from_byte(2);
    std::vector<std::string> leaves = leaves_of(11);
    std::vector<std::string> frames = seal_reply_batch(replica, 42, leaves);
};

TEST_F(ReplyBatchTest, EveryReplyOpensAndCarriesItsLeaf) {
    ASSERT_EQ(frames.size(), leaves.size());
    for (size_t i = 0; i < frames.size(); ++i) {
        OpenOptions options;
        options.expected_sender = replica.public_key();
        auto env = open(frames[i], options);
        ASSERT_TRUE(env.ok()) << i << ": " << env.error().message;
        EXPECT_EQ(env->type, MessageType::kBatchReply);
        auto reply = decode_reply_batch(env->body);
        ASSERT_TRUE(reply.ok());
        EXPECT_EQ(reply->batch, 42u);
        EXPECT_EQ(reply->index, i);
        EXPECT_EQ(reply->count, leaves.size());
        EXPECT_EQ(reply->leaf, leaves[i]);
    }
}

TEST_F(ReplyBatchTest, AllRepliesOfABatchClaimOneStatementUnderOneSignature) {
    std::vector<Hash> hashes;
    for (const auto& l : leaves) hashes.push_back(sha256(l));
    const std::string expected = reply_batch_statement(42, 11, merkle_root(hashes));
    for (const auto& f : frames) {
        auto reply = decode_reply_batch(body_of(f));
        ASSERT_TRUE(reply.ok());
        EXPECT_EQ(reply_batch_claim(*reply).value(), expected);
        EXPECT_EQ(f.substr(f.size() - 64), frames[0].substr(frames[0].size() - 64));
    }
}

TEST_F(ReplyBatchTest, ABatchOfOneHasAnEmptyPath) {
    auto one = seal_reply_batch(replica, 7, leaves_of(1));
    ASSERT_EQ(one.size(), 1u);
    EXPECT_EQ(code_of(one[0]), "ok");
    EXPECT_TRUE(decode_reply_batch(body_of(one[0]))->path.empty());
}

TEST_F(ReplyBatchTest, ATamperedLeafIsRefused) {
    std::string f = frames[3];
    f[f.size() - 64 - 1] ^= 0x01;  // the leaf's last byte
    EXPECT_EQ(code_of(f), "bad_signature");
}

TEST_F(ReplyBatchTest, AnyFlippedBitInTheBodyOrSignatureIsRefused) {
    const std::string& f = frames[5];
    for (size_t at = kEnvelopeHeaderBytes; at < f.size(); ++at) {
        std::string g = f;
        g[at] ^= 0x10;
        EXPECT_NE(code_of(g), "ok") << at;
    }
}

TEST_F(ReplyBatchTest, AProofForAnotherLeafIsRefused) {
    auto mine = decode_reply_batch(body_of(frames[2])).value();
    auto theirs = decode_reply_batch(body_of(frames[6])).value();
    // Leaf 2 with leaf 6's path, at either index.
    for (uint32_t index : {2u, 6u}) {
        BatchedReply forged = mine;
        forged.path = theirs.path;
        forged.index = index;
        auto claim = reply_batch_claim(forged);
        if (!claim.ok()) continue;  // a path of the wrong length for the index: refused too
        EXPECT_FALSE(verify_reply_batch(replica.public_key(), *claim,
                                        decode_signature(frames[2])));
    }
}

TEST_F(ReplyBatchTest, AReplyWithAnotherBatchsProofAndSignatureIsRefused) {
    auto batch43 = seal_reply_batch(replica, 43, leaves_of(11, "other"));
    // Leaf 4 of batch 42 in batch 43's frame for leaf 4: same shape, another root.
    auto body = decode_reply_batch(body_of(batch43[4])).value();
    const std::string leaf42 = decode_reply_batch(body_of(frames[4])).value().leaf;
    std::string forged = body_of(batch43[4]);
    forged.replace(forged.size() - body.leaf.size(), body.leaf.size(), leaf42);
    EXPECT_EQ(code_of(with_body(batch43[4], forged)), "bad_signature");
    // And batch 42's body under batch 43's signature.
    std::string swapped = frames[4];
    swapped.replace(swapped.size() - 64, 64, batch43[4].substr(batch43[4].size() - 64));
    EXPECT_EQ(code_of(swapped), "bad_signature");
}

TEST_F(ReplyBatchTest, ARootSignedByAnotherReplicaIsRefused) {
    auto theirs = seal_reply_batch(other, 42, leaves);
    // Their frame with our sender: the signature is theirs, not ours.
    std::string f = theirs[1];
    std::copy(replica.public_key().begin(), replica.public_key().end(), f.begin() + 2);
    EXPECT_EQ(code_of(f), "bad_signature");
    OpenOptions expect_replica;
    expect_replica.expected_sender = replica.public_key();
    EXPECT_EQ(code_of(theirs[1], expect_replica), "wrong_sender");
}

TEST_F(ReplyBatchTest, TheRootSignatureIsNotAnEnvelopeSignatureNorTheReverse) {
    // The same statement signed as an envelope body does not verify as a batch root.
    auto reply = decode_reply_batch(body_of(frames[0])).value();
    const std::string statement = reply_batch_claim(reply).value();
    const Signature as_envelope = replica.sign(kDomainEnvelope, statement);
    EXPECT_FALSE(verify_reply_batch(replica.public_key(), statement, as_envelope));
    // A frame sealed as an ordinary envelope of type kBatchReply does not open either.
    EXPECT_NE(code_of(seal(replica, MessageType::kBatchReply, body_of(frames[0]))), "ok");
    // And a batched reply's frame relabelled as a kReply does not pass as a signed reply.
    std::string relabelled = frames[0];
    relabelled[1] = static_cast<char>(MessageType::kReply);
    EXPECT_EQ(code_of(relabelled), "bad_signature");
}

TEST_F(ReplyBatchTest, MalformedBodiesAreRefusedBeforeAnySignatureWork) {
    const std::string good = body_of(frames[0]);
    EXPECT_EQ(decode_reply_batch(good.substr(0, 10)).error().code, "malformed");
    std::string zero_count = good;
    for (size_t i = 12; i < 16; ++i) zero_count[i] = 0;
    EXPECT_EQ(decode_reply_batch(zero_count).error().code, "malformed");
    std::string index_past = good;
    index_past[11] = 11;  // index 11 of 11
    EXPECT_EQ(decode_reply_batch(index_past).error().code, "malformed");
    std::string long_path = good;
    long_path[16] = static_cast<char>(kReplyBatchPathMax + 1);
    EXPECT_EQ(decode_reply_batch(long_path).error().code, "malformed");
    std::string path_past_end = good.substr(0, 17 + 32);
    path_past_end[16] = 2;
    EXPECT_EQ(decode_reply_batch(path_past_end).error().code, "malformed");
    EXPECT_EQ(code_of(with_body(frames[0], good.substr(0, 10))), "malformed");
}

TEST_F(ReplyBatchTest, RandomBytesInTheBodyNeverOpen) {
    std::mt19937_64 rng(7);
    for (int i = 0; i < 2000; ++i) {
        std::string body = body_of(frames[i % frames.size()]);
        const size_t changes = 1 + rng() % 4;
        for (size_t c = 0; c < changes; ++c) {
            const size_t at = rng() % body.size();
            body[at] = static_cast<char>(body[at] ^ static_cast<char>(1 + rng() % 255));
        }
        if (rng() % 3 == 0) body.resize(rng() % (body.size() + 1));
        EXPECT_NE(code_of(with_body(frames[i % frames.size()], body)), "ok") << i;
    }
}

}  // namespace
}  // namespace tally::crypto
