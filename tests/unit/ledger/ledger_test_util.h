// Helpers shared by the ledger's unit tests: deterministic keys, genesis, a temporary
// directory, and a hand-built transaction body for crafting malformed transactions.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "crypto/envelope.h"
#include "crypto/keys.h"
#include "ledger/ledger.pb.h"
#include "ledger/state.h"
#include "ledger/tx.h"

namespace tally::ledger::testing {

// The key with seed {n, n, ..., n}: the same on every run.
inline crypto::KeyPair key(uint8_t n) {
    crypto::Seed seed{};
    seed.fill(n);
    seed[0] = 0x5e;  // keeps key(0) a valid, non-trivial seed too
    return crypto::KeyPair::from_seed(seed);
}

// Genesis: keys 1..count with `balance` each.
inline Genesis genesis(uint8_t count, uint64_t balance) {
    Genesis g;
    for (uint8_t i = 1; i <= count; ++i)
        g.accounts.push_back(Account{key(i).public_key(), balance, 0});
    return g;
}

inline std::unique_ptr<State> open_memory(const Genesis& g) {
    auto state = State::open(":memory:", g);
    EXPECT_TRUE(state.ok()) << state.error().code << ": " << state.error().message;
    return state.ok() ? std::move(state.value()) : nullptr;
}

inline std::string bytes_of(const crypto::PublicKey& key) {
    return std::string(crypto::as_bytes(key));
}

// A signed request envelope around any TxBody (valid or not).
inline std::string seal_body(const crypto::KeyPair& signer, const pb::TxBody& body) {
    std::string bytes;
    body.SerializeToString(&bytes);
    return crypto::seal(signer, crypto::MessageType::kRequest, bytes);
}

// The same envelope with one signature bit flipped.
inline std::string break_signature(std::string envelope) {
    envelope[envelope.size() - 1] = static_cast<char>(envelope[envelope.size() - 1] ^ 0x01);
    return envelope;
}

// A fresh directory under the system's temporary directory, removed with everything in it.
class TempDir {
  public:
    TempDir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "tally-ledger-XXXXXX").string();
        char* made = mkdtemp(pattern.data());
        EXPECT_NE(made, nullptr);
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string file(const std::string& name) const { return (path_ / name).string(); }

  private:
    std::filesystem::path path_;
};

}  // namespace tally::ledger::testing
