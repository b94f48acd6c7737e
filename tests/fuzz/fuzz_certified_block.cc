// Certified blocks (ledger::decode_certified_block), as a replica receives them from a peer
// while it backfills the blocks below a snapshot, and the commit certificate each carries
// (bft/pbft/certificate.h), checked against the four replicas' keys as the node checks it.
// Properties: decode → encode → decode gives the same block; a certificate that checks names a
// batch whose digest is the one it certifies, at the seq it says.
#include <cstddef>
#include <cstdint>

#include "bft/pbft/certificate.h"
#include "bft/pbft/messages.h"
#include "ledger/state.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace tally;
    auto block = ledger::decode_certified_block(fuzz::as_view(data, size));
    if (!block) return 0;
    const std::string encoded = ledger::encode_certified_block(*block);
    auto again = ledger::decode_certified_block(encoded);
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again->header.hash() == block->header.hash());
    FUZZ_CHECK(again->header.view == block->header.view && again->header.height == block->header.height);
    FUZZ_CHECK(again->certificate == block->certificate);
    FUZZ_CHECK(ledger::encode_certified_block(*again) == encoded);

    static const auto replicas = fuzz::replica_public_keys();
    auto certified = bft::pbft::check_commit_certificate(block->certificate, replicas, 3);
    if (certified) FUZZ_CHECK(bft::pbft::batch_digest(certified->requests) == certified->digest);
    return 0;
}
