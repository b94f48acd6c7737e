// Merkle paths (crypto/merkle.h). The input is cut into a list of leaves (by 0x00 bytes; their
// SHA-256s are the leaf hashes) and, from its first bytes, a claimed proof: an index, a count
// and a path. Properties: every leaf's proof, from merkle_proofs and from merkle_proof alike,
// leads back to merkle_root; a path of the wrong length for its place leads nowhere; and any
// claimed proof is judged without a crash, leading to the true root only when it is the true
// path for a leaf in the list.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "crypto/merkle.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace tally;
    if (size < 3) return 0;
    const std::string_view input = fuzz::as_view(data, size);

    // A claimed proof, from the raw bytes: index, count, then the rest as 32-byte hashes.
    const size_t index = data[0];
    const size_t count = data[1];
    std::vector<crypto::Hash> claimed;
    for (size_t at = 2; at + 32 <= size && claimed.size() < 40; at += 32) {
        crypto::Hash h{};
        std::copy(data + at, data + at + 32, h.begin());
        claimed.push_back(h);
    }
    auto claimed_root = crypto::merkle_root_from_proof(crypto::sha256(input), index, count, claimed);
    if (index >= count) FUZZ_CHECK(!claimed_root);

    // The leaves, at most 300.
    std::vector<crypto::Hash> leaves;
    size_t start = 0;
    for (size_t i = 0; i <= size && leaves.size() < 300; ++i) {
        if (i == size || data[i] == 0) {
            leaves.push_back(crypto::sha256(input.substr(start, i - start)));
            start = i + 1;
        }
    }
    crypto::Hash root{};
    auto proofs = crypto::merkle_proofs(leaves, &root);
    FUZZ_CHECK(root == crypto::merkle_root(leaves));
    FUZZ_CHECK(proofs.size() == leaves.size());
    for (size_t i = 0; i < leaves.size(); ++i) {
        auto back = crypto::merkle_root_from_proof(leaves[i], i, leaves.size(), proofs[i]);
        FUZZ_CHECK(back && *back == root);
        if (i % 7 == 0) FUZZ_CHECK(crypto::merkle_proof(leaves, i) == proofs[i]);
        // One hash more or less is never a proof for the same place.
        auto longer = proofs[i];
        longer.push_back(root);
        FUZZ_CHECK(!crypto::merkle_root_from_proof(leaves[i], i, leaves.size(), longer));
        if (!proofs[i].empty()) {
            auto shorter = proofs[i];
            shorter.pop_back();
            FUZZ_CHECK(!crypto::merkle_root_from_proof(leaves[i], i, leaves.size(), shorter));
        }
    }
    // A claimed path for a leaf of the list: the true root only with the true path.
    if (count == leaves.size() && index < count) {
        auto r = crypto::merkle_root_from_proof(leaves[index], index, count, claimed);
        if (r && *r == root) FUZZ_CHECK(claimed == proofs[index]);
    }
    return 0;
}
