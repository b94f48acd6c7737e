// Ed25519 keys: the RFC 8032 section 7.1 vectors, domain separation and tampering.
#include "crypto/keys.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "crypto/hash.h"

namespace tally::crypto {
namespace {

struct Rfc8032Vector {
    const char* name;
    const char* secret;
    const char* public_key;
    std::string message;  // hex
    const char* signature;
};

std::string bytes(std::string_view hex) {
    auto b = from_hex(hex);
    EXPECT_TRUE(b.ok()) << hex;
    return b.ok() ? *b : std::string();
}

std::vector<Rfc8032Vector> rfc8032_vectors() {
    return {
        {"TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
         "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
         "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
         "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
        {"TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
         "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
         "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
         "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
        {"TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
         "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
         "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
         "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
        {"TEST 1024", "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
         "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
        "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f77b1"
        "e355f6c50544e23fb1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d"
        "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc1a858efcb8550ee3a5e1998bd177e93a"
        "7363c344fe6b199ee5d02e82d522c4feba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e"
        "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96bd68a8a97b928a8bbc10"
        "3b6621fcde2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1"
        "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2d17ba70eb6248e594e1a2297acbbb39d"
        "502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270"
        "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089b"
        "eccf80cfe2df16a2cf65bd92dd597b0707e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba"
        "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51addd3b75a2b1ae0784504df543af8969b"
        "e3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7"
        "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c42f58c30c04aafdb038dda0847dd988d"
        "cda6f3bfd15c4b4c4525004aa06eeff8ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df"
        "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7"
        "984a74d37145986780fc0b16ac451649de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4"
        "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac09"
        "43bf6686b64b2579376504ccc493d97e6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f"
        "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b50d334ba77c225bc307ba537152f3f161"
        "0e4eafe595f6d9d90d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d"
        "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8ca"
        "c60c905c15fc910840b94c00a0b9d0",
         "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350"
         "aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03"},
        {"TEST SHA(abc)", "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
         "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
         "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
         "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
         "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
         "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"},
    };
}

TEST(Ed25519, Rfc8032Section7_1Vectors) {
    for (const auto& v : rfc8032_vectors()) {
        SCOPED_TRACE(v.name);
        auto seed = array_from_hex<32>(v.secret);
        ASSERT_TRUE(seed.ok());
        KeyPair key = KeyPair::from_seed(*seed);
        EXPECT_EQ(key_to_hex(key.public_key()), v.public_key);
        EXPECT_EQ(key.seed(), *seed);

        std::string message = bytes(v.message);
        Signature sig = key.sign_raw(message);
        EXPECT_EQ(to_hex(sig), v.signature);
        EXPECT_TRUE(verify_raw(key.public_key(), message, sig));

        auto stated = array_from_hex<64>(v.signature);
        ASSERT_TRUE(stated.ok());
        EXPECT_TRUE(verify_raw(key.public_key(), message, *stated));
    }
}

// Guards against a typo in the long messages: their sizes and origins are stated in the RFC.
TEST(Ed25519, VectorMessagesAreAsTheRfcDescribes) {
    EXPECT_EQ(bytes(rfc8032_vectors()[3].message).size(), 1023u);
    std::array<unsigned char, crypto_hash_sha512_BYTES> sha_abc{};
    crypto_hash_sha512(sha_abc.data(), reinterpret_cast<const unsigned char*>("abc"), 3);
    EXPECT_EQ(bytes(rfc8032_vectors()[4].message),
              std::string(reinterpret_cast<const char*>(sha_abc.data()), sha_abc.size()));
}

KeyPair key_from_byte(uint8_t b) {
    Seed seed{};
    seed.fill(b);
    return KeyPair::from_seed(seed);
}

TEST(Ed25519, DomainSignatureVerifiesOnlyUnderItsDomain) {
    KeyPair key = key_from_byte(1);
    Signature sig = key.sign("tally/a", "message");
    EXPECT_TRUE(verify(key.public_key(), "tally/a", "message", sig));
    EXPECT_FALSE(verify(key.public_key(), "tally/b", "message", sig));
    EXPECT_FALSE(verify(key.public_key(), "", "message", sig));
    EXPECT_FALSE(verify_raw(key.public_key(), "message", sig));
}

TEST(Ed25519, SeparatorKeepsDomainAndMessageApart) {
    KeyPair key = key_from_byte(2);
    Signature sig = key.sign("ab", "c");
    EXPECT_FALSE(verify(key.public_key(), "a", "bc", sig));
    EXPECT_FALSE(verify(key.public_key(), "abc", "", sig));
    // The signed bytes are exactly tag || 0x00 || message.
    EXPECT_TRUE(verify_raw(key.public_key(), std::string("ab\0c", 4), sig));
}

TEST(Ed25519, RawSignatureIsNotADomainSignature) {
    KeyPair key = key_from_byte(3);
    Signature raw = key.sign_raw(std::string("d\0m", 3));
    EXPECT_TRUE(verify(key.public_key(), "d", "m", raw));  // same bytes, by construction
    Signature other = key.sign_raw("m");
    EXPECT_FALSE(verify(key.public_key(), "d", "m", other));
}

TEST(Ed25519, TamperedMessageKeyOrSignatureIsRejected) {
    KeyPair key = key_from_byte(4);
    KeyPair other = key_from_byte(5);
    const std::string message = "transfer 10 to bob";
    Signature sig = key.sign(kDomainEnvelope, message);
    ASSERT_TRUE(verify(key.public_key(), kDomainEnvelope, message, sig));

    for (size_t i = 0; i < message.size(); ++i) {
        std::string m = message;
        m[i] = static_cast<char>(m[i] ^ 0x01);
        EXPECT_FALSE(verify(key.public_key(), kDomainEnvelope, m, sig)) << "byte " << i;
    }
    EXPECT_FALSE(verify(key.public_key(), kDomainEnvelope, message + "!", sig));
    EXPECT_FALSE(verify(other.public_key(), kDomainEnvelope, message, sig));
    for (size_t bit = 0; bit < 8 * sig.size(); ++bit) {
        Signature s = sig;
        s[bit / 8] = static_cast<uint8_t>(s[bit / 8] ^ (1u << (bit % 8)));
        EXPECT_FALSE(verify(key.public_key(), kDomainEnvelope, message, s)) << "bit " << bit;
    }
    for (size_t bit = 0; bit < 8 * 32; ++bit) {
        PublicKey k = key.public_key();
        k[bit / 8] = static_cast<uint8_t>(k[bit / 8] ^ (1u << (bit % 8)));
        EXPECT_FALSE(verify(k, kDomainEnvelope, message, sig)) << "bit " << bit;
    }
    EXPECT_FALSE(verify(PublicKey{}, kDomainEnvelope, message, sig));
    EXPECT_FALSE(verify(key.public_key(), kDomainEnvelope, message, Signature{}));
}

TEST(Ed25519, GeneratedKeysAreDistinctAndRoundTripTheirSeed) {
    KeyPair a = KeyPair::generate();
    KeyPair b = KeyPair::generate();
    EXPECT_NE(a.public_key(), b.public_key());
    EXPECT_NE(a.seed(), b.seed());
    EXPECT_EQ(KeyPair::from_seed(a.seed()).public_key(), a.public_key());
    Signature sig = a.sign("tally/test", "hello");
    EXPECT_TRUE(verify(a.public_key(), "tally/test", "hello", sig));
    EXPECT_FALSE(verify(b.public_key(), "tally/test", "hello", sig));
}

TEST(Ed25519, SigningIsDeterministic) {
    KeyPair key = key_from_byte(6);
    EXPECT_EQ(key.sign("d", "m"), key.sign("d", "m"));
    KeyPair copy = key;
    EXPECT_EQ(copy.sign("d", "m"), key.sign("d", "m"));
}

// Does `haystack` (size bytes) contain `needle` anywhere?
bool contains_bytes(const void* haystack, size_t size, const Seed& needle) {
    const auto* begin = static_cast<const uint8_t*>(haystack);
    return std::search(begin, begin + size, needle.begin(), needle.end()) != begin + size;
}

TEST(KeyPairSecret, IsNotInTheKeyPairsOwnBytesNorInACopys) {
    Seed seed{};
    for (size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<uint8_t>(0xa0 + i);
    const KeyPair key = KeyPair::from_seed(seed);
    const KeyPair copy = key;  // NOLINT: the copy is the point
    std::vector<KeyPair> many(3, key);
    // A KeyPair, wherever it is copied (stack, vector), holds no byte run of its secret: what a
    // stray copy leaves behind in freed memory is its public key and a pointer.
    EXPECT_FALSE(contains_bytes(&key, sizeof key, seed));
    EXPECT_FALSE(contains_bytes(&copy, sizeof copy, seed));
    EXPECT_FALSE(contains_bytes(many.data(), many.size() * sizeof(KeyPair), seed));
    // ... and all of them still sign as the key does (they share the one secret).
    EXPECT_EQ(many[2].sign("t", "m"), key.sign("t", "m"));
    EXPECT_EQ(copy.seed(), seed);
    EXPECT_EQ(secret_address_for_tests(copy), secret_address_for_tests(key));
}

TEST(KeyPairSecret, CopiesOutliveTheOriginal) {
    auto original = std::make_unique<KeyPair>(KeyPair::generate());
    const KeyPair copy = *original;
    const Signature before = original->sign("t", "m");
    original.reset();
    EXPECT_EQ(copy.sign("t", "m"), before);
    EXPECT_TRUE(verify(copy.public_key(), "t", "m", before));
}

// The /proc/self/smaps entry of the mapping holding `address`: its header line and its
// "VmFlags:" line.
struct Mapping {
    std::string header;
    std::string flags;
};
std::optional<Mapping> mapping_of(const void* address) {
    const auto at = reinterpret_cast<uintptr_t>(address);
    std::ifstream smaps("/proc/self/smaps");
    std::string line;
    std::optional<Mapping> current;
    while (std::getline(smaps, line)) {
        const std::string first = line.substr(0, line.find(' '));
        const size_t dash = first.find('-');
        if (dash != std::string::npos && first.find(':') == std::string::npos) {  // a header
            const uintptr_t lo = std::stoull(first.substr(0, dash), nullptr, 16);
            const uintptr_t hi = std::stoull(first.substr(dash + 1), nullptr, 16);
            current = (at >= lo && at < hi) ? std::optional<Mapping>(Mapping{line, ""}) : std::nullopt;
        } else if (current && line.rfind("VmFlags:", 0) == 0) {
            current->flags = line;
            return current;
        }
    }
    return std::nullopt;
}

TEST(KeyPairSecret, LivesInMemoryLeftOutOfCoreDumps) {
    const KeyPair key = KeyPair::generate();
    auto mapping = mapping_of(secret_address_for_tests(key));
    ASSERT_TRUE(mapping.has_value()) << "no mapping in /proc/self/smaps holds the secret";
    // "dd": do not include in core dumps (MADV_DONTDUMP).
    EXPECT_NE((" " + mapping->flags + " ").find(" dd "), std::string::npos) << mapping->flags;
}

TEST(KeyPairSecret, IsWipedWhenTheLastCopyDies) {
    Seed seed{};
    seed.fill(0x77);
    auto original = std::make_unique<KeyPair>(KeyPair::from_seed(seed));
    auto copy = std::make_unique<KeyPair>(*original);
    const auto* at = static_cast<const uint8_t*>(secret_address_for_tests(*original));
    original.reset();
    EXPECT_TRUE(std::equal(seed.begin(), seed.end(), at)) << "a copy still holds it";
    copy.reset();
    // The slot stays mapped (kept for the next key); nothing of the secret is left in it.
    EXPECT_TRUE(std::all_of(at, at + 64, [](uint8_t b) { return b == 0; }));
}

TEST(KeyHex, RoundTripsAndIsLowerCase) {
    KeyPair key = key_from_byte(7);
    std::string hex = key_to_hex(key.public_key());
    ASSERT_EQ(hex.size(), 64u);
    for (char c : hex) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << hex;
    auto back = key_from_hex(hex);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, key.public_key());
}

TEST(KeyHex, RejectsWrongLengthAndNonHex) {
    std::string hex = key_to_hex(key_from_byte(8).public_key());
    EXPECT_EQ(key_from_hex(hex.substr(0, 62)).error().code, "bad_length");
    EXPECT_EQ(key_from_hex(hex + "00").error().code, "bad_length");
    EXPECT_EQ(key_from_hex(hex.substr(0, 63)).error().code, "bad_hex");
    std::string bad = hex;
    bad[10] = 'x';
    EXPECT_EQ(key_from_hex(bad).error().code, "bad_hex");
    EXPECT_EQ(key_from_hex("").error().code, "bad_length");
}

// A replica's transport key pair (CurveZMQ) derives from its signing key: the secret derived from
// the KeyPair and the public key derived from the public signing key alone are one X25519 pair,
// so network.json's public_key is all a peer needs to authenticate the replica's connection.
TEST(TransportKeys, TheSecretFromAKeyPairMatchesThePublicKeyFromItsSigningKey) {
    for (int i = 0; i < 8; ++i) {
        const auto key = KeyPair::generate();
        auto derived = transport_public_key(key.public_key());
        ASSERT_TRUE(derived.ok()) << derived.error().message;
        const TransportSecret secret(key);
        CurveKey from_secret{};
        ASSERT_EQ(crypto_scalarmult_base(from_secret.data(), secret.data()), 0);
        EXPECT_EQ(from_secret, *derived);
        // Not the signing key's bytes: a different curve's encoding.
        EXPECT_NE(std::vector<uint8_t>(derived->begin(), derived->end()),
                  std::vector<uint8_t>(key.public_key().begin(), key.public_key().end()));
    }
    const auto a = KeyPair::from_seed(Seed{1});
    const auto b = KeyPair::from_seed(Seed{2});
    EXPECT_NE(*transport_public_key(a.public_key()), *transport_public_key(b.public_key()));
    EXPECT_EQ(*transport_public_key(a.public_key()), *transport_public_key(KeyPair::from_seed(Seed{1}).public_key()));
}

TEST(TransportKeys, AnEphemeralPairMatchesAndEachIsFresh) {
    CurveKey public_a{};
    CurveKey public_b{};
    const TransportSecret a(public_a);
    const TransportSecret b(public_b);
    CurveKey from_secret{};
    ASSERT_EQ(crypto_scalarmult_base(from_secret.data(), a.data()), 0);
    EXPECT_EQ(from_secret, public_a);
    EXPECT_NE(public_a, public_b);
}

TEST(TransportKeys, AKeyThatIsNoValidPointIsRefusedNotConverted) {
    const PublicKey zero{};  // y = 0: a point of small order
    auto derived = transport_public_key(zero);
    ASSERT_FALSE(derived.ok());
    EXPECT_EQ(derived.error().code, "invalid_key");
}

}  // namespace
}  // namespace tally::crypto
