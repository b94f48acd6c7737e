// RFC 6962 inclusion proofs (audit paths): built by hand for small trees, and round-tripped
// through merkle_root_from_proof for every leaf of every size up to 70; wrong positions, wrong
// leaves and paths of the wrong length never lead to the root.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "crypto/merkle.h"

namespace tally::crypto {
namespace {

Hash leaf(const Hash& h) { return sha256(std::string(1, '\x00') + std::string(as_bytes(h))); }

Hash node(const Hash& l, const Hash& r) {
    return sha256(std::string(1, '\x01') + std::string(as_bytes(l)) + std::string(as_bytes(r)));
}

std::vector<Hash> leaves_of(size_t n) {
    std::vector<Hash> v;
    for (size_t i = 0; i < n; ++i) v.push_back(sha256("leaf " + std::to_string(i)));
    return v;
}

TEST(MerkleProof, OneLeafHasAnEmptyPath) {
    auto v = leaves_of(1);
    EXPECT_TRUE(merkle_proof(v, 0).empty());
    EXPECT_EQ(merkle_root_from_proof(v[0], 0, 1, {}), merkle_root(v));
}

TEST(MerkleProof, FiveLeavesByHand) {
    // root = node(node(node(a,b), node(c,d)), e)
    auto v = leaves_of(5);
    const Hash ab = node(leaf(v[0]), leaf(v[1]));
    const Hash cd = node(leaf(v[2]), leaf(v[3]));
    EXPECT_EQ(merkle_proof(v, 0), (std::vector<Hash>{leaf(v[1]), cd, leaf(v[4])}));
    EXPECT_EQ(merkle_proof(v, 3), (std::vector<Hash>{leaf(v[2]), ab, leaf(v[4])}));
    // e is the rightmost leaf of a level with no sibling: one hash, the left subtree's root.
    EXPECT_EQ(merkle_proof(v, 4), (std::vector<Hash>{node(ab, cd)}));
}

TEST(MerkleProof, EveryLeafOfEverySizeLeadsToTheRoot) {
    for (size_t n = 1; n <= 70; ++n) {
        auto v = leaves_of(n);
        Hash root{};
        auto proofs = merkle_proofs(v, &root);
        ASSERT_EQ(root, merkle_root(v));
        ASSERT_EQ(proofs.size(), n);
        for (size_t i = 0; i < n; ++i) {
            ASSERT_EQ(proofs[i], merkle_proof(v, i)) << n << " " << i;
            ASSERT_EQ(merkle_root_from_proof(v[i], i, n, proofs[i]), root) << n << " " << i;
        }
    }
}

TEST(MerkleProof, AnotherLeafsProofDoesNotLeadToTheRoot) {
    auto v = leaves_of(16);
    const Hash root = merkle_root(v);
    auto proofs = merkle_proofs(v);
    for (size_t i = 0; i < v.size(); ++i) {
        const size_t other = (i + 1) % v.size();
        // The other leaf's path, claimed for this leaf at either position.
        EXPECT_NE(merkle_root_from_proof(v[i], i, v.size(), proofs[other]), root);
        EXPECT_NE(merkle_root_from_proof(v[i], other, v.size(), proofs[other]), root);
    }
}

TEST(MerkleProof, ATamperedLeafOrPathDoesNotLeadToTheRoot) {
    auto v = leaves_of(11);
    const Hash root = merkle_root(v);
    auto proof = merkle_proof(v, 6);
    Hash tampered = v[6];
    tampered[31] ^= 1;
    EXPECT_NE(merkle_root_from_proof(tampered, 6, 11, proof), root);
    for (size_t k = 0; k < proof.size(); ++k) {
        auto bad = proof;
        bad[k][0] ^= 0x80;
        EXPECT_NE(merkle_root_from_proof(v[6], 6, 11, bad), root);
    }
}

TEST(MerkleProof, APathOfTheWrongLengthOrPositionIsRefused) {
    auto v = leaves_of(8);
    auto proof = merkle_proof(v, 2);
    ASSERT_EQ(proof.size(), 3u);
    EXPECT_FALSE(merkle_root_from_proof(v[2], 8, 8, proof));   // index past the end
    EXPECT_FALSE(merkle_root_from_proof(v[2], 0, 0, {}));      // no tree at all
    auto longer = proof;
    longer.push_back(proof.back());
    EXPECT_FALSE(merkle_root_from_proof(v[2], 2, 8, longer));
    auto shorter = proof;
    shorter.pop_back();
    EXPECT_FALSE(merkle_root_from_proof(v[2], 2, 8, shorter));
    // The same path claimed for a tree of a size with another shape is refused ...
    EXPECT_FALSE(merkle_root_from_proof(v[2], 2, 4, proof));
    EXPECT_FALSE(merkle_root_from_proof(v[2], 2, 3, proof));
    // ... but in trees of 5 to 8 leaf 2 sits at the same place, so the path proves the same
    // root: a proof places a leaf in a tree, it does not prove the tree's size (which is why a
    // signed batch root is signed together with its count, crypto/reply_batch.h).
    EXPECT_EQ(merkle_root_from_proof(v[2], 2, 5, proof), merkle_root(v));
}

TEST(MerkleProof, NoLeavesNoProofs) {
    Hash root{};
    EXPECT_TRUE(merkle_proofs({}, &root).empty());
    EXPECT_EQ(root, sha256(""));
}

}  // namespace
}  // namespace tally::crypto
