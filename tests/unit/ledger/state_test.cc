// The ledger state (ledger/state.h): result codes, duplicates, determinism, block order,
// conservation of money, persistence and snapshots.
#include "ledger/state.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <random>
#include <set>

#include "crypto/merkle.h"
#include "ledger/ledger.pb.h"
#include "ledger_test_util.h"

namespace tally::ledger {
namespace {

constexpr size_t kSnapshotChunkBytes = 1 << 20;

using testing::break_signature;
using testing::genesis;
using testing::key;
using testing::open_memory;

std::vector<Account> sorted(std::vector<Account> accounts) {
    std::sort(accounts.begin(), accounts.end(),
              [](const Account& a, const Account& b) { return a.key < b.key; });
    return accounts;
}

bool same_accounts(const std::vector<Account>& a, const std::vector<Account>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (a[i].key != b[i].key || a[i].balance != b[i].balance || a[i].nonce != b[i].nonce)
            return false;
    return true;
}

bool same_header(const BlockHeader& a, const BlockHeader& b) { return a.hash() == b.hash(); }

// Applies one block that must succeed.
AppliedBlock apply_next(State& state, const std::vector<std::string>& txs,
                        Verify verify = Verify::kCheck) {
    auto applied = state.apply_block(state.last_seq() + 1, 0, txs, verify);
    EXPECT_TRUE(applied.ok()) << applied.error().code << ": " << applied.error().message;
    return applied.ok() ? applied.value() : AppliedBlock{};
}

Outcome apply_one(State& state, const std::string& tx) {
    auto block = apply_next(state, {tx});
    return block.outcomes.empty() ? Outcome{} : block.outcomes[0];
}

TEST(Genesis, IsBlockZeroWithTheDigestOfTheGenesisAccounts) {
    Genesis g = genesis(3, 1000);
    auto state = open_memory(g);
    ASSERT_TRUE(state);
    EXPECT_EQ(state->last_seq(), 0u);
    EXPECT_EQ(state->state_digest(),
              combine_digests(digest_accounts(sorted(g.accounts)), crypto::Hash{}));
    BlockHeader block = state->last_block();
    EXPECT_EQ(block.height, 0u);
    EXPECT_EQ(block.prev_hash, crypto::Hash{});
    EXPECT_EQ(block.tx_root, crypto::merkle_root({}));
    EXPECT_EQ(block.tx_count, 0u);
    auto stored = state->block(0);
    ASSERT_TRUE(stored.has_value());
    EXPECT_TRUE(same_header(*stored, block));
    EXPECT_EQ(state->total_balance(), 3000u);
    EXPECT_TRUE(same_accounts(state->accounts(), sorted(g.accounts)));
}

TEST(Genesis, ListingAnAccountTwiceIsRefused) {
    Genesis g = genesis(2, 10);
    g.accounts.push_back(g.accounts[0]);
    auto state = State::open(":memory:", g);
    ASSERT_FALSE(state.ok());
    EXPECT_EQ(state.error().code, "bad_genesis");
}

// Ballast accounts are made when the ledger is: the same ledger as one whose genesis lists
// them, each under its derived key with its balance, and none of them may be listed too.
TEST(Genesis, BallastAccountsMakeTheLedgerTheirListingWouldMake) {
    Genesis described = genesis(3, 1000);
    described.ballast = Ballast{500, 7};
    Genesis listed = genesis(3, 1000);
    for (uint64_t i = 0; i < 500; ++i) listed.accounts.push_back({ballast_key(i), 7, 0});
    auto a = open_memory(described);
    auto b = open_memory(listed);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->last_block().hash(), b->last_block().hash());
    EXPECT_EQ(a->accounts().size(), 503u);
    EXPECT_EQ(a->total_balance(), 3000u + 500u * 7u);
    auto account = a->account(ballast_key(499));
    ASSERT_TRUE(account.has_value());
    EXPECT_EQ(account->balance, 7u);
    EXPECT_FALSE(a->account(ballast_key(500)).has_value());
    EXPECT_NE(ballast_key(0), ballast_key(1));

    described.accounts.push_back({ballast_key(42), 1, 0});
    auto refused = State::open(":memory:", described);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "bad_genesis");
    EXPECT_NE(refused.error().message.find("ballast account 42"), std::string::npos);
}

TEST(BlockHeader, HashCoversEveryFieldButTheView) {
    BlockHeader base;
    base.height = 1;
    base.seq = 1;
    const crypto::Hash h = base.hash();
    auto differs = [&](auto change) {
        BlockHeader copy = base;
        change(copy);
        return copy.hash() != h;
    };
    EXPECT_TRUE(differs([](BlockHeader& b) { b.height = 2; }));
    EXPECT_TRUE(differs([](BlockHeader& b) { b.seq = 2; }));
    // Not the view: replicas may commit one batch in different views.
    EXPECT_FALSE(differs([](BlockHeader& b) { b.view = 1; }));
    EXPECT_TRUE(differs([](BlockHeader& b) { b.prev_hash[31] = 1; }));
    EXPECT_TRUE(differs([](BlockHeader& b) { b.tx_root[0] = 1; }));
    EXPECT_TRUE(differs([](BlockHeader& b) { b.state_digest[5] = 1; }));
    EXPECT_TRUE(differs([](BlockHeader& b) { b.tx_count = 1; }));
}

// Every result code, each produced by a transaction crafted for it; failures move no money.
TEST(ApplyBlock, EveryResultCodeFromACraftedTransaction) {
    auto alice = key(1), bob = key(2), stranger = key(50);
    auto state = open_memory(genesis(2, 100));
    ASSERT_TRUE(state);
    std::set<ResultCode> seen;

    auto expect = [&](const std::string& tx, ResultCode code) {
        const auto before = state->accounts();
        Outcome outcome = apply_one(*state, tx);
        EXPECT_EQ(outcome.code, code) << result_name(outcome.code) << " != " << result_name(code);
        EXPECT_FALSE(outcome.duplicate);
        if (code != ResultCode::kOk) {
            const auto after = state->accounts();
            ASSERT_EQ(after.size(), before.size());
            for (size_t i = 0; i < after.size(); ++i)
                EXPECT_EQ(after[i].balance, before[i].balance) << result_name(code);
        }
        seen.insert(outcome.code);
    };

    expect(make_transfer(alice, bob.public_key(), 10, 1), ResultCode::kOk);
    EXPECT_EQ(state->account(alice.public_key())->balance, 90u);
    EXPECT_EQ(state->account(bob.public_key())->balance, 110u);
    EXPECT_EQ(state->account(alice.public_key())->nonce, 1u);

    expect("not a transaction", ResultCode::kMalformed);
    expect(break_signature(make_transfer(alice, bob.public_key(), 10, 2)),
           ResultCode::kBadSignature);
    expect(make_transfer(stranger, bob.public_key(), 1, 1), ResultCode::kUnknownSender);
    expect(make_transfer(alice, bob.public_key(), 11, 1), ResultCode::kNonceTooLow);
    expect(make_transfer(alice, bob.public_key(), 10, 3), ResultCode::kNonceTooHigh);
    EXPECT_EQ(state->account(alice.public_key())->nonce, 1u);  // those consumed nothing
    expect(make_transfer(alice, bob.public_key(), 0, 2), ResultCode::kZeroAmount);
    expect(make_transfer(alice, alice.public_key(), 5, 3), ResultCode::kSelfTransfer);
    expect(make_transfer(alice, bob.public_key(), 91, 4), ResultCode::kInsufficientFunds);
    EXPECT_EQ(state->account(alice.public_key())->nonce, 4u);  // these consumed theirs
    expect(make_balance_query(alice, stranger.public_key(), 1), ResultCode::kUnknownAccount);
    expect(make_tx_query(alice, crypto::sha256("never applied"), 1), ResultCode::kUnknownTx);

    // Overflow needs a recipient near 2^64: its own ledger.
    Genesis rich = genesis(1, 5);
    rich.accounts.push_back(Account{bob.public_key(), std::numeric_limits<uint64_t>::max(), 0});
    auto other = open_memory(rich);
    ASSERT_TRUE(other);
    Outcome overflow = apply_one(*other, make_transfer(alice, bob.public_key(), 1, 1));
    EXPECT_EQ(overflow.code, ResultCode::kOverflow);
    EXPECT_EQ(other->account(alice.public_key())->balance, 5u);
    EXPECT_EQ(other->account(bob.public_key())->balance, std::numeric_limits<uint64_t>::max());
    seen.insert(overflow.code);

    EXPECT_EQ(seen.size(), 12u) << "every ResultCode was produced";
    EXPECT_EQ(state->total_balance(), 200u);
}

TEST(ApplyBlock, ATransferToANewAccountCreatesIt) {
    auto alice = key(1), newcomer = key(77);
    auto state = open_memory(genesis(1, 100));
    ASSERT_EQ(apply_one(*state, make_transfer(alice, newcomer.public_key(), 30, 1)).code,
              ResultCode::kOk);
    auto created = state->account(newcomer.public_key());
    ASSERT_TRUE(created.has_value());
    EXPECT_EQ(created->balance, 30u);
    EXPECT_EQ(created->nonce, 0u);
    // The new account can spend at once, with nonce 1.
    EXPECT_EQ(apply_one(*state, make_transfer(newcomer, alice.public_key(), 5, 1)).code,
              ResultCode::kOk);
    EXPECT_EQ(state->total_balance(), 100u);
}

TEST(ApplyBlock, AFailedTransferIsRecordedAndItsRetryNeedsTheNextNonce) {
    auto alice = key(1), bob = key(2);
    auto state = open_memory(genesis(2, 100));
    std::string too_much = make_transfer(alice, bob.public_key(), 150, 1);
    Outcome failed = apply_one(*state, too_much);
    EXPECT_EQ(failed.code, ResultCode::kInsufficientFunds);
    auto recorded = state->transaction(failed.tx_id);
    ASSERT_TRUE(recorded.has_value());
    EXPECT_EQ(recorded->code, ResultCode::kInsufficientFunds);
    EXPECT_EQ(recorded->seq, 1u);

    ASSERT_EQ(apply_one(*state, make_transfer(bob, alice.public_key(), 60, 1)).code,
              ResultCode::kOk);
    // The very same bytes again: the recorded failure, though Alice could now pay.
    Outcome again = apply_one(*state, too_much);
    EXPECT_TRUE(again.duplicate);
    EXPECT_EQ(again.code, ResultCode::kInsufficientFunds);
    EXPECT_EQ(again.seq, 1u);
    // Its nonce is spent: a different transfer with it is too late; the retry takes the next.
    EXPECT_EQ(apply_one(*state, make_transfer(alice, bob.public_key(), 149, 1)).code,
              ResultCode::kNonceTooLow);
    EXPECT_EQ(apply_one(*state, make_transfer(alice, bob.public_key(), 150, 2)).code,
              ResultCode::kOk);
    EXPECT_EQ(state->account(alice.public_key())->balance, 10u);
    EXPECT_EQ(state->account(bob.public_key())->balance, 190u);
}

TEST(ApplyBlock, ATransferThatCameTooEarlyIsNotRecordedAndAppliesWhenItsTurnComes) {
    auto alice = key(1), bob = key(2), newcomer = key(60);
    auto state = open_memory(genesis(2, 100));
    std::string second = make_transfer(alice, bob.public_key(), 5, 2);
    std::string first = make_transfer(alice, bob.public_key(), 5, 1);
    auto block = apply_next(*state, {second, first, second});
    ASSERT_EQ(block.outcomes.size(), 3u);
    EXPECT_EQ(block.outcomes[0].code, ResultCode::kNonceTooHigh);
    // The sender's nonce when it came too early (0), not after its block (1): admission refuses
    // a replay of these bytes only while the nonce stays where it was (node/admission.h).
    EXPECT_EQ(block.outcomes[0].nonce, 0u);
    EXPECT_EQ(block.outcomes[1].code, ResultCode::kOk);
    EXPECT_EQ(block.outcomes[2].code, ResultCode::kOk);
    EXPECT_FALSE(block.outcomes[2].duplicate);

    // A transfer from an account that does not exist yet applies once the account does.
    std::string early = make_transfer(newcomer, alice.public_key(), 1, 1);
    EXPECT_EQ(apply_one(*state, early).code, ResultCode::kUnknownSender);
    EXPECT_FALSE(state->transaction(tx_id(early)).has_value());
    apply_one(*state, make_transfer(bob, newcomer.public_key(), 3, 1));
    Outcome later = apply_one(*state, early);
    EXPECT_EQ(later.code, ResultCode::kOk);
    EXPECT_FALSE(later.duplicate);
    EXPECT_EQ(state->total_balance(), 200u);
}

// `tally tx` must tell "ordered, executed as nonce_too_high, moved nothing" from "never
// ordered": the not-yet execution is found by a tx query, at its seq, though it is no record
// (no duplicate, no reply cache) and no digest covers it (the block commits to what it did).
TEST(TxQuery, FindsATransferExecutedAsNotYetAtItsSeqOutsideTheDigestsUntilItApplies) {
    auto alice = key(1), bob = key(2), newcomer = key(60);
    auto state = open_memory(genesis(2, 100));
    auto twin = open_memory(genesis(2, 100));  // fed empty blocks instead
    const std::string second = make_transfer(alice, bob.public_key(), 5, 2);
    const std::string unfunded = make_transfer(newcomer, alice.public_key(), 1, 1);
    auto block = apply_next(*state, {second, unfunded});
    EXPECT_EQ(block.outcomes[0].code, ResultCode::kNonceTooHigh);
    EXPECT_EQ(block.outcomes[1].code, ResultCode::kUnknownSender);
    apply_next(*twin, {});
    EXPECT_EQ(state->state_digest(), twin->state_digest());
    EXPECT_EQ(state->history_digest(), twin->history_digest());
    EXPECT_FALSE(state->transaction(tx_id(second)).has_value());

    auto looked_up = [&](const std::string& tx, uint64_t nonce) {
        return state->query(make_tx_query(bob, tx_id(tx), nonce));
    };
    EXPECT_EQ(looked_up(second, 1).code, ResultCode::kNonceTooHigh);
    EXPECT_EQ(looked_up(second, 1).seq, 1u);
    // A key with no account costs nothing to make: what it signs is not kept (schema.cc).
    EXPECT_EQ(looked_up(unfunded, 1).code, ResultCode::kUnknownTx);
    // Ordered as a query, it answers the same.
    Outcome ordered = apply_one(*state, make_tx_query(bob, tx_id(second), 2));
    EXPECT_EQ(ordered.code, ResultCode::kNonceTooHigh);
    EXPECT_EQ(ordered.seq, 1u);
    // Executed again, too early still: the latest execution's seq.
    EXPECT_EQ(apply_one(*state, second).code, ResultCode::kNonceTooHigh);
    EXPECT_EQ(looked_up(second, 3).seq, 3u);

    // Its turn comes: it applies (no duplicate of the not-yet execution), and the lookup
    // answers the final record.
    apply_one(*state, make_transfer(alice, bob.public_key(), 5, 1));
    Outcome applied = apply_one(*state, second);
    EXPECT_EQ(applied.code, ResultCode::kOk);
    EXPECT_FALSE(applied.duplicate);
    EXPECT_EQ(looked_up(second, 4).code, ResultCode::kOk);
    EXPECT_EQ(looked_up(second, 4).seq, applied.seq);
    EXPECT_EQ(looked_up(make_transfer(alice, bob.public_key(), 5, 9), 5).code, ResultCode::kUnknownTx);
}

// An account holder can sign early transfers without end, for free: a replica keeps only each
// sender's latest 16 not-yet executions (by seq), and the older ones are unknown again.
TEST(TxQuery, OnlyASendersLatestSixteenNotYetExecutionsAreKept) {
    auto alice = key(1), bob = key(2);
    auto state = open_memory(genesis(2, 100));
    std::vector<std::string> early;
    for (uint64_t amount = 1; amount <= 20; ++amount)
        early.push_back(make_transfer(alice, bob.public_key(), amount, 3));
    apply_next(*state, {early[0], early[1]});  // seq 1
    for (size_t i = 2; i < early.size(); ++i) apply_next(*state, {early[i]});
    auto code_of = [&](const std::string& tx) {
        return state->query(make_tx_query(bob, tx_id(tx), 1)).code;
    };
    for (size_t i = 0; i < 4; ++i) EXPECT_EQ(code_of(early[i]), ResultCode::kUnknownTx) << i;
    for (size_t i = 4; i < early.size(); ++i) EXPECT_EQ(code_of(early[i]), ResultCode::kNonceTooHigh) << i;
    // Executed again, an old one is the newest: it is kept, and the oldest kept one goes.
    apply_next(*state, {early[0]});
    EXPECT_EQ(code_of(early[0]), ResultCode::kNonceTooHigh);
    EXPECT_EQ(code_of(early[4]), ResultCode::kUnknownTx);
    // Bob's early transfers have their own sixteen.
    const std::string bobs = make_transfer(bob, alice.public_key(), 1, 5);
    apply_next(*state, {bobs});
    EXPECT_EQ(code_of(bobs), ResultCode::kNonceTooHigh);
    EXPECT_EQ(code_of(early[5]), ResultCode::kNonceTooHigh);
}

TEST(ApplyBlock, DuplicatesWithinABlockRepeatTheFirstOutcome) {
    auto alice = key(1), bob = key(2);
    auto state = open_memory(genesis(2, 100));
    std::string pay = make_transfer(alice, bob.public_key(), 10, 1);
    std::string overdraw = make_transfer(bob, alice.public_key(), 500, 1);
    auto block = apply_next(*state, {pay, overdraw, pay, overdraw, pay});
    ASSERT_EQ(block.outcomes.size(), 5u);
    EXPECT_EQ(block.outcomes[0].code, ResultCode::kOk);
    EXPECT_FALSE(block.outcomes[0].duplicate);
    EXPECT_EQ(block.outcomes[1].code, ResultCode::kInsufficientFunds);
    for (size_t i : {2u, 4u}) {
        EXPECT_TRUE(block.outcomes[i].duplicate);
        EXPECT_EQ(block.outcomes[i].code, ResultCode::kOk);
        EXPECT_EQ(block.outcomes[i].seq, 1u);
        EXPECT_EQ(block.outcomes[i].tx_id, block.outcomes[0].tx_id);
    }
    EXPECT_TRUE(block.outcomes[3].duplicate);
    EXPECT_EQ(block.outcomes[3].code, ResultCode::kInsufficientFunds);
    EXPECT_EQ(state->account(alice.public_key())->balance, 90u);
    EXPECT_EQ(state->account(bob.public_key())->balance, 110u);
    EXPECT_EQ(block.header.tx_count, 5u);
}

TEST(ApplyBlock, DuplicatesAcrossBlocksRepeatTheFirstOutcomeAndChangeNothing) {
    auto alice = key(1), bob = key(2);
    auto state = open_memory(genesis(2, 100));
    std::string pay = make_transfer(alice, bob.public_key(), 10, 1);
    Outcome first = apply_one(*state, pay);
    ASSERT_EQ(first.code, ResultCode::kOk);
    apply_next(*state, {});
    const crypto::Hash digest = state->state_digest();
    Outcome again = apply_one(*state, pay);
    EXPECT_TRUE(again.duplicate);
    EXPECT_EQ(again.code, ResultCode::kOk);
    EXPECT_EQ(again.seq, first.seq);
    EXPECT_EQ(again.tx_id, first.tx_id);
    EXPECT_EQ(state->state_digest(), digest);
    EXPECT_EQ(state->account(alice.public_key())->balance, 90u);
    // Checked only after its signature: a copy with a broken signature is not a duplicate.
    EXPECT_EQ(apply_one(*state, break_signature(pay)).code, ResultCode::kBadSignature);
}

TEST(ApplyBlock, ABadSignatureFirstDoesNotBlockTheGenuineTransaction) {
    auto alice = key(1), bob = key(2);
    auto state = open_memory(genesis(2, 100));
    std::string pay = make_transfer(alice, bob.public_key(), 10, 1);
    Outcome forged = apply_one(*state, break_signature(pay));
    EXPECT_EQ(forged.code, ResultCode::kBadSignature);
    EXPECT_FALSE(state->transaction(forged.tx_id).has_value());
    Outcome genuine = apply_one(*state, pay);
    EXPECT_EQ(genuine.code, ResultCode::kOk);
    EXPECT_FALSE(genuine.duplicate);
    EXPECT_EQ(genuine.tx_id, forged.tx_id);
}

TEST(ApplyBlock, TrustedSkipsTheSignatureCheck) {
    auto alice = key(1), bob = key(2);
    auto state = open_memory(genesis(2, 100));
    auto block = apply_next(
        *state, {break_signature(make_transfer(alice, bob.public_key(), 10, 1))}, Verify::kTrusted);
    ASSERT_EQ(block.outcomes.size(), 1u);
    EXPECT_EQ(block.outcomes[0].code, ResultCode::kOk);
}

TEST(ApplyBlock, QueriesAnswerFromTheStateAtTheirPlaceAndAreNotRecorded) {
    auto alice = key(1), bob = key(2), client = key(30);
    auto state = open_memory(genesis(2, 100));
    std::string pay = make_transfer(alice, bob.public_key(), 10, 1);
    crypto::Hash pay_id = tx_id(pay);
    std::string before = make_balance_query(client, bob.public_key(), 1);
    std::string status_before = make_tx_query(client, pay_id, 2);
    std::string after = make_balance_query(client, bob.public_key(), 3);
    std::string status_after = make_tx_query(client, pay_id, 4);
    auto block = apply_next(*state, {before, status_before, pay, after, status_after});
    ASSERT_EQ(block.outcomes.size(), 5u);
    EXPECT_EQ(block.outcomes[0].code, ResultCode::kOk);
    EXPECT_EQ(block.outcomes[0].value, 100u);
    EXPECT_EQ(block.outcomes[0].nonce, 0u);
    EXPECT_EQ(block.outcomes[1].code, ResultCode::kUnknownTx);
    EXPECT_EQ(block.outcomes[3].value, 110u);
    EXPECT_EQ(block.outcomes[4].code, ResultCode::kOk);
    EXPECT_EQ(block.outcomes[4].seq, 1u);

    EXPECT_FALSE(state->transaction(tx_id(before)).has_value());
    EXPECT_FALSE(state->account(client.public_key()).has_value());
    // The same query again is answered again, not treated as a duplicate.
    Outcome repeat = apply_one(*state, after);
    EXPECT_FALSE(repeat.duplicate);
    EXPECT_EQ(repeat.value, 110u);
    EXPECT_EQ(repeat.seq, 2u);
    // A balance query reports the nonce.
    EXPECT_EQ(apply_one(*state, make_balance_query(client, alice.public_key(), 9)).nonce, 1u);
}

TEST(Query, AnswersFromTheCurrentStateWithTheSignatureChecked) {
    auto alice = key(1), bob = key(2), client = key(30);
    auto state = open_memory(genesis(2, 100));
    std::string pay = make_transfer(alice, bob.public_key(), 10, 1);
    apply_one(*state, pay);

    Outcome balance = state->query(make_balance_query(client, alice.public_key(), 1));
    EXPECT_EQ(balance.code, ResultCode::kOk);
    EXPECT_EQ(balance.value, 90u);
    EXPECT_EQ(balance.nonce, 1u);
    EXPECT_EQ(balance.seq, 1u);
    Outcome status = state->query(make_tx_query(client, tx_id(pay), 2));
    EXPECT_EQ(status.code, ResultCode::kOk);
    EXPECT_EQ(status.seq, 1u);
    EXPECT_EQ(state->query(make_tx_query(client, crypto::sha256("x"), 3)).code,
              ResultCode::kUnknownTx);
    EXPECT_EQ(state->query(make_balance_query(client, key(99).public_key(), 4)).code,
              ResultCode::kUnknownAccount);
    EXPECT_EQ(state->query(break_signature(make_balance_query(client, alice.public_key(), 5))).code,
              ResultCode::kBadSignature);
    EXPECT_EQ(state->query("junk").code, ResultCode::kMalformed);
    EXPECT_EQ(state->query(make_transfer(alice, bob.public_key(), 1, 2)).code,
              ResultCode::kMalformed);
    EXPECT_EQ(state->account(alice.public_key())->balance, 90u);
    EXPECT_EQ(state->last_seq(), 1u);
}

TEST(ApplyBlock, OutOfOrderOrRepeatedBlocksAreRefusedAndChangeNothing) {
    auto alice = key(1), bob = key(2);
    auto state = open_memory(genesis(2, 100));
    std::vector<std::string> block = {make_transfer(alice, bob.public_key(), 10, 1)};
    auto gap = state->apply_block(2, 0, block);
    ASSERT_FALSE(gap.ok());
    EXPECT_EQ(gap.error().code, "gap");
    auto genesis_again = state->apply_block(0, 0, block);
    ASSERT_FALSE(genesis_again.ok());
    EXPECT_EQ(genesis_again.error().code, "already_applied");
    EXPECT_EQ(state->last_seq(), 0u);

    ASSERT_TRUE(state->apply_block(1, 0, block).ok());
    const crypto::Hash digest = state->state_digest();
    auto twice = state->apply_block(1, 0, block);
    ASSERT_FALSE(twice.ok());
    EXPECT_EQ(twice.error().code, "already_applied");
    EXPECT_EQ(state->last_seq(), 1u);
    EXPECT_EQ(state->state_digest(), digest);
    EXPECT_EQ(state->account(alice.public_key())->balance, 90u);
    EXPECT_FALSE(state->block(2).has_value());
}

// A seeded random workload: valid transfers mixed with every kind of invalid one, each with
// the outcome a simple model predicts. Returns the batches.
struct Workload {
    std::vector<std::vector<std::string>> blocks;
    std::vector<std::vector<ResultCode>> expected;
    std::map<crypto::PublicKey, std::pair<uint64_t, uint64_t>> model;  // balance, nonce
};

Workload random_workload(uint32_t seed, uint8_t accounts, uint64_t balance, size_t block_count,
                         size_t block_size) {
    std::mt19937_64 rng(seed);
    std::vector<crypto::KeyPair> keys;
    Workload w;
    for (uint8_t i = 1; i <= accounts; ++i) {
        keys.push_back(key(i));
        w.model[keys.back().public_key()] = {balance, 0};
    }
    auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
    for (size_t b = 0; b < block_count; ++b) {
        std::vector<std::string> txs;
        std::vector<ResultCode> codes;
        for (size_t t = 0; t < block_size; ++t) {
            const size_t from_index = pick(keys.size());
            const crypto::KeyPair& from = keys[from_index];
            const crypto::KeyPair* to =
                &keys[(from_index + 1 + pick(keys.size() - 1)) % keys.size()];
            auto& [from_balance, from_nonce] = w.model[from.public_key()];
            const size_t kind = pick(20);
            if (kind == 0) {
                txs.push_back("garbage " + std::to_string(rng()));
                codes.push_back(ResultCode::kMalformed);
            } else if (kind == 1) {
                txs.push_back(
                    break_signature(make_transfer(from, to->public_key(), 1, from_nonce + 1)));
                codes.push_back(ResultCode::kBadSignature);
            } else if (kind == 2) {
                txs.push_back(make_transfer(from, to->public_key(), 1, from_nonce + 2));
                codes.push_back(ResultCode::kNonceTooHigh);
            } else if (kind == 3 && from_nonce > 0) {
                // An amount no valid transfer uses, so it never copies an applied one.
                txs.push_back(make_transfer(from, to->public_key(), 1'000'000 + rng() % 1'000'000,
                                            from_nonce));
                codes.push_back(ResultCode::kNonceTooLow);
            } else if (kind == 4) {
                txs.push_back(
                    make_transfer(from, to->public_key(), from_balance + 1, ++from_nonce));
                codes.push_back(ResultCode::kInsufficientFunds);
            } else if (kind == 5) {
                txs.push_back(make_transfer(key(200), to->public_key(), 1, 1));
                codes.push_back(ResultCode::kUnknownSender);
            } else if (kind == 6 && !txs.empty() && codes.back() != ResultCode::kMalformed &&
                       codes.back() != ResultCode::kBadSignature) {
                txs.push_back(txs.back());  // a duplicate: no effect
                codes.push_back(codes.back());
            } else if (from_balance > 0) {
                uint64_t amount = 1 + rng() % std::min<uint64_t>(from_balance, 50);
                txs.push_back(make_transfer(from, to->public_key(), amount, ++from_nonce));
                codes.push_back(ResultCode::kOk);
                from_balance -= amount;
                w.model[to->public_key()].first += amount;
            }
        }
        w.blocks.push_back(std::move(txs));
        w.expected.push_back(std::move(codes));
    }
    return w;
}

TEST(ApplyBlock, MoneyIsConservedOverThousandsOfRandomTransfers) {
    const uint32_t seed = 20240601;
    SCOPED_TRACE("seed " + std::to_string(seed));
    Workload w = random_workload(seed, 20, 1000, 15, 200);
    auto state = open_memory(genesis(20, 1000));
    ASSERT_TRUE(state);
    for (size_t b = 0; b < w.blocks.size(); ++b) {
        auto block = apply_next(*state, w.blocks[b]);
        ASSERT_EQ(block.outcomes.size(), w.expected[b].size());
        for (size_t t = 0; t < block.outcomes.size(); ++t)
            ASSERT_EQ(block.outcomes[t].code, w.expected[b][t]) << "block " << b << " tx " << t;
        ASSERT_EQ(state->total_balance(), 20u * 1000u);
        ASSERT_EQ(state->state_digest(),
                  combine_digests(digest_accounts(state->accounts()), state->history_digest()));
    }
    for (const auto& [key, expected] : w.model) {
        auto account = state->account(key);
        ASSERT_TRUE(account.has_value());
        EXPECT_EQ(account->balance, expected.first);
        EXPECT_EQ(account->nonce, expected.second);
    }
}

TEST(ApplyBlock, TwoLedgersFedTheSameBlocksAgreeAndTheBlocksHashChain) {
    Workload w = random_workload(7, 8, 500, 10, 40);
    // One in memory, one in a file: storage must not matter.
    testing::TempDir dir;
    auto a = open_memory(genesis(8, 500));
    auto opened = State::open(dir.file("b.db"), genesis(8, 500));
    ASSERT_TRUE(a && opened.ok());
    auto& b = opened.value();
    for (size_t i = 0; i < w.blocks.size(); ++i) {
        auto block_a = apply_next(*a, w.blocks[i]);
        auto block_b = apply_next(*b, w.blocks[i]);
        EXPECT_EQ(block_a.header.hash(), block_b.header.hash());
        EXPECT_EQ(block_a.header.state_digest, block_b.header.state_digest);
    }
    EXPECT_EQ(a->state_digest(), b->state_digest());
    for (uint64_t h = 1; h <= a->last_seq(); ++h) {
        auto block = a->block(h), previous = a->block(h - 1);
        ASSERT_TRUE(block && previous);
        EXPECT_EQ(block->height, h);
        EXPECT_EQ(block->prev_hash, previous->hash());
        std::vector<crypto::Hash> ids;
        for (const std::string& tx : w.blocks[h - 1]) ids.push_back(tx_id(tx));
        EXPECT_EQ(block->tx_root, crypto::merkle_root(ids));
        EXPECT_EQ(block->tx_count, w.blocks[h - 1].size());
    }
}

TEST(ApplyBlock, AnEmptyBatchMakesAnEmptyBlock) {
    auto state = open_memory(genesis(2, 100));
    const crypto::Hash digest = state->state_digest();
    auto block = apply_next(*state, {});
    EXPECT_EQ(block.header.height, 1u);
    EXPECT_EQ(block.header.tx_count, 0u);
    EXPECT_EQ(block.header.tx_root, crypto::merkle_root({}));
    EXPECT_EQ(block.header.state_digest, digest);
    EXPECT_EQ(block.header.prev_hash, state->block(0)->hash());
}

TEST(ApplyBlock, ABlockRecordsItsView) {
    auto state = open_memory(genesis(1, 1));
    auto block = state->apply_block(1, 42, {});
    ASSERT_TRUE(block.ok());
    EXPECT_EQ(state->block(1)->view, 42u);
}

// ---- snapshots ----

std::unique_ptr<State> busy_ledger() {
    Workload w = random_workload(11, 6, 300, 5, 30);
    auto state = open_memory(genesis(6, 300));
    for (const auto& block : w.blocks) apply_next(*state, block);
    return state;
}

// Every chunk of the snapshot at `point`, in order, as SnapshotImport asks for them.
std::vector<pb::SnapshotChunk> all_chunks(const State& source, const SnapshotPoint& point,
                                          State& scratch, size_t chunk_bytes) {
    std::vector<pb::SnapshotChunk> chunks;
    SnapshotImport import(scratch, point.last_block.seq, point.last_block.hash());
    while (!import.complete()) {
        auto bytes = source.snapshot_chunk(point, import.next_cursor(), chunk_bytes);
        EXPECT_TRUE(bytes.ok());
        if (!bytes) break;
        chunks.emplace_back().ParseFromString(*bytes);
        Status added = import.add(*bytes);
        EXPECT_TRUE(added.ok()) << added.error().message;
        if (!added) break;
    }
    return chunks;
}

// Feeds `chunks` to a fresh import into `target`; the first error, if any.
Status import_chunks(State& target, uint64_t seq, const crypto::Hash& digest,
                     const std::vector<pb::SnapshotChunk>& chunks) {
    SnapshotImport import(target, seq, digest);
    for (const pb::SnapshotChunk& chunk : chunks) {
        Status added = import.add(chunk.SerializeAsString());
        if (!added) return added;
    }
    if (!import.complete()) return make_error("incomplete", "chunks ran out");
    return import.install();
}

void expect_unchanged(const State& target, const crypto::Hash& digest,
                      const std::vector<Account>& accounts) {
    EXPECT_EQ(target.state_digest(), digest);
    EXPECT_TRUE(same_accounts(target.accounts(), accounts));
    EXPECT_EQ(target.last_seq(), 0u);
}

TEST(Snapshot, TheStateDigestCoversTheAccountsAndTheHistory) {
    auto state = busy_ledger();
    EXPECT_EQ(state->state_digest(),
              combine_digests(digest_accounts(state->accounts()), state->history_digest()));
    EXPECT_NE(state->history_digest(), crypto::Hash{});
    // A block that records nothing leaves the history as it was.
    const crypto::Hash history = state->history_digest();
    apply_next(*state, {});
    EXPECT_EQ(state->history_digest(), history);
}

TEST(Snapshot, ImportInManyPiecesReproducesTheStateAndItsHistory) {
    auto source = busy_ledger();
    auto target = open_memory(genesis(1, 7));  // a different genesis: all of it is replaced
    ASSERT_TRUE(target);
    auto scratch = open_memory(genesis(1, 7));
    const SnapshotPoint point = source->snapshot_point();
    // 300 bytes: a few items a piece, so that accounts and records each span several.
    EXPECT_GT(all_chunks(*source, point, *scratch, 300).size(), 10u);
    Status imported = copy_snapshot(*source, point, *target, source->last_block().hash(), 300);
    ASSERT_TRUE(imported.ok()) << imported.error().message;
    EXPECT_EQ(target->state_digest(), source->state_digest());
    EXPECT_EQ(target->history_digest(), source->history_digest());
    EXPECT_EQ(target->last_seq(), source->last_seq());
    EXPECT_TRUE(same_header(target->last_block(), source->last_block()));
    EXPECT_TRUE(same_accounts(target->accounts(), source->accounts()));
    ASSERT_TRUE(target->block(target->last_seq()).has_value());

    // Both go on identically, duplicates included.
    auto alice = key(1), bob = key(2);
    std::vector<std::string> next = {
        make_transfer(alice, bob.public_key(), 1, source->account(alice.public_key())->nonce + 1)};
    auto a = source->apply_block(source->last_seq() + 1, 1, next);
    auto b = target->apply_block(target->last_seq() + 1, 1, next);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->outcomes[0].code, ResultCode::kOk);
    EXPECT_EQ(a->header.hash(), b->header.hash());
    auto again = target->apply_block(target->last_seq() + 1, 1, next);
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->outcomes[0].duplicate);

    // And a copy of a copy is the same again.
    auto third = open_memory(genesis(2, 3));
    ASSERT_TRUE(copy_snapshot(*target, target->snapshot_point(), *third, target->last_block().hash(),
                              kSnapshotChunkBytes)
                    .ok());
    EXPECT_EQ(third->state_digest(), target->state_digest());
}

TEST(Snapshot, APointServesTheStateAsItWasWhileTheLedgerMovesOn) {
    auto source = busy_ledger();
    const SnapshotPoint point = source->snapshot_point();
    const std::vector<Account> accounts_then = source->accounts();
    // More blocks after the point: new accounts, new balances, new records.
    auto alice = key(1);
    auto stranger = key(99);
    auto later = source->apply_block(
        source->last_seq() + 1, 1,
        {make_transfer(alice, stranger.public_key(), 5, source->account(alice.public_key())->nonce + 1)});
    ASSERT_TRUE(later.ok());
    ASSERT_EQ(later->outcomes[0].code, ResultCode::kOk);

    auto target = open_memory(genesis(1, 7));
    Status imported = copy_snapshot(*source, point, *target, point.last_block.hash(), 300);
    ASSERT_TRUE(imported.ok()) << imported.error().message;
    EXPECT_EQ(target->last_seq(), point.last_block.seq);
    EXPECT_TRUE(same_accounts(target->accounts(), accounts_then));
    EXPECT_FALSE(target->account(stranger.public_key()).has_value());
    EXPECT_FALSE(target->transaction(later->outcomes[0].tx_id).has_value());
}

TEST(Snapshot, ATamperedAccountIsRefusedAndTheStateIsUnchanged) {
    auto source = busy_ledger();
    auto scratch = open_memory(genesis(1, 1));
    const SnapshotPoint point = source->snapshot_point();
    auto chunks = all_chunks(*source, point, *scratch, 4096);
    ASSERT_FALSE(chunks.empty());
    ASSERT_GT(chunks[0].accounts_size(), 0);
    chunks[0].mutable_accounts(0)->set_balance(chunks[0].accounts(0).balance() + 1000);

    auto target = open_memory(genesis(3, 9));
    const crypto::Hash digest = target->state_digest();
    const auto accounts = target->accounts();
    Status refused = import_chunks(*target, point.last_block.seq, source->last_block().hash(), chunks);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "digest_mismatch");
    expect_unchanged(*target, digest, accounts);
}

TEST(Snapshot, AMadeUpOrAlteredTransactionRecordIsRefused) {
    auto source = busy_ledger();
    auto scratch = open_memory(genesis(1, 1));
    const SnapshotPoint point = source->snapshot_point();
    const auto honest = all_chunks(*source, point, *scratch, 4096);
    ASSERT_GT(honest.back().records_size(), 1);

    auto target = open_memory(genesis(3, 9));
    const crypto::Hash digest = target->state_digest();
    const auto accounts = target->accounts();

    auto altered = honest;
    pb::TxRecord* record = altered.back().mutable_records(0);
    record->set_code(record->code() == 0 ? 1 : 0);
    Status refused = import_chunks(*target, point.last_block.seq, source->last_block().hash(), altered);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "digest_mismatch");

    // A record for a transaction in flight: it would make that transfer a "duplicate".
    auto made_up = honest;
    pb::TxRecord* fake = made_up.back().add_records();
    fake->set_id(std::string(32, '\xff'));
    fake->set_code(0);
    fake->set_seq(point.last_block.seq);
    refused = import_chunks(*target, point.last_block.seq, source->last_block().hash(), made_up);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "digest_mismatch");

    auto dropped = honest;
    dropped.back().mutable_records()->RemoveLast();
    refused = import_chunks(*target, point.last_block.seq, source->last_block().hash(), dropped);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "digest_mismatch");
    expect_unchanged(*target, digest, accounts);

    // The honest pieces still go in.
    Status imported = import_chunks(*target, point.last_block.seq, source->last_block().hash(), honest);
    EXPECT_TRUE(imported.ok()) << imported.error().message;
}

// Imports the snapshot at `point` into `target`, piece by piece; returns the import's error
// or how many records it fetched.
Result<uint64_t> import_since(const State& source, const SnapshotPoint& point, State& target,
                              SnapshotImport::Since since) {
    SnapshotImport import(target, point.last_block.seq, point.last_block.hash(), since);
    while (!import.complete()) {
        auto chunk = source.snapshot_chunk(point, import.next_cursor(), 300);
        if (!chunk) return chunk.error();
        Status added = import.add(*chunk);
        if (!added) return added.error();
    }
    Status installed = import.install();
    if (!installed) return installed.error();
    return import.records();
}

TEST(Snapshot, ALedgerThatIsBehindFetchesOnlyTheRecordsItLacks) {
    Workload w = random_workload(11, 6, 300, 5, 30);
    auto source = open_memory(genesis(6, 300));
    auto behind = open_memory(genesis(6, 300));
    std::vector<Outcome> early;
    for (size_t b = 0; b < w.blocks.size(); ++b) {
        auto applied = apply_next(*source, w.blocks[b]);
        if (b < 2) {
            apply_next(*behind, w.blocks[b]);
            early.insert(early.end(), applied.outcomes.begin(), applied.outcomes.end());
        }
    }
    std::set<crypto::Hash> later;  // what blocks 3..5 recorded
    for (uint64_t seq = 3; seq <= source->last_seq(); ++seq)
        for (const auto& tx : w.blocks[seq - 1]) {
            auto r = source->transaction(tx_id(tx));
            if (r && r->seq == seq) later.insert(tx_id(tx));
        }
    const uint64_t later_records = later.size();
    ASSERT_GT(later_records, 0u);

    auto fetched = import_since(*source, source->snapshot_point(), *behind,
                                SnapshotImport::Since::kWhatItHolds);
    ASSERT_TRUE(fetched.ok()) << fetched.error().message;
    EXPECT_EQ(*fetched, later_records);
    EXPECT_EQ(behind->state_digest(), source->state_digest());
    EXPECT_EQ(behind->history_digest(), source->history_digest());
    EXPECT_TRUE(same_accounts(behind->accounts(), source->accounts()));
    // Its own records and blocks stayed.
    size_t kept = 0;
    for (const Outcome& o : early) {
        if (source->transaction(o.tx_id)) {
            EXPECT_TRUE(behind->transaction(o.tx_id).has_value());
            ++kept;
        }
    }
    EXPECT_GT(kept, 0u);
    EXPECT_TRUE(behind->block(2).has_value());
    EXPECT_TRUE(behind->block(5).has_value());
}

TEST(Snapshot, ALedgerThatWentWrongIsRefusedSinceWhatItHoldsButTakesTheWholeHistory) {
    Workload w = random_workload(11, 6, 300, 5, 30);
    auto source = open_memory(genesis(6, 300));
    for (const auto& block : w.blocks) apply_next(*source, block);
    // Same genesis, another block 1: its history is not the network's.
    auto wrong = open_memory(genesis(6, 300));
    apply_next(*wrong, {w.blocks[0].front()});
    const SnapshotPoint point = source->snapshot_point();

    auto refused = import_since(*source, point, *wrong, SnapshotImport::Since::kWhatItHolds);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "digest_mismatch");
    EXPECT_EQ(wrong->last_seq(), 1u);

    auto whole = import_since(*source, point, *wrong, SnapshotImport::Since::kGenesis);
    ASSERT_TRUE(whole.ok()) << whole.error().message;
    EXPECT_EQ(wrong->state_digest(), source->state_digest());
    EXPECT_FALSE(wrong->block(1).has_value()) << "a whole import keeps no older block";
}

TEST(Snapshot, InstallRefusesWhenTheLedgerReachedTheSnapshotMeanwhile) {
    Workload w = random_workload(11, 6, 300, 5, 30);
    auto source = open_memory(genesis(6, 300));
    auto target = open_memory(genesis(6, 300));
    for (const auto& block : w.blocks) apply_next(*source, block);
    const SnapshotPoint point = source->snapshot_point();
    SnapshotImport import(*target, point.last_block.seq, point.last_block.hash());
    while (!import.complete()) {
        auto chunk = source->snapshot_chunk(point, import.next_cursor(), 300);
        ASSERT_TRUE(chunk.ok());
        ASSERT_TRUE(import.add(*chunk).ok());
    }
    for (const auto& block : w.blocks) apply_next(*target, block);  // caught up by itself
    Status late = import.install();
    ASSERT_FALSE(late.ok());
    EXPECT_EQ(late.error().code, "already_applied");
    EXPECT_EQ(target->state_digest(), source->state_digest());
}

TEST(Snapshot, ASnapshotOfAnotherPointIsRefused) {
    auto source = busy_ledger();
    auto target = open_memory(genesis(3, 9));
    Status refused = copy_snapshot(*source, source->snapshot_point(), *target,
                                   crypto::sha256("other"), kSnapshotChunkBytes);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "digest_mismatch");
    EXPECT_EQ(target->last_seq(), 0u);
}

TEST(Snapshot, PiecesThatDoNotDecodeOrBreakTheOrderAreMalformed) {
    auto target = open_memory(genesis(2, 5));
    const crypto::Hash digest = target->state_digest();
    const auto accounts = target->accounts();
    for (std::string garbage : {std::string("\xff\xff\xff\xff"), std::string(),
                                std::string("random bytes that are not a snapshot")}) {
        SnapshotImport import(*target, 5, digest);
        Status refused = import.add(garbage);
        ASSERT_FALSE(refused.ok());
        EXPECT_EQ(refused.error().code, "malformed");
    }
    auto source = busy_ledger();
    auto scratch = open_memory(genesis(1, 1));
    const SnapshotPoint point = source->snapshot_point();
    const uint64_t seq = point.last_block.seq;
    const crypto::Hash proven = source->last_block().hash();
    const auto honest = all_chunks(*source, point, *scratch, 4096);

    auto unsorted = honest;
    unsorted[0].mutable_accounts()->SwapElements(0, 1);
    Status refused = import_chunks(*target, seq, proven, unsorted);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "malformed");

    auto reordered = honest;
    reordered.back().mutable_records()->SwapElements(0, 1);
    refused = import_chunks(*target, seq, proven, reordered);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "malformed");

    auto from_the_future = honest;
    from_the_future.back().mutable_records(0)->set_seq(seq + 1);
    refused = import_chunks(*target, seq, proven, from_the_future);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "malformed");

    std::vector<pb::SnapshotChunk> empty(1);
    *empty[0].mutable_last_block() = honest[0].last_block();
    empty[0].set_history(honest[0].history());
    refused = import_chunks(*target, seq, proven, empty);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "malformed");

    // A piece of another block than the one asked for.
    refused = import_chunks(*target, seq + 1, proven, honest);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "malformed");
    expect_unchanged(*target, digest, accounts);

    // The server refuses a cursor it cannot read.
    auto bad_cursor = source->snapshot_chunk(point, "\xff\xff\xff", 4096);
    ASSERT_FALSE(bad_cursor.ok());
    EXPECT_EQ(bad_cursor.error().code, "malformed");
}

TEST(HistoryChain, OneBlockAtATimeOrAllAtOnceGiveTheSameDigest) {
    std::vector<TxRecord> records;
    for (uint64_t seq = 1; seq <= 4; ++seq)
        for (uint8_t i = 0; i < 3; ++i) {
            TxRecord record;
            record.id[0] = i;
            record.seq = seq;
            record.value = seq * 10 + i;
            records.push_back(record);
        }
    HistoryChain whole;
    for (const TxRecord& record : records) whole.add(record);
    HistoryChain by_block;
    for (const TxRecord& record : records) {
        by_block.add(record);
        if (record.id[0] == 2) by_block.digest();  // the block's last record
    }
    EXPECT_EQ(whole.digest(), by_block.digest());

    HistoryChain altered;
    records[5].value += 1;
    for (const TxRecord& record : records) altered.add(record);
    EXPECT_NE(altered.digest(), whole.digest());
}

}  // namespace
}  // namespace tally::ledger

namespace tally::ledger {
namespace {

// A key in digest bucket `bucket` (its first 16 bits), told apart by `n`.
crypto::PublicKey key_in_bucket(uint16_t bucket, uint32_t n) {
    crypto::PublicKey k{};
    k[0] = static_cast<uint8_t>(bucket >> 8);
    k[1] = static_cast<uint8_t>(bucket);
    for (size_t b = 0; b < 4; ++b) k[28 + b] = static_cast<uint8_t>(n >> (8 * b));
    return k;
}

TEST(StateDigest, TheIncrementalDigestEqualsTheOneBuiltWholeAsBlocksCreateAndChangeAccounts) {
    // Crowded buckets (many accounts sharing their first 16 bits), new accounts landing
    // before, between and after old ones in a bucket, and accounts in buckets far apart.
    auto state = open_memory(genesis(6, 1'000'000));
    ASSERT_TRUE(state);
    std::mt19937_64 random(11);
    std::vector<uint64_t> nonces(6, 0);
    for (int block = 0; block < 60; ++block) {
        std::vector<std::string> txs;
        for (int t = 0; t < 8; ++t) {
            const auto from = static_cast<uint8_t>(random() % 6);
            const uint16_t bucket = (random() % 2 == 0) ? 0x0101 : static_cast<uint16_t>(random());
            const auto to = key_in_bucket(bucket, static_cast<uint32_t>(random() % 64));
            txs.push_back(make_transfer(testing::key(from), to, 1 + random() % 5, ++nonces[from]));
        }
        apply_next(*state, txs);
        ASSERT_EQ(state->state_digest(),
                  combine_digests(digest_accounts(state->accounts()), state->history_digest()))
            << "after block " << block;
    }
    EXPECT_GT(state->accounts().size(), 40u);
}

// The accounts digest as its definition reads (state.cc): a tree over 2^16 buckets, leaf(b) =
// zero if empty else SHA-256(0x00 || key || balance || nonce ...), node(l, r) = zero if both are
// zero else SHA-256(0x01 || l || r). Built here from scratch, to pin the value the ledger's
// incremental, lazily allocated tree must give.
crypto::Hash reference_node(const std::vector<Account>& sorted, uint32_t lo, uint32_t hi) {
    auto in_range = [&](const Account& a) {
        const uint32_t b = (uint32_t{a.key[0]} << 8) | a.key[1];
        return b >= lo && b < hi;
    };
    if (std::none_of(sorted.begin(), sorted.end(), in_range)) return crypto::Hash{};
    std::string bytes;
    if (hi - lo == 1) {
        bytes.push_back(0);
        for (const Account& a : sorted) {
            if (!in_range(a)) continue;
            bytes.append(reinterpret_cast<const char*>(a.key.data()), a.key.size());
            for (uint64_t v : {a.balance, a.nonce})
                for (int i = 7; i >= 0; --i) bytes.push_back(static_cast<char>(v >> (8 * i)));
        }
    } else {
        const uint32_t mid = lo + (hi - lo) / 2;
        const crypto::Hash l = reference_node(sorted, lo, mid), r = reference_node(sorted, mid, hi);
        bytes.push_back(1);
        bytes.append(reinterpret_cast<const char*>(l.data()), l.size());
        bytes.append(reinterpret_cast<const char*>(r.data()), r.size());
    }
    return crypto::sha256(bytes);
}

TEST(StateDigest, EqualsTheTreeBuiltFromItsDefinition) {
    std::vector<Account> accounts;
    // The first and last buckets, neighbours, a crowded bucket, and buckets far apart.
    for (uint32_t bucket : {0x0000, 0x0001, 0x003f, 0x0040, 0x1234, 0x8000, 0xfffe, 0xffff})
        for (uint32_t n = 0; n < (bucket == 0x1234 ? 70u : 2u); ++n)
            accounts.push_back(Account{key_in_bucket(static_cast<uint16_t>(bucket), n), 1000 + n, n});
    std::sort(accounts.begin(), accounts.end(),
              [](const Account& a, const Account& b) { return a.key < b.key; });
    EXPECT_EQ(digest_accounts(accounts), reference_node(accounts, 0, 1u << 16));
    const std::vector<Account> one = {accounts[3]};
    EXPECT_EQ(digest_accounts(one), reference_node(one, 0, 1u << 16));

    // A ledger's own digest, after blocks that create accounts and change them.
    auto state = open_memory(genesis(3, 1'000'000));
    ASSERT_TRUE(state);
    uint64_t nonce = 0;
    for (int block = 0; block < 5; ++block) {
        std::vector<std::string> txs;
        for (uint32_t bucket : {0x0000, 0x0777, 0xffff})
            txs.push_back(make_transfer(testing::key(0), key_in_bucket(static_cast<uint16_t>(bucket), block), 5,
                                        ++nonce));
        apply_next(*state, txs);
        EXPECT_EQ(state->state_digest(),
                  combine_digests(reference_node(state->accounts(), 0, 1u << 16), state->history_digest()))
            << "after block " << block;
    }
}

TEST(StateDigest, EveryFieldOfEveryAccountCountsAndEmptyIsZero) {
    EXPECT_EQ(digest_accounts({}), crypto::Hash{});
    std::vector<Account> accounts;
    for (uint32_t n = 0; n < 20; ++n) accounts.push_back(Account{key_in_bucket(7, n), 100 + n, n});
    accounts.push_back(Account{key_in_bucket(9000, 1), 5, 0});
    const crypto::Hash base = digest_accounts(accounts);
    for (size_t i = 0; i < accounts.size(); ++i) {
        auto changed = accounts;
        changed[i].balance += 1;
        EXPECT_NE(digest_accounts(changed), base) << i;
        changed = accounts;
        changed[i].nonce += 1;
        EXPECT_NE(digest_accounts(changed), base) << i;
    }
    auto fewer = accounts;
    fewer.pop_back();
    EXPECT_NE(digest_accounts(fewer), base);
    // The same accounts under another key (another bucket) are another state.
    auto moved = accounts;
    moved.back().key = key_in_bucket(9001, 1);
    EXPECT_NE(digest_accounts(moved), base);
}

}  // namespace
}  // namespace tally::ledger
