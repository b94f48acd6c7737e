// Transactions (ledger/tx.h): a client's request envelope, decoded strictly. Properties: a
// transaction that decodes has the id tx_id() gives its bytes; one whose signature verifies and
// whose sender is a key we hold is exactly what make_transfer / make_balance_query /
// make_tx_query make of its fields (decode → encode gives the same bytes).
#include <cstddef>
#include <cstdint>

#include "ledger/tx.h"
#include "tests/fuzz/fuzz_common.h"

namespace {
const std::vector<tally::crypto::KeyPair>& client_keys() {
    static const std::vector<tally::crypto::KeyPair> keys = [] {
        std::vector<tally::crypto::KeyPair> k;
        for (uint32_t c = 0; c < 4; ++c) k.push_back(tally::fuzz::key_of(100 + c));
        return k;
    }();
    return keys;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace tally;
    const std::string_view bytes = fuzz::as_view(data, size);
    const crypto::Hash id = ledger::tx_id(bytes);
    auto tx = ledger::decode_tx(bytes);
    if (!tx) return 0;
    FUZZ_CHECK(tx->id == id);
    FUZZ_CHECK(tx->envelope == bytes);
    if (!ledger::verify_tx(*tx)) return 0;
    for (const auto& key : client_keys()) {
        if (key.public_key() != tx->sender) continue;
        std::string again;
        switch (tx->kind) {
            case ledger::TxKind::kTransfer:
                again = ledger::make_transfer(key, tx->to, tx->amount, tx->nonce);
                break;
            case ledger::TxKind::kBalanceQuery:
                again = ledger::make_balance_query(key, tx->account, tx->nonce);
                break;
            case ledger::TxKind::kTxQuery:
                again = ledger::make_tx_query(key, tx->queried_tx, tx->nonce);
                break;
        }
        FUZZ_CHECK(again == bytes);
    }
    return 0;
}
