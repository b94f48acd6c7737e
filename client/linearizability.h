// A black-box linearizability checker for histories of ledger operations: Wing and Gong's
// search with Lowe's memoisation (the approach of Porcupine), against a sequential model of
// the ledger (balances and nonces, the result codes of ledger/tx.h).
//
// A history lists client operations with their invoke and return times and what the client
// saw. An operation whose outcome is unknown (the client timed out) may have taken effect at
// any point after its invocation, or never: it is given no return time and any result.
// The history is linearizable when some total order of the operations respects real time
// (an operation that returned before another was invoked comes first) and yields, in the
// model, exactly what every client saw.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "crypto/keys.h"
#include "ledger/tx.h"

namespace tally::client {

struct TransferOp {
    crypto::PublicKey from{};
    crypto::PublicKey to{};
    uint64_t amount = 0;
    uint64_t nonce = 0;
};

struct BalanceOp {
    crypto::PublicKey account{};
};

struct Operation {
    uint32_t client = 0;
    uint64_t invoke = 0;
    std::optional<uint64_t> returned;  // nullopt: the outcome is unknown
    bool is_transfer = true;
    TransferOp transfer;
    BalanceOp balance;
    // What the client saw (meaningless when `returned` is empty).
    ledger::ResultCode result = ledger::ResultCode::kOk;
    uint64_t read_balance = 0;  // balance reads
    uint64_t read_nonce = 0;
};

struct CheckResult {
    bool linearizable = false;
    bool complete = true;       // false when the search hit its step bound (no verdict)
    std::string explanation;    // on failure: which operation could not be placed
};

// The ledger's sequential specification: accounts with balances and nonces.
class LedgerModel {
public:
    explicit LedgerModel(std::map<crypto::PublicKey, uint64_t> genesis_balances);

    // Applies `op`; returns whether the model's outcome matches what the client saw
    // (an operation without a return time matches any outcome).
    bool step(const Operation& op);

    bool operator==(const LedgerModel& other) const { return accounts_ == other.accounts_; }
    bool operator<(const LedgerModel& other) const { return accounts_ < other.accounts_; }

private:
    std::map<crypto::PublicKey, std::pair<uint64_t, uint64_t>> accounts_;  // balance, nonce
};

// Checks `history` from `initial`. `max_steps` bounds the search (each step one attempt to
// linearize an operation); beyond it the result is incomplete rather than a false verdict.
CheckResult check_linearizable(const std::vector<Operation>& history, const LedgerModel& initial,
                               uint64_t max_steps = 10'000'000);

}  // namespace tally::client
