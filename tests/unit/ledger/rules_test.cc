// The rules of a transfer alone (ledger/rules.h), with no ledger: each result, the order of the
// checks, what each result does to the two accounts, and which results are recorded.
#include "ledger/rules.h"

#include <gtest/gtest.h>

#include <limits>
#include <vector>

namespace tally::ledger {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

crypto::PublicKey account_key(uint8_t n) {
    crypto::PublicKey key{};
    key.fill(n);
    return key;
}

const crypto::PublicKey kAlice = account_key(1);
const crypto::PublicKey kBob = account_key(2);

Tx transfer(const crypto::PublicKey& from, const crypto::PublicKey& to, uint64_t amount, uint64_t nonce) {
    Tx tx;
    tx.kind = TxKind::kTransfer;
    tx.sender = from;
    tx.to = to;
    tx.amount = amount;
    tx.nonce = nonce;
    return tx;
}

// Nothing changes: no account, no nonce.
void expect_untouched(const TransferEffect& effect) {
    EXPECT_FALSE(effect.sender.has_value());
    EXPECT_FALSE(effect.receiver.has_value());
}

// The nonce is consumed and no money moves.
void expect_nonce_only(const TransferEffect& effect, const Account& sender, uint64_t nonce) {
    ASSERT_TRUE(effect.sender.has_value());
    EXPECT_EQ(*effect.sender, (Account{sender.key, sender.balance, nonce}));
    EXPECT_FALSE(effect.receiver.has_value());
    EXPECT_TRUE(effect.recorded);
    EXPECT_EQ(effect.nonce, 0u);
}

TEST(TransferRules, OkMovesTheAmountAndConsumesTheNonce) {
    const Account alice{kAlice, 100, 4};
    const Account bob{kBob, 7, 9};
    const TransferEffect effect = decide_transfer(transfer(kAlice, kBob, 30, 5), &alice, &bob);
    EXPECT_EQ(effect.code, ResultCode::kOk);
    ASSERT_TRUE(effect.sender.has_value());
    ASSERT_TRUE(effect.receiver.has_value());
    EXPECT_EQ(*effect.sender, (Account{kAlice, 70, 5}));
    EXPECT_EQ(*effect.receiver, (Account{kBob, 37, 9}));  // the receiver's nonce is its own
    EXPECT_TRUE(effect.recorded);
    EXPECT_EQ(effect.nonce, 0u);
    EXPECT_EQ(effect.sender->balance + effect.receiver->balance, alice.balance + bob.balance);
}

TEST(TransferRules, OkToAKeyWithoutAnAccountCreatesIt) {
    const Account alice{kAlice, 100, 0};
    const TransferEffect effect = decide_transfer(transfer(kAlice, kBob, 100, 1), &alice, nullptr);
    EXPECT_EQ(effect.code, ResultCode::kOk);
    ASSERT_TRUE(effect.sender.has_value());
    ASSERT_TRUE(effect.receiver.has_value());
    EXPECT_EQ(*effect.sender, (Account{kAlice, 0, 1}));  // the whole balance may go
    EXPECT_EQ(*effect.receiver, (Account{kBob, 100, 0}));
}

TEST(TransferRules, UnknownSenderChangesNothingAndIsNotRecorded) {
    const Account bob{kBob, 5, 0};
    const TransferEffect effect = decide_transfer(transfer(kAlice, kBob, 1, 1), nullptr, &bob);
    EXPECT_EQ(effect.code, ResultCode::kUnknownSender);
    expect_untouched(effect);
    EXPECT_FALSE(effect.recorded);  // "not yet": the account may be credited later
}

TEST(TransferRules, NonceTooLowChangesNothingAndIsRecorded) {
    const Account alice{kAlice, 100, 5};
    for (uint64_t nonce : {uint64_t{0}, uint64_t{4}, uint64_t{5}}) {
        const TransferEffect effect = decide_transfer(transfer(kAlice, kBob, 1, nonce), &alice, nullptr);
        EXPECT_EQ(effect.code, ResultCode::kNonceTooLow) << nonce;
        expect_untouched(effect);
        EXPECT_TRUE(effect.recorded);
    }
}

TEST(TransferRules, NonceTooHighReportsTheSendersNonceAndIsNotRecorded) {
    const Account alice{kAlice, 100, 5};
    for (uint64_t nonce : {uint64_t{7}, kMax}) {
        const TransferEffect effect = decide_transfer(transfer(kAlice, kBob, 1, nonce), &alice, nullptr);
        EXPECT_EQ(effect.code, ResultCode::kNonceTooHigh) << nonce;
        EXPECT_EQ(effect.nonce, 5u);
        expect_untouched(effect);
        EXPECT_FALSE(effect.recorded);  // "not yet": nonce 6 may apply first
    }
}

TEST(TransferRules, ASenderAtTheLastNonceCanSendNothingMore) {
    const Account alice{kAlice, 100, kMax};
    const TransferEffect effect = decide_transfer(transfer(kAlice, kBob, 1, kMax), &alice, nullptr);
    EXPECT_EQ(effect.code, ResultCode::kNonceTooLow);
    expect_untouched(effect);
}

TEST(TransferRules, ZeroAmountConsumesTheNonceOnly) {
    const Account alice{kAlice, 100, 0};
    const TransferEffect effect = decide_transfer(transfer(kAlice, kBob, 0, 1), &alice, nullptr);
    EXPECT_EQ(effect.code, ResultCode::kZeroAmount);
    expect_nonce_only(effect, alice, 1);
}

TEST(TransferRules, SelfTransferConsumesTheNonceOnly) {
    const Account alice{kAlice, 100, 2};
    const TransferEffect effect = decide_transfer(transfer(kAlice, kAlice, 10, 3), &alice, &alice);
    EXPECT_EQ(effect.code, ResultCode::kSelfTransfer);
    expect_nonce_only(effect, alice, 3);
}

TEST(TransferRules, InsufficientFundsConsumesTheNonceOnly) {
    const Account alice{kAlice, 100, 0};
    const Account bob{kBob, 0, 0};
    const TransferEffect effect = decide_transfer(transfer(kAlice, kBob, 101, 1), &alice, &bob);
    EXPECT_EQ(effect.code, ResultCode::kInsufficientFunds);
    expect_nonce_only(effect, alice, 1);
}

TEST(TransferRules, OverflowOfTheReceiverConsumesTheNonceOnly) {
    const Account alice{kAlice, 100, 0};
    const Account bob{kBob, kMax - 9, 0};
    const TransferEffect effect = decide_transfer(transfer(kAlice, kBob, 10, 1), &alice, &bob);
    EXPECT_EQ(effect.code, ResultCode::kOverflow);
    expect_nonce_only(effect, alice, 1);

    // One less fills the receiver exactly.
    const TransferEffect full = decide_transfer(transfer(kAlice, kBob, 9, 1), &alice, &bob);
    EXPECT_EQ(full.code, ResultCode::kOk);
    ASSERT_TRUE(full.receiver.has_value());
    EXPECT_EQ(full.receiver->balance, kMax);
}

// tx.h's order: unknown sender, nonce too low, nonce too high, zero amount, self transfer,
// insufficient funds, overflow. The first that fails is the result.
TEST(TransferRules, TheFirstFailingCheckIsTheResult) {
    const Account poor{kAlice, 1, 5};
    const Account full{kBob, kMax, 0};
    // Everything wrong at once: no sender.
    EXPECT_EQ(decide_transfer(transfer(kAlice, kAlice, 0, 9), nullptr, nullptr).code,
              ResultCode::kUnknownSender);
    // A used nonce before a zero amount to oneself.
    EXPECT_EQ(decide_transfer(transfer(kAlice, kAlice, 0, 5), &poor, &poor).code,
              ResultCode::kNonceTooLow);
    // A gap before a zero amount to oneself.
    EXPECT_EQ(decide_transfer(transfer(kAlice, kAlice, 0, 7), &poor, &poor).code,
              ResultCode::kNonceTooHigh);
    // A zero amount before sending to oneself.
    EXPECT_EQ(decide_transfer(transfer(kAlice, kAlice, 0, 6), &poor, &poor).code,
              ResultCode::kZeroAmount);
    // Sending to oneself before too little money.
    EXPECT_EQ(decide_transfer(transfer(kAlice, kAlice, 2, 6), &poor, &poor).code,
              ResultCode::kSelfTransfer);
    // Too little money before the receiver's overflow.
    EXPECT_EQ(decide_transfer(transfer(kAlice, kBob, 2, 6), &poor, &full).code,
              ResultCode::kInsufficientFunds);
    EXPECT_EQ(decide_transfer(transfer(kAlice, kBob, 1, 6), &poor, &full).code, ResultCode::kOverflow);
}

// What every result does agrees with tx.h's consumes_nonce(): the sender changes exactly when
// the nonce is consumed, the receiver only on success, and money is neither made nor lost.
TEST(TransferRules, EveryResultAgreesWithConsumesNonceAndConservesMoney) {
    const Account alice{kAlice, 50, 3};
    const Account bob{kBob, kMax - 20, 1};
    const std::vector<Tx> cases = {
        transfer(kAlice, kBob, 10, 4),  transfer(kAlice, kBob, 10, 3),  transfer(kAlice, kBob, 10, 5),
        transfer(kAlice, kBob, 0, 4),   transfer(kAlice, kAlice, 10, 4), transfer(kAlice, kBob, 51, 4),
        transfer(kAlice, kBob, 30, 4),  transfer(kBob, kAlice, 1, 2),
    };
    for (const Tx& tx : cases) {
        const Account* sender = tx.sender == kAlice ? &alice : nullptr;
        const Account* receiver = tx.to == kAlice ? &alice : &bob;
        const TransferEffect effect = decide_transfer(tx, sender, receiver);
        const std::string label(result_name(effect.code));
        EXPECT_EQ(effect.sender.has_value(), consumes_nonce(effect.code)) << label;
        EXPECT_EQ(effect.receiver.has_value(), effect.code == ResultCode::kOk) << label;
        if (effect.sender) {
            EXPECT_EQ(effect.sender->nonce, tx.nonce) << label;
            const uint64_t before = alice.balance + (effect.receiver ? bob.balance : 0);
            const uint64_t after = effect.sender->balance + (effect.receiver ? effect.receiver->balance : 0);
            EXPECT_EQ(after, before) << label;
        }
    }
}

}  // namespace
}  // namespace tally::ledger
