// The PBFT engine's durable records (bft::PersistOp keys and values) checked before a restart:
// every record must be one the engine writes, and parse. A store is this replica's own, so a
// record that does not is damage (a torn or foreign file, a bug), never a peer's input — and
// skipping it could drop the very record (a view, a prepared certificate) that keeps the
// replica from contradicting what it signed before. The node refuses to start on such a store.
//
// Pure: no I/O; signatures are not checked here (PbftEngine::on_start checks what it uses).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "crypto/result.h"

namespace tally::bft::pbft {

// Ok when every record is a view record (8 bytes of view, then an optional active flag), the
// stable checkpoint (a StableCheckpoint), or a slot record (s | seq | view | 'a' or 'b', a
// PreparedProof; 'c', a CommittedProof; either's pre-prepare a PRE-PREPARE envelope for that
// seq and view, which a 'b' or 'c' record leaves out only when the 'a' record of its seq and
// view holds it: messages.h) at a seq no further than 2L (`watermark_window` L, Config::watermark_window)
// above the stored stable checkpoint (0 without one): the engine's log never holds a slot
// beyond h + 2L, and its stable record is durable before any slot above the old window is, so
// a slot beyond it means the stable record was lost or the file is not this replica's (found by
// fuzzing, tests/fuzz/fuzz_store.cc: the engine started on such a store with its invariant
// "every slot in (h, h + 2L]" broken), and with its 'a' and 'b' records in views no later than
// the view record's (synced before the replica's first vote in a view; found by fuzzing too).
// Error "corrupt" naming the first record that is not, otherwise.
Status check_stored_records(const std::vector<std::pair<std::string, std::string>>& records,
                            uint64_t watermark_window);

}  // namespace tally::bft::pbft
