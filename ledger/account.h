// An account and the genesis that funds the first ones: plain values, no storage. Apart from
// ledger/state.h so that network.json (node/api) and the client can name them without linking
// the SQLite ledger.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "crypto/hash.h"
#include "crypto/keys.h"

namespace tally::ledger {

struct Account {
    crypto::PublicKey key{};
    uint64_t balance = 0;
    uint64_t nonce = 0;  // the last applied nonce; the next transfer must carry nonce + 1
    bool operator==(const Account&) const = default;
};

// Ballast: accounts that only weigh the ledger down, for measuring it at scale (`tally net up
// --ballast N`: does a block cost more in a ledger of a million accounts?). Account i, for i in
// [0, accounts), holds `balance` under the key SHA-256("tally-ballast" || i as 8 bytes
// big-endian): a hash, whose secret key nobody holds, so a ballast account can be paid but
// never spend. network.json describes them in two numbers instead of listing them.
struct Ballast {
    uint64_t accounts = 0;
    uint64_t balance = 1;
};

inline crypto::PublicKey ballast_key(uint64_t i) {
    std::string input = "tally-ballast";
    for (int shift = 56; shift >= 0; shift -= 8) input.push_back(static_cast<char>((i >> shift) & 0xff));
    return crypto::sha256(input);  // a PublicKey and a Hash are both 32 bytes
}

struct Genesis {
    std::vector<Account> accounts;  // nonce 0
    Ballast ballast;                // added to `accounts` when a ledger is made
};

}  // namespace tally::ledger
