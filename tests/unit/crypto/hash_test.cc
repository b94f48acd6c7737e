// SHA-256 (NIST FIPS 180 examples), incremental hashing and the hex helpers.
#include "crypto/hash.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace tally::crypto {
namespace {

std::string hex_of(std::string_view data) { return to_hex(sha256(data)); }

TEST(Sha256, NistVectors) {
    EXPECT_EQ(hex_of(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(hex_of("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, OneMillionAIncrementally) {
    Sha256 h;
    const std::string thousand(1000, 'a');
    for (int i = 0; i < 1000; ++i) h.update(thousand);
    EXPECT_EQ(to_hex(h.finish()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, IncrementalInRandomPiecesEqualsOneShot) {
    std::mt19937_64 rng(7);
    for (int round = 0; round < 50; ++round) {
        std::string data(rng() % 5000, '\0');
        for (char& c : data) c = static_cast<char>(rng());
        Sha256 h;
        size_t at = 0;
        while (at < data.size()) {
            size_t n = std::min<size_t>(rng() % 300, data.size() - at);
            h.update(std::string_view(data).substr(at, n));
            at += n;
        }
        EXPECT_EQ(h.finish(), sha256(data)) << "round " << round;
    }
}

TEST(Sha256, EmptyIncrementalEqualsHashOfNothing) {
    Sha256 h;
    EXPECT_EQ(h.finish(), sha256(""));
}

TEST(Sha256, FinishStartsOver) {
    Sha256 h;
    h.update("abc");
    EXPECT_EQ(h.finish(), sha256("abc"));
    h.update("xyz");
    EXPECT_EQ(h.finish(), sha256("xyz"));
}

TEST(Sha256, UpdateU64IsBigEndian) {
    Sha256 a;
    a.update_u64(0x0102030405060708ULL);
    EXPECT_EQ(a.finish(), sha256(std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8)));
    Sha256 b;
    b.update_u64(0);
    EXPECT_EQ(b.finish(), sha256(std::string(8, '\0')));
}

TEST(Sha256, UpdateWithHashFeedsItsBytes) {
    Hash inner = sha256("inner");
    Sha256 h;
    h.update(inner).update("tail");
    EXPECT_EQ(h.finish(), sha256(std::string(as_bytes(inner)) + "tail"));
}

TEST(Hex, RoundTripsEveryByte) {
    std::string all;
    for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
    std::string hex = to_hex(all);
    ASSERT_EQ(hex.size(), 512u);
    EXPECT_EQ(hex.substr(0, 8), "00010203");
    EXPECT_EQ(hex.substr(504), "fcfdfeff");
    auto back = from_hex(hex);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, all);
}

TEST(Hex, AcceptsUpperCase) {
    auto bytes = from_hex("ABcdEF");
    ASSERT_TRUE(bytes.ok());
    EXPECT_EQ(*bytes, std::string("\xab\xcd\xef"));
}

TEST(Hex, RejectsOddLengthAndNonHex) {
    EXPECT_EQ(from_hex("abc").error().code, "bad_hex");
    EXPECT_EQ(from_hex("zz").error().code, "bad_hex");
    EXPECT_EQ(from_hex("0g").error().code, "bad_hex");
    EXPECT_EQ(from_hex(" 0").error().code, "bad_hex");
    EXPECT_TRUE(from_hex("").ok());
}

TEST(Hex, ArrayFromHexChecksLength) {
    EXPECT_EQ((array_from_hex<4>("010203")).error().code, "bad_length");
    EXPECT_EQ((array_from_hex<4>("0102030405")).error().code, "bad_length");
    EXPECT_EQ((array_from_hex<4>("0102030g")).error().code, "bad_hex");
    auto a = array_from_hex<4>("01020304");
    ASSERT_TRUE(a.ok());
    EXPECT_EQ((*a)[3], 4);
}

TEST(Hex, ArrayFromBytesChecksLength) {
    EXPECT_EQ((array_from_bytes<3>("ab")).error().code, "bad_length");
    auto a = array_from_bytes<3>("abc");
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(as_bytes(*a), "abc");
}

// Each hasher draws its own key: the same bytes land in different buckets of two containers
// (an all-equal result over these inputs would mean a fixed key: chance 2^-512 otherwise),
// and one hasher always answers the same.
TEST(KeyedBytesHash, EachHasherHasItsOwnKeyAndIsAFunction) {
    const KeyedBytesHash one, other;
    bool differ = false;
    for (uint8_t i = 0; i < 8; ++i) {
        Hash bytes{};
        bytes[0] = i;
        EXPECT_EQ(one(bytes), one(bytes));
        differ = differ || one(bytes) != other(bytes);
    }
    EXPECT_TRUE(differ);
    Hash low{}, high{};
    high[31] = 1;  // the last byte counts as much as the first
    EXPECT_NE(one(low), one(high));
}

}  // namespace
}  // namespace tally::crypto
