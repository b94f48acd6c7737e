// A PBFT commit certificate (pb::CommittedProof: the pre-prepare that carries a batch and
// 2f+1 matching commits) checked against the replicas' keys. Pure: crypto and the message
// definitions only, no engine, so that whoever must judge a committed batch without running
// consensus can use it — the engine (catch-up), the node (blocks fetched from peers after a
// state transfer) and `tally audit` (a data folder, offline).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bft/pbft/pbft.pb.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/result.h"

namespace tally::bft::pbft {

// What a valid certificate proves: `requests` were committed at `seq` in `view`.
struct CertifiedBatch {
    uint64_t view = 0;
    uint64_t seq = 0;
    crypto::Hash digest{};
    std::vector<std::string> requests;
};

// Checks, in this order (everything that costs no signature first): exactly `quorum` commit
// envelopes, each of type commit from a distinct replica in `replicas` (by their headers);
// the pre-prepare's canonical body, its header's signature (messages.h; its envelope's for one
// from before headers), that its sender is the primary of its view
// (view mod n) and that its digest is the batch's; then each commit's signature and that it
// names the pre-prepare's (view, seq, digest). Errors ("bad_certificate") say which part
// failed and, where one replica's envelope did, which replica.
Result<CertifiedBatch> check_commit_certificate(const pb::CommittedProof& proof,
                                                const std::vector<crypto::PublicKey>& replicas,
                                                size_t quorum);
// The same, from the certificate's bytes (a serialized CommittedProof).
Result<CertifiedBatch> check_commit_certificate(std::string_view proof_bytes,
                                                const std::vector<crypto::PublicKey>& replicas,
                                                size_t quorum);

}  // namespace tally::bft::pbft
