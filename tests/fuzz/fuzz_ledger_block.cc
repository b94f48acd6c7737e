// A batch of transactions applied to the ledger (ledger::State::apply_block, signatures
// checked: the ledger trusts nothing in a batch) and each answered as a query (State::query).
// The ledger is a fresh in-memory one with four funded accounts (fuzz_ledger.h) for every input
// (an input replays alone); each script record (fuzz_common.h) is a transaction of the block.
// Properties: one outcome per transaction; money is conserved; the block is the next one and
// its header is the ledger's last; a transaction that moved money has result ok and is then
// found by id with the same result.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_common.h"
#include "tests/fuzz/fuzz_ledger.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace tally;
    auto state = fuzz::open_or_die(fuzz::snapshot_genesis());
    const uint64_t total = state->total_balance();

    std::vector<std::string> txs;
    fuzz::Script script(fuzz::as_view(data, size));
    while (auto r = script.next())
        if (txs.size() < 64) txs.emplace_back(r->body);
    for (const auto& tx : txs) (void)state->query(tx);

    const uint64_t seq = state->last_seq() + 1;
    auto block = state->apply_block(seq, 0, txs);
    FUZZ_CHECK(block.ok());
    FUZZ_CHECK(block->outcomes.size() == txs.size());
    FUZZ_CHECK(block->header.seq == seq && state->last_seq() == seq);
    FUZZ_CHECK(state->last_block().hash() == block->header.hash());
    FUZZ_CHECK(state->total_balance() == total);
    for (size_t i = 0; i < txs.size(); ++i) {
        const auto& o = block->outcomes[i];
        FUZZ_CHECK(o.tx_id == ledger::tx_id(txs[i]));
        if (o.code == ledger::ResultCode::kOk && !o.duplicate && !o.query) {
            auto recorded = state->transaction(o.tx_id);
            FUZZ_CHECK(recorded.has_value() && recorded->code == ledger::ResultCode::kOk);
        }
    }
    return 0;
}
