// Micro-benchmarks of the hot paths: signatures, hashing, envelopes, Merkle roots and applying
// a block of transfers to the ledger. Run: build/bin/tally_microbench (add
// --benchmark_repetitions=5 --benchmark_report_aggregates_only=true for medians).
//
// Items/s is the figure to read: signatures per second, envelopes per second, transfers per
// second. Deterministic keys, so runs are comparable.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "crypto/envelope.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/merkle.h"
#include "ledger/state.h"
#include "ledger/tx.h"

namespace tally {
namespace {

crypto::KeyPair key_from_index(uint32_t i) {
    crypto::Seed seed{};
    for (size_t b = 0; b < 4; ++b) seed[b] = static_cast<uint8_t>(i >> (8 * b));
    seed[31] = 0x5a;
    return crypto::KeyPair::from_seed(seed);
}

std::string bytes_of(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 31 + 7);
    return s;
}

// --- signatures -----------------------------------------------------------------------------

void BM_Sign(benchmark::State& state) {
    const crypto::KeyPair key = key_from_index(1);
    const std::string message = bytes_of(200);
    for (auto _ : state) benchmark::DoNotOptimize(key.sign(crypto::kDomainEnvelope, message));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Sign);

void BM_Verify(benchmark::State& state) {
    const crypto::KeyPair key = key_from_index(1);
    const std::string message = bytes_of(200);
    const crypto::Signature sig = key.sign(crypto::kDomainEnvelope, message);
    for (auto _ : state) {
        bool ok = crypto::verify(key.public_key(), crypto::kDomainEnvelope, message, sig);
        benchmark::DoNotOptimize(ok);
        if (!ok) state.SkipWithError("signature did not verify");
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Verify);

// --- hashing --------------------------------------------------------------------------------

void BM_Sha256(benchmark::State& state) {
    const std::string data = bytes_of(static_cast<size_t>(state.range(0)));
    for (auto _ : state) benchmark::DoNotOptimize(crypto::sha256(data));
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Sha256)->Arg(64)->Arg(1 << 20);

void BM_MerkleRoot1000(benchmark::State& state) {
    std::vector<crypto::Hash> leaves;
    for (int i = 0; i < 1000; ++i) leaves.push_back(crypto::sha256(std::to_string(i)));
    for (auto _ : state) benchmark::DoNotOptimize(crypto::merkle_root(leaves));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MerkleRoot1000);

// --- envelopes ------------------------------------------------------------------------------

void BM_EnvelopeSeal(benchmark::State& state) {
    const crypto::KeyPair key = key_from_index(2);
    const std::string body = bytes_of(200);
    for (auto _ : state) benchmark::DoNotOptimize(crypto::seal(key, crypto::MessageType::kPrepare, body));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EnvelopeSeal);

void BM_EnvelopeOpen(benchmark::State& state) {
    const crypto::KeyPair key = key_from_index(2);
    const std::string frame = crypto::seal(key, crypto::MessageType::kPrepare, bytes_of(200));
    for (auto _ : state) {
        auto env = crypto::open(frame);
        if (!env.ok()) state.SkipWithError("envelope did not open");
        benchmark::DoNotOptimize(env);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EnvelopeOpen);

// A transfer's envelope decoded strictly (no signature check): twice per transfer at each
// replica, at admission and at execution.
void BM_DecodeTransfer(benchmark::State& state) {
    const std::string tx =
        ledger::make_transfer(key_from_index(3), key_from_index(4).public_key(), 5, 1);
    if (!ledger::decode_tx(tx).ok()) {
        state.SkipWithError("transfer did not decode");
        return;
    }
    for (auto _ : state) benchmark::DoNotOptimize(ledger::decode_tx(tx));
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeTransfer);

// --- ledger ---------------------------------------------------------------------------------

// Applies blocks of 1,000 transfers to an in-memory ledger: 1,000 senders each send one
// transfer per block to the next sender, so every transfer is valid and the nonces advance.
// Building the signed batch is not timed; CPU time is reported (there is no I/O in memory;
// ledger_bench.cc measures a file ledger with its fsyncs). Arg 0 verifies every signature in
// the ledger (Verify::kCheck); arg 1 trusts them, as a replica does after consensus did.
void BM_ApplyBlock1000Transfers(benchmark::State& state) {
    constexpr uint32_t kSenders = 1000;
    const auto verify = state.range(0) == 0 ? ledger::Verify::kCheck : ledger::Verify::kTrusted;
    std::vector<crypto::KeyPair> senders;
    ledger::Genesis genesis;
    for (uint32_t i = 0; i < kSenders; ++i) {
        senders.push_back(key_from_index(1000 + i));
        genesis.accounts.push_back({senders.back().public_key(), 1'000'000'000, 0});
    }
    auto opened = ledger::State::open(":memory:", genesis);
    if (!opened.ok()) {
        state.SkipWithError(("cannot open ledger: " + opened.error().message).c_str());
        return;
    }
    std::unique_ptr<ledger::State> ledger_state = std::move(*opened);

    uint64_t nonce = 0;
    std::vector<std::string> batch;
    for (auto _ : state) {
        state.PauseTiming();
        ++nonce;
        batch.clear();
        for (uint32_t i = 0; i < kSenders; ++i)
            batch.push_back(ledger::make_transfer(
                senders[i], senders[(i + 1) % kSenders].public_key(), 1, nonce));
        const uint64_t seq = ledger_state->last_seq() + 1;
        state.ResumeTiming();

        auto block = ledger_state->apply_block(seq, 0, batch, verify);
        if (!block.ok()) {
            state.SkipWithError(("apply_block failed: " + block.error().message).c_str());
            break;
        }
        benchmark::DoNotOptimize(block);
    }
    state.SetItemsProcessed(state.iterations() * kSenders);
}
BENCHMARK(BM_ApplyBlock1000Transfers)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tally

BENCHMARK_MAIN();
