// `tally audit`: checks one replica's ledger file offline, block by block, from genesis to its
// last block — what a replica holds is the whole chain, and every block of it is the one the
// network committed:
//   - the chain: a block at every height 0..last_seq (a gap is an error), each block's stored
//     hash matching its fields, and each block's prev_hash the hash of the block before it;
//   - block 0: the genesis of network.json;
//   - each block's commit certificate, checked by the caller's `check_certificate` (the
//     consensus protocol's rule, against the replicas' keys): what it proves committed at the
//     block's seq is its batch, and the batch's transactions hash to the block's tx_root
//     (and number tx_count);
//   - each block's state digest, by replaying every certified batch from genesis in a private
//     in-memory ledger (so at every checkpoint too), and the stored history digest where the
//     block has one;
//   - the last block against the file's own accounts and transaction records.
// It opens the file read-only; a replica may be running on it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/result.h"
#include "ledger/state.h"

namespace tally::ledger {

// The batch that `certificate` proves committed at `seq`, or an Error saying why not.
using CertificateCheck =
    std::function<Result<std::vector<std::string>>(uint64_t seq, std::string_view certificate)>;

struct AuditOptions {
    Genesis genesis;                   // network.json's
    uint64_t checkpoint_interval = 0;  // K, to count the checkpoints among the blocks (0: none)
    CertificateCheck check_certificate;
};

struct AuditReport {
    uint64_t last_seq = 0;
    uint64_t blocks = 0;           // genesis included
    uint64_t transactions = 0;     // in the certified batches
    uint64_t certificates = 0;     // valid, one per block but genesis
    uint64_t checkpoints = 0;      // blocks at a multiple of K, their state digests matched
    uint64_t histories = 0;        // stored history digests matched (blocks fetched by
                                   // backfill have none)
    uint64_t accounts = 0;         // in the file, matching the replay at the last block
    uint64_t records = 0;          // transaction records in the file
};

// Errors: "audit_failed" (the message names the first bad block and what is wrong with it),
// "io" or "corrupt" (the file cannot be read as a Tally ledger).
Result<AuditReport> audit_ledger(const std::string& path, const AuditOptions& options);

}  // namespace tally::ledger
