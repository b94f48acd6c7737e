// The RFC 6962 Merkle tree hash over a list of hashes (see merkle.h for the definition).
// Trusts nothing: works for any list, including an empty one, and for any proof.
#include "crypto/merkle.h"

#include <cstring>

#include "crypto/assert.h"

namespace tally::crypto {
namespace {

constexpr char kLeafPrefix = 0x00;
constexpr char kNodePrefix = 0x01;

Hash leaf_hash(const Hash& h) {
    char buf[1 + 32];
    buf[0] = kLeafPrefix;
    std::memcpy(buf + 1, h.data(), h.size());
    return sha256(std::string_view(buf, sizeof buf));
}

Hash node_hash(const Hash& left, const Hash& right) {
    char buf[1 + 32 + 32];
    buf[0] = kNodePrefix;
    std::memcpy(buf + 1, left.data(), left.size());
    std::memcpy(buf + 1 + 32, right.data(), right.size());
    return sha256(std::string_view(buf, sizeof buf));
}

// The largest power of two strictly less than n (n >= 2).
size_t split_point(size_t n) {
    size_t k = 1;
    while (k * 2 < n) k *= 2;
    return k;
}

// Root of a non-empty list. Recursion depth is log2(n).
Hash subtree_root(std::span<const Hash> leaves) {
    if (leaves.size() == 1) return leaf_hash(leaves[0]);
    size_t k = split_point(leaves.size());
    return node_hash(subtree_root(leaves.first(k)), subtree_root(leaves.subspan(k)));
}

// Root of leaves [first, first + leaves.size()); appends each leaf's sibling path (deepest
// first, since inner calls return before outer ones append) to proofs[first + i].
Hash subtree_root_with_proofs(std::span<const Hash> leaves, size_t first,
                              std::vector<std::vector<Hash>>& proofs) {
    if (leaves.size() == 1) return leaf_hash(leaves[0]);
    const size_t k = split_point(leaves.size());
    const Hash left = subtree_root_with_proofs(leaves.first(k), first, proofs);
    const Hash right = subtree_root_with_proofs(leaves.subspan(k), first + k, proofs);
    for (size_t i = first; i < first + k; ++i) proofs[i].push_back(right);
    for (size_t i = first + k; i < first + leaves.size(); ++i) proofs[i].push_back(left);
    return node_hash(left, right);
}

}  // namespace

Hash merkle_root(std::span<const Hash> leaves) {
    if (leaves.empty()) return sha256("");
    return subtree_root(leaves);
}

std::vector<std::vector<Hash>> merkle_proofs(std::span<const Hash> leaves, Hash* root) {
    std::vector<std::vector<Hash>> proofs(leaves.size());
    if (leaves.empty()) {
        if (root) *root = sha256("");
        return proofs;
    }
    const Hash r = subtree_root_with_proofs(leaves, 0, proofs);
    if (root) *root = r;
    return proofs;
}

std::vector<Hash> merkle_proof(std::span<const Hash> leaves, size_t index) {
    TALLY_ASSERT(index < leaves.size());
    std::vector<Hash> proof;
    // Walk down from the root, keeping the sibling of the side that holds `index`; the path
    // is then reversed so it reads from the leaf up.
    while (leaves.size() > 1) {
        const size_t k = split_point(leaves.size());
        if (index < k) {
            proof.push_back(subtree_root(leaves.subspan(k)));
            leaves = leaves.first(k);
        } else {
            proof.push_back(subtree_root(leaves.first(k)));
            leaves = leaves.subspan(k);
            index -= k;
        }
    }
    return {proof.rbegin(), proof.rend()};
}

std::optional<Hash> merkle_root_from_proof(const Hash& leaf, size_t index, size_t count,
                                           std::span<const Hash> proof) {
    // RFC 9162 2.1.3.2, step by step: fn walks the leaf's position up the tree, sn the last
    // leaf's; where fn is a right child (or the rightmost node of a level with no sibling to
    // its right) the sibling is on the left.
    if (index >= count) return std::nullopt;
    size_t fn = index;
    size_t sn = count - 1;
    Hash r = leaf_hash(leaf);
    for (const Hash& p : proof) {
        if (sn == 0) return std::nullopt;  // the path is longer than the tree is deep
        if ((fn & 1) == 1 || fn == sn) {
            r = node_hash(p, r);
            // A rightmost node with no right sibling moves up without a hash of its own.
            while ((fn & 1) == 0 && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(r, p);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0) return std::nullopt;  // the path is shorter than the tree is deep
    return r;
}

}  // namespace tally::crypto
