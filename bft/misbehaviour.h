// The kinds of misbehaviour a replica detects (bft::Detected, the node's counts). Compared as
// values; only the status reply, the metrics and the logs turn them into their names, which
// are what `tally net status`, its JSON and tally_misbehaviour_detected_total{kind} show.
#pragma once

#include <string_view>

namespace tally::bft {

enum class Misbehaviour {
    // Any engine: a peer's message that cannot be taken
    kMalformed,
    kBadSender,
    // Any engine, about itself (Detected::from is its own id): a record of its store unread
    kBadRecord,
    // PBFT: a peer's message breaks a rule (bft/pbft)
    kEquivocation,
    kBadDigest,
    kBadBatch,
    kOversizedBatch,
    kBadHeader,
    kNotPrimary,
    kPrepareFromPrimary,
    kForgedRequest,
    kBadCheckpoint,
    kBadViewChange,
    kBadNewView,
    kNewViewMismatch,
    kConflictsDecided,
    kBadCommittedReply,  // (a CommittedReply: the name predates it)
    kBadFetchBatch,
    kUnexpectedType,
    kFutureOverflow,
    // PBFT: a peer asks more than its share
    kFetchFlood,
    kForwardFlood,
    // PBFT: this replica about itself
    kNewViewContradictsDecided,
    kRejoinedView,
    kRequestTooLarge,
    kRequestOverload,
    kStateDiverged,
    kBadLedgerCertificate,
    // Raft (bft/raft): a peer's message breaks a rule
    kBadEntry,
    kBadMatch,
    kOversized,
    kTwoLeaders,
    kUnsupported,
    kWrongType,
    // Raft: this replica about itself
    kLogBehindLedger,
    kLedgerBehindSnapshot,
    // The node (node/replica_*.cc): what a peer served in state transfer or backfill
    kBadSnapshot,
    kBadBlocks,
};

// "equivocation", "bad_digest", ...: the name users see.
std::string_view misbehaviour_name(Misbehaviour kind);

}  // namespace tally::bft
