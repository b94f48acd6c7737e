// The rules of a transfer (rules.h): the checks in tx.h's order, then the effect.
#include "ledger/rules.h"

#include <limits>

namespace tally::ledger {

TransferEffect decide_transfer(const Tx& tx, const Account* sender, const Account* receiver) {
    TransferEffect effect;
    if (sender == nullptr) {
        effect.code = ResultCode::kUnknownSender;
    } else if (tx.nonce <= sender->nonce) {
        effect.code = ResultCode::kNonceTooLow;
    } else if (tx.nonce - sender->nonce > 1) {
        effect.code = ResultCode::kNonceTooHigh;
        effect.nonce = sender->nonce;
    } else {
        const uint64_t to_balance = receiver == nullptr ? 0 : receiver->balance;
        if (tx.amount == 0)
            effect.code = ResultCode::kZeroAmount;
        else if (tx.to == tx.sender)
            effect.code = ResultCode::kSelfTransfer;
        else if (sender->balance < tx.amount)
            effect.code = ResultCode::kInsufficientFunds;
        else if (to_balance > std::numeric_limits<uint64_t>::max() - tx.amount)
            effect.code = ResultCode::kOverflow;

        // Past the nonce checks the nonce is consumed, whatever the result; money moves only
        // on success (and then the receiver is not the sender).
        Account after = *sender;
        after.nonce = tx.nonce;
        if (effect.code == ResultCode::kOk) {
            after.balance -= tx.amount;
            effect.receiver = Account{tx.to, to_balance + tx.amount,
                                      receiver == nullptr ? 0 : receiver->nonce};
        }
        effect.sender = after;
    }
    effect.recorded =
        effect.code != ResultCode::kUnknownSender && effect.code != ResultCode::kNonceTooHigh;
    return effect;
}

}  // namespace tally::ledger
