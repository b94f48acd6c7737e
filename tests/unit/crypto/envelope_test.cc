// The signed envelope: round trip, one distinct error per kind of bad frame (in the documented
// order), and random garbage that must never crash and never open.
#include "crypto/envelope.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>

#include "crypto/hash.h"

namespace tally::crypto {
namespace {

KeyPair key_from_byte(uint8_t b) {
    Seed seed{};
    seed.fill(b);
    return KeyPair::from_seed(seed);
}

std::string body_of(size_t n) {
    std::string body(n, '\0');
    for (size_t i = 0; i < n; ++i) body[i] = static_cast<char>(i * 7 + 3);
    return body;
}

class EnvelopeTest : public ::testing::Test {
protected:
    KeyPair alice = key_from_byte(1);
    KeyPair bob = key_from_byte(2);
    std::string body = body_of(200);
    std::string frame = seal(alice, MessageType::kPrepare, body);

    static std::string code_of(std::string_view bytes, const OpenOptions& options = {}) {
        auto r = open(bytes, options);
        return r.ok() ? "ok" : r.error().code;
    }
    static std::string flip(std::string s, size_t byte, uint8_t mask = 0x01) {
        s[byte] = static_cast<char>(s[byte] ^ mask);
        return s;
    }
};

TEST_F(EnvelopeTest, RoundTrip) {
    ASSERT_EQ(frame.size(), kEnvelopeOverheadBytes + body.size());
    auto env = open(frame);
    ASSERT_TRUE(env.ok()) << env.error().message;
    EXPECT_EQ(env->type, MessageType::kPrepare);
    EXPECT_EQ(env->sender, alice.public_key());
    EXPECT_EQ(env->body, body);
    EXPECT_TRUE(verify(alice.public_key(), kDomainEnvelope,
                       std::string_view(frame).substr(0, kEnvelopeHeaderBytes + body.size()),
                       env->signature));
}

TEST_F(EnvelopeTest, LayoutIsAsDocumented) {
    EXPECT_EQ(static_cast<uint8_t>(frame[0]), kEnvelopeVersion);
    EXPECT_EQ(static_cast<uint8_t>(frame[1]), static_cast<uint8_t>(MessageType::kPrepare));
    EXPECT_EQ(frame.substr(2, 32), as_bytes(alice.public_key()));
    EXPECT_EQ(frame.substr(34, 4), std::string("\x00\x00\x00\xc8", 4));  // 200, big-endian
    EXPECT_EQ(frame.substr(38, 200), body);
    Signature sig = alice.sign(kDomainEnvelope, std::string_view(frame).substr(0, 238));
    EXPECT_EQ(frame.substr(238), as_bytes(sig));
}

TEST_F(EnvelopeTest, EmptyBodyRoundTrips) {
    std::string f = seal(bob, MessageType::kStatusRequest, "");
    ASSERT_EQ(f.size(), kEnvelopeOverheadBytes);
    auto env = open(f);
    ASSERT_TRUE(env.ok()) << env.error().message;
    EXPECT_EQ(env->type, MessageType::kStatusRequest);
    EXPECT_TRUE(env->body.empty());
}

TEST_F(EnvelopeTest, ExpectedSenderMatches) {
    OpenOptions options;
    options.expected_sender = alice.public_key();
    EXPECT_EQ(code_of(frame, options), "ok");
}

TEST_F(EnvelopeTest, EveryPrefixIsTruncated) {
    for (size_t n = 0; n < frame.size(); ++n)
        EXPECT_EQ(code_of(std::string_view(frame).substr(0, n)), "truncated") << "length " << n;
}

TEST_F(EnvelopeTest, BodyLengthBeyondTheBufferIsTruncated) {
    for (uint32_t claimed : {201u, 0x10000u, 0x7fffffffu, 0xffffffffu}) {
        std::string f = frame;
        for (size_t i = 0; i < 4; ++i) f[34 + i] = static_cast<char>(claimed >> (24 - 8 * i));
        EXPECT_EQ(code_of(f), "truncated") << claimed;
    }
}

TEST_F(EnvelopeTest, LongerThanMaxBytesIsOversized) {
    OpenOptions options;
    options.max_bytes = frame.size() - 1;
    EXPECT_EQ(code_of(frame, options), "oversized");
    options.max_bytes = frame.size();
    EXPECT_EQ(code_of(frame, options), "ok");
}

// A frame of `total` bytes with a consistent header and an all-zero signature (not signed:
// signing megabytes in a unit test is slow, and size checks come before the signature).
std::string unsigned_frame(size_t total) {
    const size_t n = total - kEnvelopeOverheadBytes;
    std::string f(total, '\0');
    f[0] = static_cast<char>(kEnvelopeVersion);
    f[1] = static_cast<char>(MessageType::kCommitted);
    for (size_t i = 0; i < 4; ++i) f[34 + i] = static_cast<char>(static_cast<uint32_t>(n) >> (24 - 8 * i));
    return f;
}

TEST_F(EnvelopeTest, DefaultLimitIsEightMebibytes) {
    EXPECT_EQ(code_of(unsigned_frame(kEnvelopeMaxBytes + 1)), "oversized");
    OpenOptions header_only;
    header_only.verify_signature = false;
    EXPECT_EQ(code_of(unsigned_frame(kEnvelopeMaxBytes), header_only), "ok");
    EXPECT_EQ(code_of(unsigned_frame(kEnvelopeMaxBytes)), "bad_signature");
}

TEST_F(EnvelopeTest, WrongVersionIsMalformed) {
    for (int v : {0, 3, 255}) {
        std::string f = frame;
        f[0] = static_cast<char>(v);
        EXPECT_EQ(code_of(f), "malformed") << v;
    }
}

TEST_F(EnvelopeTest, BytesAfterTheSignatureAreMalformed) {
    EXPECT_EQ(code_of(frame + '\0'), "malformed");
    EXPECT_EQ(code_of(frame + frame), "malformed");
    // A shorter stated body leaves bytes after the (supposed) signature too.
    std::string f = frame;
    f[37] = static_cast<char>(199);
    EXPECT_EQ(code_of(f), "malformed");
}

TEST_F(EnvelopeTest, UnknownTypeIsRefused) {
    for (int t : {0, 9, 15, 32, 47, 54, 255}) {
        std::string f = frame;
        f[1] = static_cast<char>(t);
        EXPECT_EQ(code_of(f), "unknown_type") << t;
    }
    // Even when properly signed.
    std::string signed_unknown = seal(alice, static_cast<MessageType>(99), body);
    EXPECT_EQ(code_of(signed_unknown), "unknown_type");
}

TEST_F(EnvelopeTest, OtherSenderThanExpectedIsWrongSender) {
    OpenOptions options;
    options.expected_sender = bob.public_key();
    auto r = open(frame, options);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "wrong_sender");
}

TEST_F(EnvelopeTest, AnyFlippedBitInBodySignatureTypeOrSenderIsBadSignature) {
    EXPECT_EQ(code_of(flip(frame, 38)), "bad_signature");                     // body, first byte
    EXPECT_EQ(code_of(flip(frame, 38 + 199, 0x80)), "bad_signature");         // body, last byte
    EXPECT_EQ(code_of(flip(frame, 238)), "bad_signature");                    // signature, first
    EXPECT_EQ(code_of(flip(frame, frame.size() - 1, 0x10)), "bad_signature"); // signature, last
    EXPECT_EQ(code_of(flip(frame, 1)), "bad_signature");  // prepare (17) -> pre_prepare (16)
    EXPECT_EQ(code_of(flip(frame, 2)), "bad_signature");  // sender
    EXPECT_EQ(code_of(flip(frame, 33, 0x40)), "bad_signature");
    // Every single bit of the signed bytes and the signature, except those caught earlier.
    std::set<std::string> codes;
    for (size_t bit = 0; bit < 8 * frame.size(); ++bit)
        codes.insert(code_of(flip(frame, bit / 8, static_cast<uint8_t>(1u << (bit % 8)))));
    EXPECT_EQ(codes.count("ok"), 0u);
    EXPECT_TRUE(codes.count("bad_signature"));
}

TEST_F(EnvelopeTest, ReplacedSenderIsBadSignature) {
    std::string f = frame;
    f.replace(2, 32, as_bytes(bob.public_key()));
    EXPECT_EQ(code_of(f), "bad_signature");
}

TEST_F(EnvelopeTest, SkippingVerificationReadsTheHeaderOnly) {
    OpenOptions options;
    options.verify_signature = false;
    auto env = open(flip(frame, 100), options);
    ASSERT_TRUE(env.ok());
    EXPECT_EQ(env->type, MessageType::kPrepare);
    EXPECT_EQ(env->sender, alice.public_key());
    // Structural checks still apply.
    EXPECT_EQ(code_of(frame + "x", options), "malformed");
}

TEST_F(EnvelopeTest, ErrorsComeInTheDocumentedOrder) {
    OpenOptions small;
    small.max_bytes = 50;
    // truncated before oversized
    EXPECT_EQ(code_of(std::string_view(frame).substr(0, 120), small), "truncated");
    // oversized before malformed
    EXPECT_EQ(code_of(frame + "x", small), "oversized");
    // malformed before unknown_type
    std::string f = frame;
    f[0] = 9;
    f[1] = 9;
    EXPECT_EQ(code_of(f), "malformed");
    // unknown_type before wrong_sender
    OpenOptions from_bob;
    from_bob.expected_sender = bob.public_key();
    f = frame;
    f[1] = 9;
    EXPECT_EQ(code_of(f, from_bob), "unknown_type");
    // wrong_sender before bad_signature
    EXPECT_EQ(code_of(flip(frame, 40), from_bob), "wrong_sender");
}

TEST_F(EnvelopeTest, SignatureCoversTheEnvelopeDomain) {
    // A signature over the same bytes under another domain does not make a valid envelope.
    std::string f = frame;
    Signature wrong = alice.sign("tally/other/v1", std::string_view(frame).substr(0, 238));
    f.replace(238, 64, as_bytes(wrong));
    EXPECT_EQ(code_of(f), "bad_signature");
}

// Version 2: the trailer is a MAC under the key sender and receiver share (Raft's replicas).
class PairwiseEnvelopeTest : public EnvelopeTest {
protected:
    KeyPair carol = key_from_byte(3);
    PairwiseKey alice_bob = PairwiseKey::derive(alice, bob.public_key()).value();
    PairwiseKey bob_alice = PairwiseKey::derive(bob, alice.public_key()).value();
    PairwiseKey alice_carol = PairwiseKey::derive(alice, carol.public_key()).value();
    PairwiseKey carol_bob = PairwiseKey::derive(carol, bob.public_key()).value();
    std::string maced = seal_for_peer(alice, alice_bob, MessageType::kRaftAppend, body);

    static OpenOptions with(const PairwiseKey& key) {
        OpenOptions options;
        options.pairwise_key = &key;
        return options;
    }
};

TEST_F(PairwiseEnvelopeTest, BothEndsDeriveTheSameKeyAndNoThirdDoes) {
    const auto bytes = [](const PairwiseKey& k) { return std::string(reinterpret_cast<const char*>(k.data()), k.size()); };
    EXPECT_EQ(bytes(alice_bob), bytes(bob_alice));
    EXPECT_NE(bytes(alice_bob), bytes(alice_carol));
    EXPECT_NE(bytes(alice_bob), bytes(carol_bob));
}

TEST_F(PairwiseEnvelopeTest, TheReceiverOpensItWithTheKeyItShares) {
    ASSERT_EQ(maced.size(), frame.size());  // the same layout as a signed frame
    EXPECT_EQ(static_cast<uint8_t>(maced[0]), kEnvelopeVersionPairwise);
    auto env = open(maced, with(bob_alice));
    ASSERT_TRUE(env.ok()) << env.error().message;
    EXPECT_TRUE(env->pairwise);
    EXPECT_EQ(env->sender, alice.public_key());
    EXPECT_EQ(env->type, MessageType::kRaftAppend);
    EXPECT_EQ(env->body, body);
    EXPECT_FALSE(open(frame).value().pairwise);
    EXPECT_TRUE(verify_peer_mac(bob_alice, std::string_view(maced).substr(0, maced.size() - 64),
                                env->signature));
}

TEST_F(PairwiseEnvelopeTest, WithoutTheKeyOrWithAnotherPairsItIsRefused) {
    EXPECT_EQ(code_of(maced), "bad_signature");  // no key: a MAC is no signature
    EXPECT_EQ(code_of(maced, with(alice_carol)), "bad_signature");
    EXPECT_EQ(code_of(maced, with(carol_bob)), "bad_signature");
    // Carol, who shares a key with Bob, cannot pass a frame off as Alice's.
    std::string forged = seal_for_peer(carol, carol_bob, MessageType::kRaftAppend, body);
    forged.replace(2, 32, as_bytes(alice.public_key()));
    EXPECT_EQ(code_of(forged, with(bob_alice)), "bad_signature");
    // A signed frame relabelled as MAC'd, and the reverse.
    EXPECT_EQ(code_of(flip(frame, 0, 0x03), with(bob_alice)), "bad_signature");
    EXPECT_EQ(code_of(flip(maced, 0, 0x03)), "bad_signature");
    OpenOptions header_only = with(bob_alice);
    header_only.verify_signature = false;
    EXPECT_EQ(code_of(flip(maced, 40), header_only), "ok");
}

TEST_F(PairwiseEnvelopeTest, AnyFlippedBitIsRefused) {
    std::set<std::string> codes;
    for (size_t bit = 0; bit < 8 * maced.size(); ++bit)
        codes.insert(code_of(flip(maced, bit / 8, static_cast<uint8_t>(1u << (bit % 8))), with(bob_alice)));
    EXPECT_EQ(codes.count("ok"), 0u);
    EXPECT_TRUE(codes.count("bad_signature"));
}

TEST(PairwiseKeys, AKeyThatIsNoPointDerivesNone) {
    PublicKey not_a_point{};
    not_a_point.fill(0xff);
    auto key = PairwiseKey::derive(KeyPair::from_seed(Seed{}), not_a_point);
    ASSERT_FALSE(key.ok());
    EXPECT_EQ(key.error().code, "invalid_key");
}

TEST(EnvelopeTypes, KnownTypesHaveDistinctSnakeCaseNames) {
    std::set<std::string_view> names;
    int known = 0;
    for (int t = 0; t < 256; ++t) {
        if (!is_known_type(static_cast<uint8_t>(t))) continue;
        ++known;
        std::string_view name = type_name(static_cast<MessageType>(t));
        EXPECT_NE(name, "unknown") << t;
        for (char c : name) EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '_') << name;
        names.insert(name);
    }
    EXPECT_EQ(known, 30);
    EXPECT_EQ(names.size(), 30u);
    EXPECT_EQ(type_name(MessageType::kPrePrepare), "pre_prepare");
    EXPECT_EQ(type_name(MessageType::kRaftAppendReply), "raft_append_reply");
    EXPECT_EQ(type_name(static_cast<MessageType>(200)), "unknown");
    EXPECT_FALSE(is_known_type(0));
    EXPECT_TRUE(is_known_type(1));
    EXPECT_TRUE(is_known_type(53));
    EXPECT_FALSE(is_known_type(54));
}

TEST(EnvelopeFuzz, RandomGarbageNeverOpens) {
    std::mt19937_64 rng(20241125);
    const KeyPair key = key_from_byte(9);
    const std::string valid = seal(key, MessageType::kCommit, body_of(60));
    std::set<std::string> codes;
    for (int i = 0; i < 10000; ++i) {
        std::string bytes;
        switch (i % 3) {
            case 0: {  // pure noise of any length up to a few frames
                bytes.resize(rng() % 400);
                for (char& c : bytes) c = static_cast<char>(rng());
                break;
            }
            case 1: {  // a plausible header: right version, a known type, a consistent length
                size_t n = rng() % 300;
                bytes.resize(kEnvelopeOverheadBytes + n);
                for (char& c : bytes) c = static_cast<char>(rng());
                bytes[0] = static_cast<char>(kEnvelopeVersion);
                bytes[1] = static_cast<char>(MessageType::kCommit);
                for (size_t b = 0; b < 4; ++b)
                    bytes[34 + b] = static_cast<char>(static_cast<uint32_t>(n) >> (24 - 8 * b));
                if (rng() % 4 == 0) bytes.resize(rng() % (bytes.size() + 8), 'z');
                break;
            }
            default: {  // a valid frame with 1..4 random bytes changed
                bytes = valid;
                size_t changes = 1 + rng() % 4;
                for (size_t c = 0; c < changes; ++c) {
                    size_t at = rng() % bytes.size();
                    bytes[at] = static_cast<char>(bytes[at] ^ static_cast<char>(1 + rng() % 255));
                }
                if (bytes == valid) continue;
                break;
            }
        }
        auto r = open(bytes);
        ASSERT_FALSE(r.ok()) << "garbage " << i << " opened: " << to_hex(bytes);
        codes.insert(r.error().code);
    }
    // The generators reach every check.
    for (const char* code : {"truncated", "malformed", "unknown_type", "bad_signature"})
        EXPECT_TRUE(codes.count(code)) << code;
}

}  // namespace
}  // namespace tally::crypto
