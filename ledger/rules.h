// The rules of a transfer (tx.h, next to ResultCode): its result and what it does to the
// sender's and the receiver's accounts, as pure code over their values. No storage: the ledger
// (state.cc) looks the accounts up, answers duplicates, keeps what changed and records the
// result.
#pragma once

#include <cstdint>
#include <optional>

#include "ledger/account.h"
#include "ledger/tx.h"

namespace tally::ledger {

// What a transfer does.
struct TransferEffect {
    ResultCode code = ResultCode::kOk;
    // For kNonceTooHigh, the sender's nonce (the transfer stays "not yet" while the account's
    // nonce stays this); 0 otherwise.
    uint64_t nonce = 0;
    // The accounts after it, for those it changes: the sender whenever it consumes its nonce
    // (consumes_nonce(code)), the receiver (created if it has no account) when it succeeds.
    std::optional<Account> sender;
    std::optional<Account> receiver;
    // Whether the result is final, and so recorded under the transfer's id (tx.h): all but
    // the "not yet" ones, kUnknownSender and kNonceTooHigh.
    bool recorded = false;
};

// `tx`: a transfer, decoded and its signature checked (kMalformed and kBadSignature are
// decided before the rules). `sender`, `receiver`: their accounts as they stand, nullptr for
// none. The checks run in tx.h's order, and the first that fails is the result.
TransferEffect decide_transfer(const Tx& tx, const Account* sender, const Account* receiver);

}  // namespace tally::ledger
