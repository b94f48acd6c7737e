// The names of the kinds of misbehaviour are what users see (`tally net status`, its JSON,
// logs, tally_misbehaviour_detected_total{kind}): they must stay as they were when the kinds
// were strings.
#include <gtest/gtest.h>

#include <set>
#include <string_view>
#include <utility>

#include "bft/misbehaviour.h"

namespace tally::bft {
namespace {

TEST(Misbehaviour, EachKindKeepsTheNameUsersSaw) {
    const std::pair<Misbehaviour, std::string_view> names[] = {
        {Misbehaviour::kMalformed, "malformed"},
        {Misbehaviour::kBadSender, "bad_sender"},
        {Misbehaviour::kBadRecord, "bad_record"},
        {Misbehaviour::kEquivocation, "equivocation"},
        {Misbehaviour::kBadDigest, "bad_digest"},
        {Misbehaviour::kBadBatch, "bad_batch"},
        {Misbehaviour::kOversizedBatch, "oversized_batch"},
        {Misbehaviour::kBadHeader, "bad_header"},
        {Misbehaviour::kNotPrimary, "not_primary"},
        {Misbehaviour::kPrepareFromPrimary, "prepare_from_primary"},
        {Misbehaviour::kForgedRequest, "forged_request"},
        {Misbehaviour::kBadCheckpoint, "bad_checkpoint"},
        {Misbehaviour::kBadViewChange, "bad_view_change"},
        {Misbehaviour::kBadNewView, "bad_new_view"},
        {Misbehaviour::kNewViewMismatch, "new_view_mismatch"},
        {Misbehaviour::kConflictsDecided, "conflicts_decided"},
        {Misbehaviour::kBadCommittedReply, "bad_state_reply"},
        {Misbehaviour::kBadFetchBatch, "bad_fetch_batch"},
        {Misbehaviour::kUnexpectedType, "unexpected_type"},
        {Misbehaviour::kFutureOverflow, "future_overflow"},
        {Misbehaviour::kFetchFlood, "fetch_flood"},
        {Misbehaviour::kForwardFlood, "forward_flood"},
        {Misbehaviour::kNewViewContradictsDecided, "new_view_contradicts_decided"},
        {Misbehaviour::kRejoinedView, "rejoined_view"},
        {Misbehaviour::kRequestTooLarge, "request_too_large"},
        {Misbehaviour::kRequestOverload, "request_overload"},
        {Misbehaviour::kStateDiverged, "state_diverged"},
        {Misbehaviour::kBadLedgerCertificate, "bad_ledger_certificate"},
        {Misbehaviour::kBadEntry, "bad_entry"},
        {Misbehaviour::kBadMatch, "bad_match"},
        {Misbehaviour::kOversized, "oversized"},
        {Misbehaviour::kTwoLeaders, "two_leaders"},
        {Misbehaviour::kUnsupported, "unsupported"},
        {Misbehaviour::kWrongType, "wrong_type"},
        {Misbehaviour::kLogBehindLedger, "log_behind_ledger"},
        {Misbehaviour::kLedgerBehindSnapshot, "ledger_behind_snapshot"},
        {Misbehaviour::kBadSnapshot, "bad_snapshot"},
        {Misbehaviour::kBadBlocks, "bad_blocks"},
    };
    std::set<std::string_view> seen;
    for (const auto& [kind, name] : names) {
        EXPECT_EQ(misbehaviour_name(kind), name);
        EXPECT_TRUE(seen.insert(name).second) << name << " names two kinds";
    }
}

}  // namespace
}  // namespace tally::bft
