// A Merkle root over a list of hashes, as RFC 6962 (Certificate Transparency) defines it,
// so that a leaf can never be mistaken for an inner node:
//   root([])        = SHA-256("")
//   leaf(h)         = SHA-256(0x00 || h)
//   node(l, r)      = SHA-256(0x01 || l || r)
//   root([h])       = leaf(h)
//   root(list of n) = node(root(first k), root(rest)), k the largest power of two < n.
// An odd count is thus handled by the split, never by duplicating the last leaf (the
// duplication in Bitcoin's tree lets two different lists share a root).
//
// An inclusion proof (RFC 6962 2.1.1, "audit path") of leaf i in a list of n is the list of
// sibling subtree roots from the leaf up to the root; with i and n it recomputes the root
// (RFC 9162 2.1.3.2), so one signature over the root vouches for every leaf.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <vector>

#include "crypto/hash.h"

namespace tally::crypto {

// The root of `leaves` (any number, including none).
Hash merkle_root(std::span<const Hash> leaves);

// The audit path of every leaf at once, in leaf order, each from the leaf's sibling up to the
// root's child; with the root in `root` when given. 2n-1 hashes in all, where asking for each
// proof alone would recompute the tree n times. Empty list: no proofs, root = merkle_root({}).
std::vector<std::vector<Hash>> merkle_proofs(std::span<const Hash> leaves, Hash* root = nullptr);

// The audit path of leaf `index`. Precondition: index < leaves.size().
std::vector<Hash> merkle_proof(std::span<const Hash> leaves, size_t index);

// The root that `proof` leads to from `leaf` at `index` of a list of `count`, or nullopt when
// the proof cannot be one for that position (index >= count, or a path of the wrong length).
// Trusts nothing: any input is safe. The caller compares the result with a root it trusts.
std::optional<Hash> merkle_root_from_proof(const Hash& leaf, size_t index, size_t count,
                                           std::span<const Hash> proof);

}  // namespace tally::crypto
