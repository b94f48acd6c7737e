// The RFC 6962 Merkle root, checked against trees hashed by hand.
#include "crypto/merkle.h"

#include <gtest/gtest.h>

#include <vector>

namespace tally::crypto {
namespace {

Hash leaf(const Hash& h) { return sha256(std::string(1, '\x00') + std::string(as_bytes(h))); }

Hash node(const Hash& l, const Hash& r) {
    return sha256(std::string(1, '\x01') + std::string(as_bytes(l)) + std::string(as_bytes(r)));
}

class MerkleTest : public ::testing::Test {
protected:
    Hash a = sha256("a"), b = sha256("b"), c = sha256("c"), d = sha256("d"), e = sha256("e");
};

TEST_F(MerkleTest, EmptyListIsHashOfNothing) {
    EXPECT_EQ(merkle_root({}), sha256(""));
}

TEST_F(MerkleTest, OneLeafIsItsLeafHash) {
    std::vector<Hash> v{a};
    EXPECT_EQ(merkle_root(v), leaf(a));
    EXPECT_NE(merkle_root(v), a);  // a leaf is never its own root
}

TEST_F(MerkleTest, TwoLeaves) {
    std::vector<Hash> v{a, b};
    EXPECT_EQ(merkle_root(v), node(leaf(a), leaf(b)));
}

TEST_F(MerkleTest, ThreeLeavesSplitAtTwo) {
    std::vector<Hash> v{a, b, c};
    EXPECT_EQ(merkle_root(v), node(node(leaf(a), leaf(b)), leaf(c)));
}

TEST_F(MerkleTest, FiveLeavesSplitAtFour) {
    std::vector<Hash> v{a, b, c, d, e};
    Hash left = node(node(leaf(a), leaf(b)), node(leaf(c), leaf(d)));
    EXPECT_EQ(merkle_root(v), node(left, leaf(e)));
}

TEST_F(MerkleTest, OddCountIsNotPaddedByDuplication) {
    std::vector<Hash> three{a, b, c};
    std::vector<Hash> four{a, b, c, c};
    EXPECT_NE(merkle_root(three), merkle_root(four));
}

TEST_F(MerkleTest, OrderMatters) {
    std::vector<Hash> ab{a, b};
    std::vector<Hash> ba{b, a};
    EXPECT_NE(merkle_root(ab), merkle_root(ba));
}

TEST_F(MerkleTest, InnerNodeIsNotALeaf) {
    // A list holding the two-leaf root must not share the two-leaf list's root.
    std::vector<Hash> ab{a, b};
    std::vector<Hash> one{node(leaf(a), leaf(b))};
    EXPECT_NE(merkle_root(one), merkle_root(ab));
}

TEST_F(MerkleTest, LargeListsAreStableAndDistinct) {
    std::vector<Hash> v;
    for (uint64_t i = 0; i < 1000; ++i) v.push_back(sha256(std::to_string(i)));
    Hash root = merkle_root(v);
    EXPECT_EQ(root, merkle_root(v));
    // Split rule for 1000: first 512, then the rest.
    std::span<const Hash> all(v);
    EXPECT_EQ(root, node(merkle_root(all.first(512)), merkle_root(all.subspan(512))));
    v.back()[0] ^= 1;
    EXPECT_NE(root, merkle_root(v));
}

}  // namespace
}  // namespace tally::crypto
