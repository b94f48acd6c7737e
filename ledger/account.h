// An account and the genesis that funds the first ones: plain values, no storage. Apart from
// ledger/state.h so that network.json (node/api) and the client can name them without linking
// the SQLite ledger.
#pragma once

#include <cstdint>
#include <vector>

#include "crypto/keys.h"

namespace tally::ledger {

struct Account {
    crypto::PublicKey key{};
    uint64_t balance = 0;
    uint64_t nonce = 0;  // the last applied nonce; the next transfer must carry nonce + 1
};

struct Genesis {
    std::vector<Account> accounts;  // nonce 0
};

}  // namespace tally::ledger
