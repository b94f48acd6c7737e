// Ledger benchmark: applying a block of 1,000 transfers to a ledger in a temporary FILE, as a
// replica does (WAL, synchronous=FULL: one fsync per block). micro.cc has the in-memory
// variant and the main(). Read "transfers/s": per CPU-second for the plain runs, per
// wall-clock second (fsync included) for the /real_time runs.
//
// Args: {verify, passive accounts}. verify 0 checks every signature (Verify::kCheck), 1 trusts
// them (Verify::kTrusted, as after consensus). Passive accounts only make the account table
// (and so the per-block state digest) bigger.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "crypto/keys.h"
#include "ledger/state.h"
#include "ledger/tx.h"

namespace tally {
namespace {

constexpr uint32_t kSenders = 1000;
constexpr uint32_t kBlockTransfers = 1000;

crypto::KeyPair sender_key(uint32_t i) {
    crypto::Seed seed{};
    for (size_t b = 0; b < 4; ++b) seed[b] = static_cast<uint8_t>(i >> (8 * b));
    seed[31] = 0x1e;
    return crypto::KeyPair::from_seed(seed);
}

// A temporary directory for one run, removed with the ledger in it.
class ScratchDir {
  public:
    ScratchDir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "tally-ledger-bench-XXXXXX").string();
        if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
    }
    ~ScratchDir() {
        std::error_code ignored;
        if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
    }
    bool ok() const { return !path_.empty(); }
    std::string file(const char* name) const { return (path_ / name).string(); }

  private:
    std::filesystem::path path_;
};

void BM_LedgerFileApplyBlock1000Transfers(benchmark::State& state) {
    const auto verify = state.range(0) == 0 ? ledger::Verify::kCheck : ledger::Verify::kTrusted;
    const auto passive = static_cast<uint32_t>(state.range(1));
    std::mt19937_64 rng(1);

    std::vector<crypto::KeyPair> senders;
    ledger::Genesis genesis;
    for (uint32_t i = 0; i < kSenders; ++i) {
        senders.push_back(sender_key(i));
        genesis.accounts.push_back({senders.back().public_key(), 1'000'000'000, 0});
    }
    std::vector<crypto::PublicKey> recipients;
    for (const auto& sender : senders) recipients.push_back(sender.public_key());
    for (uint32_t i = 0; i < passive; ++i) {
        crypto::PublicKey key{};
        for (auto& byte : key) byte = static_cast<uint8_t>(rng());
        genesis.accounts.push_back({key, 1, 0});
        recipients.push_back(key);
    }

    ScratchDir dir;
    if (!dir.ok()) {
        state.SkipWithError("cannot make a temporary directory");
        return;
    }
    auto opened = ledger::State::open(dir.file("ledger.db"), genesis);
    if (!opened.ok()) {
        state.SkipWithError(("cannot open ledger: " + opened.error().message).c_str());
        return;
    }
    std::unique_ptr<ledger::State> ledger_state = std::move(*opened);

    std::vector<uint64_t> nonces(kSenders, 0);
    std::vector<std::string> batch;
    for (auto _ : state) {
        state.PauseTiming();
        batch.clear();
        for (uint32_t t = 0; t < kBlockTransfers; ++t) {
            const uint32_t from = static_cast<uint32_t>(rng() % kSenders);
            size_t to = rng() % recipients.size();
            if (to == from) to = (to + 1) % recipients.size();
            batch.push_back(ledger::make_transfer(senders[from], recipients[to], 1 + rng() % 1000,
                                                  ++nonces[from]));
        }
        const uint64_t seq = ledger_state->last_seq() + 1;
        state.ResumeTiming();

        auto block = ledger_state->apply_block(seq, 0, batch, verify);
        if (!block.ok()) {
            state.SkipWithError(("apply_block failed: " + block.error().message).c_str());
            break;
        }
        benchmark::DoNotOptimize(block);
    }
    state.counters["transfers/s"] = benchmark::Counter(
        static_cast<double>(state.iterations()) * kBlockTransfers, benchmark::Counter::kIsRate);
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kBlockTransfers);
}
BENCHMARK(BM_LedgerFileApplyBlock1000Transfers)
    ->ArgNames({"trusted", "passive"})
    ->Args({1, 0})
    ->Args({1, 100'000})
    ->Args({0, 0})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LedgerFileApplyBlock1000Transfers)
    ->ArgNames({"trusted", "passive"})
    ->Args({1, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace tally

namespace tally {
namespace {

// Committed transfers/s against the size of the ledger: the same workload (blocks of
// `block` transfers among 1,000 active senders, as a replica applies them, Durability::kDeferred)
// on a ledger of 1,000 accounts and on one of 1,000,000. The per-block state digest must cost
// what the block touched, not what the ledger holds: the two rates should match within noise.
// Args: {accounts, block, file}: file 1 keeps the ledger in a temporary file (as a replica
// does), 0 in memory (SQLite ":memory:": what is left without the disk's B-tree pages).
// Run with --benchmark_repetitions=N to get medians.
void BM_LedgerCommittedTransfersBySize(benchmark::State& state) {
    const auto accounts = static_cast<uint32_t>(state.range(0));
    const auto block_transfers = static_cast<uint32_t>(state.range(1));
    const bool in_file = state.range(2) != 0;
    std::mt19937_64 rng(7);
    std::vector<crypto::KeyPair> senders;
    ledger::Genesis genesis;
    for (uint32_t i = 0; i < kSenders; ++i) {
        senders.push_back(sender_key(i));
        genesis.accounts.push_back({senders.back().public_key(), 1'000'000'000, 0});
    }
    for (uint32_t i = kSenders; i < accounts; ++i) {
        crypto::PublicKey key{};
        for (auto& byte : key) byte = static_cast<uint8_t>(rng());
        genesis.accounts.push_back({key, 1, 0});
    }
    ScratchDir dir;
    if (!dir.ok()) {
        state.SkipWithError("cannot make a temporary directory");
        return;
    }
    auto opened = ledger::State::open(in_file ? dir.file("ledger.db") : std::string(":memory:"),
                                      genesis, ledger::State::Durability::kDeferred);
    if (!opened.ok()) {
        state.SkipWithError(("cannot open ledger: " + opened.error().message).c_str());
        return;
    }
    std::unique_ptr<ledger::State> ledger_state = std::move(*opened);
    std::vector<uint64_t> nonces(kSenders, 0);
    std::vector<std::string> batch;
    for (auto _ : state) {
        state.PauseTiming();
        batch.clear();
        for (uint32_t t = 0; t < block_transfers; ++t) {
            const uint32_t from = static_cast<uint32_t>(rng() % kSenders);
            uint32_t to = static_cast<uint32_t>(rng() % kSenders);
            if (to == from) to = (to + 1) % kSenders;
            batch.push_back(ledger::make_transfer(senders[from], senders[to].public_key(), 1,
                                                  ++nonces[from]));
        }
        const uint64_t seq = ledger_state->last_seq() + 1;
        state.ResumeTiming();
        auto block = ledger_state->apply_block(seq, 0, batch, ledger::Verify::kTrusted);
        if (!block.ok()) {
            state.SkipWithError(("apply_block failed: " + block.error().message).c_str());
            break;
        }
        benchmark::DoNotOptimize(block);
    }
    state.counters["transfers/s"] = benchmark::Counter(
        static_cast<double>(state.iterations()) * block_transfers, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LedgerCommittedTransfersBySize)
    ->ArgNames({"accounts", "block", "file"})
    ->Args({1'000, 64, 1})
    ->Args({1'000'000, 64, 1})
    ->Args({1'000, 64, 0})
    ->Args({1'000'000, 64, 0})
    ->Args({1'000, 1, 1})  // one client's block: what a block costs beyond its transfers
    ->Args({1'000, 1, 0})
    ->Unit(benchmark::kMillisecond);

// What a replica pays at each checkpoint to keep the state for peers that may fetch it
// (State::snapshot_point), against the size of the ledger (in memory; the accounts only).
void BM_LedgerSnapshotPoint(benchmark::State& state) {
    const auto accounts = static_cast<uint64_t>(state.range(0));
    ledger::Genesis genesis;
    genesis.ballast = {accounts, 1};
    auto opened = ledger::State::open(":memory:", genesis);
    if (!opened.ok()) {
        state.SkipWithError(("cannot open ledger: " + opened.error().message).c_str());
        return;
    }
    for (auto _ : state) benchmark::DoNotOptimize((*opened)->snapshot_point());
}
BENCHMARK(BM_LedgerSnapshotPoint)->ArgNames({"accounts"})->Arg(1'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tally
