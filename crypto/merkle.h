// A Merkle root over a list of hashes, as RFC 6962 (Certificate Transparency) defines it,
// so that a leaf can never be mistaken for an inner node:
//   root([])        = SHA-256("")
//   leaf(h)         = SHA-256(0x00 || h)
//   node(l, r)      = SHA-256(0x01 || l || r)
//   root([h])       = leaf(h)
//   root(list of n) = node(root(first k), root(rest)), k the largest power of two < n.
// An odd count is thus handled by the split, never by duplicating the last leaf (the
// duplication in Bitcoin's tree lets two different lists share a root).
#pragma once

#include <span>

#include "crypto/hash.h"

namespace tally::crypto {

Hash merkle_root(std::span<const Hash> leaves);

}  // namespace tally::crypto
