// The names of the kinds of misbehaviour. See misbehaviour.h.
#include "bft/misbehaviour.h"

namespace tally::bft {

std::string_view misbehaviour_name(Misbehaviour kind) {
    switch (kind) {
        case Misbehaviour::kMalformed: return "malformed";
        case Misbehaviour::kBadSender: return "bad_sender";
        case Misbehaviour::kBadRecord: return "bad_record";
        case Misbehaviour::kEquivocation: return "equivocation";
        case Misbehaviour::kBadDigest: return "bad_digest";
        case Misbehaviour::kBadBatch: return "bad_batch";
        case Misbehaviour::kOversizedBatch: return "oversized_batch";
        case Misbehaviour::kBadHeader: return "bad_header";
        case Misbehaviour::kNotPrimary: return "not_primary";
        case Misbehaviour::kPrepareFromPrimary: return "prepare_from_primary";
        case Misbehaviour::kForgedRequest: return "forged_request";
        case Misbehaviour::kBadCheckpoint: return "bad_checkpoint";
        case Misbehaviour::kBadViewChange: return "bad_view_change";
        case Misbehaviour::kBadNewView: return "bad_new_view";
        case Misbehaviour::kNewViewMismatch: return "new_view_mismatch";
        case Misbehaviour::kConflictsDecided: return "conflicts_decided";
        case Misbehaviour::kBadCommittedReply: return "bad_state_reply";
        case Misbehaviour::kBadFetchBatch: return "bad_fetch_batch";
        case Misbehaviour::kUnexpectedType: return "unexpected_type";
        case Misbehaviour::kFutureOverflow: return "future_overflow";
        case Misbehaviour::kFetchFlood: return "fetch_flood";
        case Misbehaviour::kForwardFlood: return "forward_flood";
        case Misbehaviour::kNewViewContradictsDecided: return "new_view_contradicts_decided";
        case Misbehaviour::kRejoinedView: return "rejoined_view";
        case Misbehaviour::kRequestTooLarge: return "request_too_large";
        case Misbehaviour::kRequestOverload: return "request_overload";
        case Misbehaviour::kStateDiverged: return "state_diverged";
        case Misbehaviour::kBadLedgerCertificate: return "bad_ledger_certificate";
        case Misbehaviour::kBadEntry: return "bad_entry";
        case Misbehaviour::kBadMatch: return "bad_match";
        case Misbehaviour::kOversized: return "oversized";
        case Misbehaviour::kTwoLeaders: return "two_leaders";
        case Misbehaviour::kUnsupported: return "unsupported";
        case Misbehaviour::kWrongType: return "wrong_type";
        case Misbehaviour::kLogBehindLedger: return "log_behind_ledger";
        case Misbehaviour::kLedgerBehindSnapshot: return "ledger_behind_snapshot";
        case Misbehaviour::kBadSnapshot: return "bad_snapshot";
        case Misbehaviour::kBadBlocks: return "bad_blocks";
    }
    return "unknown";
}

}  // namespace tally::bft
