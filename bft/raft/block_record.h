// What a Raft replica keeps with each block where PBFT keeps a commit certificate
// (bft::Committed::certificate): the log entry it executed, index, term and requests. Raft's
// crash-fault model has no proof of agreement to keep, so this proves nothing about the other
// replicas; it lets `tally audit` replay a Raft ledger from genesis and check every block's
// transaction root, client signatures and state digest, as it does a PBFT one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/result.h"

namespace tally::bft::raft {

std::string encode_block_record(uint64_t index, uint64_t term, const std::vector<std::string>& requests);

// The requests of the record kept with block `seq`. Errors: "bad_record" (it does not decode,
// or it is the record of another index).
Result<std::vector<std::string>> block_record_requests(uint64_t seq, std::string_view record);

}  // namespace tally::bft::raft
