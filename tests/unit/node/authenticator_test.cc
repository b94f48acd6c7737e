// TxAuthenticator: a valid transaction yields its sender and nonce; a bad signature and
// malformed bytes are refused by reason; verdicts are cached by payload, hits counted, and the
// cache stays within its bound.
#include "node/authenticator.h"

#include <gtest/gtest.h>

#include <thread>

#include "crypto/envelope.h"

namespace tally::node {
namespace {

crypto::KeyPair key_n(uint8_t n) {
    crypto::Seed seed{};
    seed[0] = n;
    seed[1] = 0x5a;
    return crypto::KeyPair::from_seed(seed);
}

TEST(AuthenticatorTest, AValidTransferYieldsItsSenderAndNonce) {
    TxAuthenticator auth;
    const auto alice = key_n(1);
    const std::string tx = ledger::make_transfer(alice, key_n(2).public_key(), 5, 42);
    auto info = auth.authenticate(tx);
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(info->client, alice.public_key());
    EXPECT_EQ(info->nonce, 42u);

    auto decoded = auth.authenticate_tx(tx);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(decoded->sender, alice.public_key());
    EXPECT_EQ(decoded->id, ledger::tx_id(tx));
}

TEST(AuthenticatorTest, ABadSignatureIsRefused) {
    TxAuthenticator auth;
    std::string tx = ledger::make_transfer(key_n(1), key_n(2).public_key(), 5, 1);
    tx.back() = static_cast<char>(tx.back() ^ 0x01);
    auto info = auth.authenticate(tx);
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.error().code, "bad_signature");
    auto again = auth.authenticate_tx(tx);  // the cached verdict says the same
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code, "bad_signature");
}

TEST(AuthenticatorTest, MalformedPayloadsAreRefused) {
    TxAuthenticator auth;
    for (const std::string& bad :
         {std::string(), std::string("garbage"), std::string(200, '\x01'),
          // A validly signed envelope of another type is not a transaction.
          crypto::seal(key_n(1), crypto::MessageType::kStatusRequest, "")}) {
        auto info = auth.authenticate(bad);
        ASSERT_FALSE(info.ok());
        EXPECT_EQ(info.error().code, "malformed");
    }
}

TEST(AuthenticatorTest, TheSecondLookAtAPayloadIsACacheHit) {
    TxAuthenticator auth;
    const std::string tx = ledger::make_transfer(key_n(1), key_n(2).public_key(), 5, 1);
    ASSERT_TRUE(auth.authenticate_tx(tx).ok());  // a worker thread's first look
    EXPECT_EQ(auth.stats().misses, 1u);
    EXPECT_EQ(auth.stats().hits, 0u);
    ASSERT_TRUE(auth.authenticate(tx).ok());  // the engine, inside a pre-prepare
    ASSERT_TRUE(auth.authenticate(tx).ok());
    EXPECT_EQ(auth.stats().misses, 1u);
    EXPECT_EQ(auth.stats().hits, 2u);
    EXPECT_EQ(auth.stats().entries, 1u);

    // A copy with a broken signature is a different payload, judged on its own.
    std::string forged = tx;
    forged.back() = static_cast<char>(forged.back() ^ 0x80);
    EXPECT_FALSE(auth.authenticate(forged).ok());
    EXPECT_EQ(auth.stats().misses, 2u);
    EXPECT_TRUE(auth.authenticate(tx).ok());
}

TEST(AuthenticatorTest, TheCacheIsBoundedAndEvictsTheOldestFirst) {
    TxAuthenticator auth(3);
    std::vector<std::string> txs;
    for (uint64_t i = 1; i <= 4; ++i)
        txs.push_back(ledger::make_transfer(key_n(1), key_n(2).public_key(), 5, i));
    for (const auto& tx : txs) ASSERT_TRUE(auth.authenticate(tx).ok());
    EXPECT_EQ(auth.stats().entries, 3u);
    EXPECT_EQ(auth.stats().misses, 4u);
    ASSERT_TRUE(auth.authenticate(txs[3]).ok());  // newest: still cached
    EXPECT_EQ(auth.stats().hits, 1u);
    ASSERT_TRUE(auth.authenticate(txs[0]).ok());  // oldest: evicted, judged again
    EXPECT_EQ(auth.stats().misses, 5u);
    EXPECT_EQ(auth.stats().entries, 3u);
}

TEST(AuthenticatorTest, ConcurrentCallersAgree) {
    TxAuthenticator auth(64);
    std::vector<std::string> txs;
    for (uint64_t i = 1; i <= 32; ++i)
        txs.push_back(ledger::make_transfer(key_n(1), key_n(2).public_key(), 5, i));
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (const auto& tx : txs)
                if (!auth.authenticate(tx).ok()) ++failures;
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(auth.stats().hits + auth.stats().misses, 4u * 32u);
    EXPECT_EQ(auth.stats().entries, 32u);
}

}  // namespace
}  // namespace tally::node
