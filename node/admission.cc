// Admission: the rules a client request passes before it is ordered (admission.h).
#include "node/admission.h"

namespace tally::node {

std::string_view refusal_name(Refusal refusal) {
    switch (refusal) {
        case Refusal::kNone: return "admitted";
        case Refusal::kUnknownSender: return "unknown_sender";
        case Refusal::kNonceTooLow: return "nonce_too_low";
        case Refusal::kNonceTooHigh: return "nonce_too_high";
        case Refusal::kSenderBusy: return "sender_busy";
        case Refusal::kConnectionBusy: return "connection_busy";
        case Refusal::kQueriesBusy: return "queries_busy";
        case Refusal::kOverloaded: return "overloaded";
    }
    return "refused";
}

ledger::ResultCode refusal_result(Refusal refusal) {
    switch (refusal) {
        case Refusal::kUnknownSender: return ledger::ResultCode::kUnknownSender;
        case Refusal::kNonceTooLow: return ledger::ResultCode::kNonceTooLow;
        case Refusal::kNonceTooHigh: return ledger::ResultCode::kNonceTooHigh;
        default: return ledger::ResultCode::kBusy;
    }
}

Refusal admit(const AdmissionInput& in, const AdmissionLimits& limits) {
    if (!in.query) {
        if (!in.sender) return Refusal::kUnknownSender;
        const uint64_t last = in.sender->nonce;
        if (in.nonce <= last) return Refusal::kNonceTooLow;
        if (in.nonce - last > limits.nonce_window) return Refusal::kNonceTooHigh;
        if (in.not_yet_at_nonce && *in.not_yet_at_nonce == last) return Refusal::kNonceTooHigh;
        if (in.sender_pending >= limits.pending_per_sender_max) return Refusal::kSenderBusy;
    } else if (in.queries_pending >= limits.queries_pending_max) {
        return Refusal::kQueriesBusy;
    }
    if (in.connection_pending >= limits.pending_per_connection_max) return Refusal::kConnectionBusy;
    if (in.replica_full) return Refusal::kOverloaded;
    return Refusal::kNone;
}

}  // namespace tally::node
