// Admission: only senders with an account, with nonces in a window above the account's, and
// within the per-sender, per-connection and per-replica bounds, get into the ordered path.
#include "node/admission.h"

#include <gtest/gtest.h>

namespace tally::node {
namespace {

AdmissionInput transfer(uint64_t nonce, std::optional<uint64_t> account_nonce) {
    AdmissionInput in;
    in.nonce = nonce;
    if (account_nonce) in.sender = ledger::Account{{}, 100, *account_nonce};
    return in;
}

TEST(AdmissionTest, ATransferFromAKeyWithoutAnAccountIsRefusedAsUnknownSender) {
    EXPECT_EQ(admit(transfer(1, std::nullopt), {}), Refusal::kUnknownSender);
    EXPECT_EQ(refusal_result(Refusal::kUnknownSender), ledger::ResultCode::kUnknownSender);
}

TEST(AdmissionTest, ANonceAlreadyUsedIsRefusedAsTooLow) {
    EXPECT_EQ(admit(transfer(7, 7), {}), Refusal::kNonceTooLow);
    EXPECT_EQ(admit(transfer(3, 7), {}), Refusal::kNonceTooLow);
    EXPECT_EQ(admit(transfer(8, 7), {}), Refusal::kNone);
}

TEST(AdmissionTest, ANonceBeyondTheWindowIsRefusedAsTooHigh) {
    AdmissionLimits limits;
    limits.nonce_window = 4;
    EXPECT_EQ(admit(transfer(11, 7), limits), Refusal::kNone);
    EXPECT_EQ(admit(transfer(12, 7), limits), Refusal::kNonceTooHigh);
    EXPECT_EQ(admit(transfer(UINT64_MAX, 7), limits), Refusal::kNonceTooHigh);
}

TEST(AdmissionTest, ReplayedBytesThatExecutedAsTooHighAreRefusedUntilTheNonceMoves) {
    auto in = transfer(9, 7);
    in.not_yet_at_nonce = 7;  // executed as nonce_too_high with the account at nonce 7
    EXPECT_EQ(admit(in, {}), Refusal::kNonceTooHigh);
    in.sender->nonce = 8;  // nonce 8 applied since: the copy may apply now
    EXPECT_EQ(admit(in, {}), Refusal::kNone);
}

TEST(AdmissionTest, ASenderAtItsCapIsBusyAndOthersAreNot) {
    AdmissionLimits limits;
    auto in = transfer(2, 1);
    in.sender_pending = limits.pending_per_sender_max;
    EXPECT_EQ(admit(in, limits), Refusal::kSenderBusy);
    EXPECT_EQ(refusal_result(Refusal::kSenderBusy), ledger::ResultCode::kBusy);
    in.sender_pending = limits.pending_per_sender_max - 1;
    EXPECT_EQ(admit(in, limits), Refusal::kNone);
}

TEST(AdmissionTest, AConnectionAtItsCapIsBusyForTransfersAndQueries) {
    AdmissionLimits limits;
    auto in = transfer(2, 1);
    in.connection_pending = limits.pending_per_connection_max;
    EXPECT_EQ(admit(in, limits), Refusal::kConnectionBusy);
    AdmissionInput query;
    query.query = true;
    query.connection_pending = limits.pending_per_connection_max;
    EXPECT_EQ(admit(query, limits), Refusal::kConnectionBusy);
}

TEST(AdmissionTest, AQueryNeedsNoAccountButQueriesAreBoundedInAll) {
    AdmissionLimits limits;
    AdmissionInput query;
    query.query = true;
    query.nonce = 1;
    EXPECT_EQ(admit(query, limits), Refusal::kNone);
    query.queries_pending = limits.queries_pending_max;
    EXPECT_EQ(admit(query, limits), Refusal::kQueriesBusy);
}

TEST(AdmissionTest, AFullReplicaIsOverloaded) {
    auto in = transfer(2, 1);
    in.replica_full = true;
    EXPECT_EQ(admit(in, {}), Refusal::kOverloaded);
    EXPECT_EQ(refusal_name(Refusal::kOverloaded), "overloaded");
}

}  // namespace
}  // namespace tally::node
