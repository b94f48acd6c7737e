#include "node/certified_replay.h"

#include <string>

#include "bft/pbft/certificate.h"

namespace tally::node {

Result<ledger::AppliedBlock> execute_certified_block(ledger::State& ledger,
                                                     const ledger::CertifiedBlock& block,
                                                     const std::vector<crypto::PublicKey>& replicas,
                                                     size_t quorum) {
    const uint64_t due = ledger.last_seq() + 1;
    if (block.header.height != due)
        return Error{"bad_block", "block " + std::to_string(block.header.height) + " where " +
                                      std::to_string(due) + " was due"};
    auto batch = bft::pbft::check_commit_certificate(block.certificate, replicas, quorum);
    if (!batch) return Error{"bad_block", "block " + std::to_string(due) + ": " + batch.error().message};
    if (batch->seq != due)
        return Error{"bad_block", "block " + std::to_string(due) + ": a certificate for seq " +
                                      std::to_string(batch->seq)};
    // Consensus checked every client signature before it ordered the batch (2f+1 committed it,
    // so at least f+1 honest replicas did): executed as the replica executes what it orders.
    return ledger.apply_block(due, batch->view, batch->requests, ledger::Verify::kTrusted, block.certificate);
}

bft::CertificateOf certificates_in(const ledger::State& ledger) {
    return [&ledger](uint64_t seq) {
        auto block = ledger.certified_block(seq);
        return block ? std::move(block->certificate) : std::string{};
    };
}

}  // namespace tally::node
