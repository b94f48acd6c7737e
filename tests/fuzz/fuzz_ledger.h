// The ledger a snapshot is cut from, for fuzz_snapshot and the corpus generator alike: four
// client accounts (keys 100..103 of fuzz_common.h) and a few blocks of transfers among them,
// some that fail, so the snapshot carries accounts, nonces and transaction records.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ledger/state.h"
#include "ledger/tx.h"
#include "tests/fuzz/fuzz_common.h"

namespace tally::fuzz {

inline ledger::Genesis snapshot_genesis() {
    ledger::Genesis g;
    for (uint32_t c = 0; c < 4; ++c) g.accounts.push_back({key_of(100 + c).public_key(), 1000, 0});
    return g;
}

inline std::unique_ptr<ledger::State> open_or_die(const ledger::Genesis& genesis) {
    auto state = ledger::State::open(":memory:", genesis);
    if (!state) {
        std::fprintf(stderr, "cannot open a ledger: %s\n", state.error().message.c_str());
        std::abort();
    }
    return std::move(state).value();
}

// Six blocks; the snapshot is taken after the last (State::snapshot_point()).
inline std::unique_ptr<ledger::State> snapshot_source() {
    auto state = open_or_die(snapshot_genesis());
    std::vector<uint64_t> nonce(4, 0);
    for (uint64_t seq = 1; seq <= 6; ++seq) {
        std::vector<std::string> txs;
        for (uint32_t c = 0; c < 4; ++c) {
            const uint32_t to = (c + static_cast<uint32_t>(seq)) % 4;
            const uint64_t amount = seq == 3 && c == 1 ? 5000 : 10 * seq + c;  // one overdraws
            txs.push_back(ledger::make_transfer(key_of(100 + c), key_of(100 + to).public_key(),
                                                amount, ++nonce[c]));
        }
        if (!state->apply_block(seq, 0, txs)) std::abort();
    }
    return state;
}

// Pieces this small give a snapshot of several.
inline constexpr size_t kSnapshotChunkBytes = 300;

}  // namespace tally::fuzz
