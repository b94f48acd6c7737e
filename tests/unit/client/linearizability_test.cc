// The linearizability checker on hand-made histories whose verdict is known.
#include "client/linearizability.h"

#include <gtest/gtest.h>

namespace tally::client {
namespace {

using ledger::ResultCode;

crypto::PublicKey account(uint8_t id) {
    crypto::PublicKey k{};
    k[0] = id;
    return k;
}
const crypto::PublicKey kAlice = account(1), kBob = account(2);

LedgerModel genesis() { return LedgerModel({{kAlice, 100}, {kBob, 0}}); }

Operation transfer(uint32_t client, uint64_t invoke, std::optional<uint64_t> ret, uint64_t amount,
                   uint64_t nonce, ResultCode result = ResultCode::kOk) {
    Operation op;
    op.client = client;
    op.invoke = invoke;
    op.returned = ret;
    op.transfer = TransferOp{kAlice, kBob, amount, nonce};
    op.result = result;
    return op;
}

Operation read(uint32_t client, uint64_t invoke, std::optional<uint64_t> ret, const crypto::PublicKey& who,
               uint64_t balance, uint64_t nonce = 0) {
    Operation op;
    op.client = client;
    op.invoke = invoke;
    op.returned = ret;
    op.is_transfer = false;
    op.balance.account = who;
    op.read_balance = balance;
    op.read_nonce = nonce;
    return op;
}

TEST(Linearizability, SequentialHistoryThatFollowsTheModelIsLinearizable) {
    // The failed transfer used up nonce 2 (ledger/tx.h), so alice's nonce reads 2.
    std::vector<Operation> h{transfer(0, 1, 2, 30, 1), read(1, 3, 4, kBob, 30), transfer(0, 5, 6, 80, 2, ResultCode::kInsufficientFunds),
                             read(1, 7, 8, kAlice, 70, 2)};
    EXPECT_TRUE(check_linearizable(h, genesis()).linearizable);
}

TEST(Linearizability, AReadConcurrentWithATransferMaySeeEitherValue) {
    std::vector<Operation> before{transfer(0, 1, 10, 30, 1), read(1, 2, 3, kBob, 0)};
    std::vector<Operation> after{transfer(0, 1, 10, 30, 1), read(1, 2, 3, kBob, 30)};
    EXPECT_TRUE(check_linearizable(before, genesis()).linearizable);
    EXPECT_TRUE(check_linearizable(after, genesis()).linearizable);
}

TEST(Linearizability, AStaleReadAfterANewerReadIsNotLinearizable) {
    // The transfer is concurrent with both reads, but once client 1 has seen 30, a later read
    // (invoked after that one returned) that sees 0 goes back in time.
    std::vector<Operation> h{transfer(0, 1, 20, 30, 1), read(1, 2, 3, kBob, 30), read(2, 4, 5, kBob, 0)};
    CheckResult r = check_linearizable(h, genesis());
    EXPECT_FALSE(r.linearizable);
    EXPECT_TRUE(r.complete);
    EXPECT_FALSE(r.explanation.empty());
}

TEST(Linearizability, AReadOfAValueNoOrderProducesIsNotLinearizable) {
    std::vector<Operation> h{transfer(0, 1, 2, 30, 1), read(1, 3, 4, kBob, 60)};
    EXPECT_FALSE(check_linearizable(h, genesis()).linearizable);
}

TEST(Linearizability, ATransferAppliedTwiceIsNotLinearizable) {
    // One transfer of 30 acknowledged, but the balance shows it twice.
    std::vector<Operation> h{transfer(0, 1, 2, 30, 1), read(1, 3, 4, kAlice, 40, 1)};
    EXPECT_FALSE(check_linearizable(h, genesis()).linearizable);
}

TEST(Linearizability, AnUnknownOutcomeMayHaveTakenEffectOrNot) {
    std::vector<Operation> seen{transfer(0, 1, std::nullopt, 30, 1), read(1, 5, 6, kBob, 30)};
    std::vector<Operation> not_seen{transfer(0, 1, std::nullopt, 30, 1), read(1, 5, 6, kBob, 0)};
    EXPECT_TRUE(check_linearizable(seen, genesis()).linearizable);
    EXPECT_TRUE(check_linearizable(not_seen, genesis()).linearizable);
    // ... but not both: once a read saw it, a later read cannot un-see it.
    std::vector<Operation> both{transfer(0, 1, std::nullopt, 30, 1), read(1, 5, 6, kBob, 30), read(1, 7, 8, kBob, 0)};
    EXPECT_FALSE(check_linearizable(both, genesis()).linearizable);
}

TEST(Linearizability, ResultCodesMustMatchTheModel) {
    // Nonce 2 before nonce 1 completed is a gap; the client was told ok: impossible.
    std::vector<Operation> h{transfer(0, 1, 2, 10, 2, ResultCode::kOk)};
    EXPECT_FALSE(check_linearizable(h, genesis()).linearizable);
    std::vector<Operation> h2{transfer(0, 1, 2, 10, 2, ResultCode::kNonceTooHigh)};
    EXPECT_TRUE(check_linearizable(h2, genesis()).linearizable);
}

TEST(Linearizability, ManyConcurrentClientsAreCheckedQuickly) {
    // 8 clients, each alternating overlapping reads of an account no one changes, plus one
    // writer: the memoisation keeps this small.
    std::vector<Operation> h;
    uint64_t nonce = 0;
    for (uint64_t round = 0; round < 20; ++round) {
        uint64_t t = round * 10;
        h.push_back(transfer(0, t, t + 9, 1, ++nonce));
        for (uint32_t c = 1; c <= 8; ++c) h.push_back(read(c, t + 1, t + 8, kAlice, 100 - round - 1, nonce));
    }
    // Reads were all invoked after the transfer started and returned before it did: each may be
    // ordered after it. This history is linearizable.
    EXPECT_TRUE(check_linearizable(h, genesis()).linearizable);
}

}  // namespace
}  // namespace tally::client
