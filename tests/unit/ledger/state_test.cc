// The ledger state (ledger/state.h): result codes, duplicates, determinism, block order,
// conservation of money, persistence and snapshots.
#include "ledger/state.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <set>

#include "crypto/merkle.h"
#include "ledger_test_util.h"

namespace tally::ledger {
namespace {

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
    EXPECT_EQ(state->state_digest(), digest_accounts(sorted(g.accounts)));
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
        ASSERT_EQ(state->state_digest(), digest_accounts(state->accounts()));
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

TEST(Snapshot, ImportIntoAFreshLedgerReproducesTheState) {
    auto source = busy_ledger();
    std::string snapshot = source->export_snapshot();
    auto target = open_memory(genesis(1, 7));  // a different genesis: all of it is replaced
    ASSERT_TRUE(target);
    Status imported = target->import_snapshot(snapshot, source->state_digest());
    ASSERT_TRUE(imported.ok()) << imported.error().message;
    EXPECT_EQ(target->state_digest(), source->state_digest());
    EXPECT_EQ(target->last_seq(), source->last_seq());
    EXPECT_TRUE(same_header(target->last_block(), source->last_block()));
    EXPECT_TRUE(same_accounts(target->accounts(), source->accounts()));
    EXPECT_EQ(target->total_balance(), source->total_balance());
    ASSERT_TRUE(target->block(target->last_seq()).has_value());
    EXPECT_EQ(target->export_snapshot(), snapshot);

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
}

TEST(Snapshot, ATamperedSnapshotIsRefusedAndTheStateIsUnchanged) {
    auto source = busy_ledger();
    pb::Snapshot snapshot;
    ASSERT_TRUE(snapshot.ParseFromString(source->export_snapshot()));
    snapshot.mutable_accounts(0)->set_balance(snapshot.accounts(0).balance() + 1000);
    std::string tampered;
    snapshot.SerializeToString(&tampered);

    auto target = open_memory(genesis(3, 9));
    const crypto::Hash digest = target->state_digest();
    const auto accounts = target->accounts();
    Status refused = target->import_snapshot(tampered, source->state_digest());
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "digest_mismatch");
    // Consistent with itself, but not what the caller expected.
    auto self_consistent = source->export_snapshot();
    Status wrong_expectation = target->import_snapshot(self_consistent, crypto::sha256("other"));
    ASSERT_FALSE(wrong_expectation.ok());
    EXPECT_EQ(wrong_expectation.error().code, "digest_mismatch");

    EXPECT_EQ(target->state_digest(), digest);
    EXPECT_TRUE(same_accounts(target->accounts(), accounts));
    EXPECT_EQ(target->last_seq(), 0u);
}

TEST(Snapshot, BytesThatDoNotDecodeAreMalformed) {
    auto target = open_memory(genesis(2, 5));
    const crypto::Hash digest = target->state_digest();
    for (std::string garbage : {std::string("\xff\xff\xff\xff"), std::string(),
                                std::string("random bytes that are not a snapshot")}) {
        Status refused = target->import_snapshot(garbage, digest);
        ASSERT_FALSE(refused.ok());
        EXPECT_EQ(refused.error().code, "malformed");
    }
    // Well-formed protobuf, but accounts out of order.
    auto source = busy_ledger();
    pb::Snapshot snapshot;
    ASSERT_TRUE(snapshot.ParseFromString(source->export_snapshot()));
    snapshot.mutable_accounts()->SwapElements(0, 1);
    std::string unsorted;
    snapshot.SerializeToString(&unsorted);
    Status refused = target->import_snapshot(unsorted, source->state_digest());
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "malformed");
    EXPECT_EQ(target->state_digest(), digest);
}

}  // namespace
}  // namespace tally::ledger
