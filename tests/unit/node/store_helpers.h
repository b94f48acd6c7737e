// What the consensus store's tests share (store_test.cc, store_binding_test.cc,
// memory_store_test.cc): one definition each, which the sanitizer build's unity batches
// (tests/CMakeLists.txt) also need.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "node/store.h"
#include "node/store_binding.h"

namespace tally::node::store_test {

using Records = std::vector<std::pair<std::string, std::string>>;

inline bft::PersistOp put(std::string key, std::string value) {
    return bft::PersistPut{std::move(key), std::move(value)};
}

// Every record of `store` (none, and a test failure, when it cannot be read).
inline Records load(const Store& store) {
    auto records = store.load_all();
    EXPECT_TRUE(records.ok()) << records.error().message;
    return records.ok() ? *records : Records{};
}

// A ledger of replica "rrr...", id 4242, at `last_seq`.
inline LedgerIdentity ledger_at(uint64_t last_seq, bool created_now = false) {
    LedgerIdentity l;
    l.replica_key = std::string(32, 'r');
    l.ledger_id = 4242;
    l.last_seq = last_seq;
    l.created_now = created_now;
    return l;
}

// The checkpoint margin the binding tests open stores with.
inline constexpr uint64_t kMargin = 32;

}  // namespace tally::node::store_test
