// The RFC 6962 Merkle tree hash over a list of hashes (see merkle.h for the definition).
// Trusts nothing: works for any list, including an empty one.
#include "crypto/merkle.h"

#include <cstring>

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

}  // namespace

Hash merkle_root(std::span<const Hash> leaves) {
    if (leaves.empty()) return sha256("");
    return subtree_root(leaves);
}

}  // namespace tally::crypto
