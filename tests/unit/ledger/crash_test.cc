// Crash safety: a writer killed with SIGKILL at a random moment leaves whole blocks only.
//
// A child process applies pre-built blocks to a ledger file and reports each block it
// applied through a pipe; the parent kills it after a random number of blocks plus a random
// delay, reopens the file and checks it against a reference ledger fed the same blocks in
// memory. Rounds continue on the same file, so recovery is exercised again and again.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>

#include "ledger/state.h"
#include "ledger_test_util.h"

namespace tally::ledger {
namespace {

using testing::genesis;
using testing::key;
using testing::TempDir;

constexpr uint8_t kAccounts = 16;
constexpr uint64_t kBalance = 1'000'000;
constexpr uint64_t kBlocks = 40;
constexpr size_t kTransfersPerBlock = 150;
constexpr int kRounds = 5;
constexpr auto kDeadline = std::chrono::seconds(30);

// Valid transfers only, so every block changes many accounts.
std::vector<std::vector<std::string>> build_blocks(uint32_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<uint64_t> nonces(kAccounts + 1, 0);
    std::vector<crypto::KeyPair> keys;
    for (uint8_t i = 1; i <= kAccounts; ++i) keys.push_back(key(i));
    std::vector<std::vector<std::string>> blocks(kBlocks);
    for (auto& block : blocks) {
        for (size_t t = 0; t < kTransfersPerBlock; ++t) {
            const size_t from = rng() % kAccounts;
            const size_t to = (from + 1 + rng() % (kAccounts - 1)) % kAccounts;
            block.push_back(make_transfer(keys[from], keys[to].public_key(), 1 + rng() % 100,
                                          ++nonces[from + 1]));
        }
    }
    return blocks;
}

// The child: apply blocks from where the file is until killed (or out of blocks), reporting
// each applied sequence number. Never returns.
[[noreturn]] void writer(const std::string& path,
                         const std::vector<std::vector<std::string>>& blocks, int report) {
    auto opened = State::open(path, genesis(kAccounts, kBalance));
    if (!opened) _exit(2);
    State& state = *opened.value();
    for (uint64_t seq = state.last_seq() + 1; seq <= blocks.size(); ++seq) {
        if (!state.apply_block(seq, 0, blocks[seq - 1], Verify::kTrusted).ok()) _exit(3);
        if (write(report, &seq, sizeof seq) != sizeof seq) _exit(4);
    }
    _exit(0);
}

// Reads the child's reports until it has applied `wanted` blocks, it exits, or the deadline.
// Returns the highest sequence number reported.
uint64_t wait_for_blocks(int report, int wanted, std::chrono::steady_clock::time_point deadline) {
    uint64_t highest = 0;
    for (int got = 0; got < wanted;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        pollfd fd{report, POLLIN, 0};
        if (poll(&fd, 1, static_cast<int>(left.count())) <= 0) continue;
        uint64_t seq = 0;
        ssize_t n = read(report, &seq, sizeof seq);
        if (n != static_cast<ssize_t>(sizeof seq)) break;  // the child exited
        highest = seq;
        ++got;
    }
    return highest;
}

TEST(CrashSafety, AWriterKilledAtARandomMomentLeavesWholeBlocksOnly) {
    const uint32_t seed = 4242;
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    const auto blocks = build_blocks(seed);

    // What every block must look like.
    auto reference = testing::open_memory(genesis(kAccounts, kBalance));
    ASSERT_TRUE(reference);
    std::vector<BlockHeader> expected = {reference->last_block()};
    for (uint64_t seq = 1; seq <= kBlocks; ++seq) {
        auto block = reference->apply_block(seq, 0, blocks[seq - 1], Verify::kTrusted);
        ASSERT_TRUE(block.ok());
        expected.push_back(block->header);
    }

    TempDir dir;
    const std::string path = dir.file("ledger.db");
    uint64_t durable = 0;  // every block up to here was reported applied, or applied here
    for (int round = 0; round < kRounds; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        int pipe_fds[2];
        ASSERT_EQ(pipe(pipe_fds), 0);
        pid_t child = fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
            close(pipe_fds[0]);
            writer(path, blocks, pipe_fds[1]);
        }
        close(pipe_fds[1]);
        const int wanted = 1 + static_cast<int>(rng() % 4);
        const auto delay = std::chrono::microseconds(rng() % 4000);
        uint64_t reported =
            wait_for_blocks(pipe_fds[0], wanted, std::chrono::steady_clock::now() + kDeadline);
        // The fault: SIGKILL somewhere in the middle of a later block (or between blocks).
        std::this_thread::sleep_for(delay);
        kill(child, SIGKILL);
        int status = 0;
        ASSERT_EQ(waitpid(child, &status, 0), child);
        close(pipe_fds[0]);
        ASSERT_TRUE(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0))
            << "the writer failed with exit status " << WEXITSTATUS(status);
        ASSERT_GT(reported, 0u) << "the writer applied no block before the deadline";
        durable = std::max(durable, reported);

        auto reopened = State::open(path, genesis(1, 1));
        ASSERT_TRUE(reopened.ok()) << reopened.error().code << ": " << reopened.error().message;
        State& state = *reopened.value();
        const uint64_t last = state.last_seq();
        ASSERT_GE(last, durable) << "a block reported applied was lost";
        ASSERT_LE(last, kBlocks);
        auto block = state.block(last);
        ASSERT_TRUE(block.has_value());
        EXPECT_EQ(block->hash(), expected[last].hash());
        EXPECT_EQ(state.last_block().hash(), expected[last].hash());
        EXPECT_EQ(combine_digests(digest_accounts(state.accounts()), state.history_digest()),
                  block->state_digest);
        EXPECT_EQ(state.total_balance(), kAccounts * kBalance);
        for (uint64_t h = 1; h <= last; ++h)
            EXPECT_EQ(state.block(h)->prev_hash, expected[h - 1].hash());

        auto again = state.apply_block(last, 0, blocks[last - 1], Verify::kTrusted);
        ASSERT_FALSE(again.ok());
        EXPECT_EQ(again.error().code, "already_applied");
        if (last < kBlocks) {
            auto next = state.apply_block(last + 1, 0, blocks[last], Verify::kTrusted);
            ASSERT_TRUE(next.ok()) << next.error().message;
            EXPECT_EQ(next->header.hash(), expected[last + 1].hash());
            durable = last + 1;
        }
    }
}

}  // namespace
}  // namespace tally::ledger
