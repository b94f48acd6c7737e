// TxAuthenticator: the node's RequestAuthenticator. A request's payload is a ledger
// transaction envelope (ledger/tx.h); authenticating it means decoding it strictly and checking
// the sender's signature, which yields the request's client (the sender) and nonce.
//
// Signature checks are the main CPU cost of a replica, and the same request is seen twice:
// once when a client sends it directly (checked by a worker thread) and again inside the
// primary's pre-prepare (checked on the consensus thread, by the engine). So verdicts are kept
// in a bounded cache keyed by SHA-256 of the whole payload (signature included: a copy with a
// broken signature is a different key). The verdict is a pure function of the bytes, so a
// cached answer is always the answer.
//
// What it trusts: nothing in a payload. Threads: every member is thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "bft/engine.h"
#include "crypto/hash.h"
#include "ledger/tx.h"

namespace tally::node {

class TxAuthenticator final : public bft::RequestAuthenticator {
public:
    static constexpr size_t kDefaultCacheEntries = 100'000;

    // `cache_entries_max` verdicts are kept; the oldest is evicted first (FIFO).
    explicit TxAuthenticator(size_t cache_entries_max = kDefaultCacheEntries);

    // The client (sender) and nonce of a transaction envelope whose signature verifies.
    // Errors: "malformed" (does not decode as a transaction), "bad_signature".
    Result<bft::RequestInfo> authenticate(std::string_view payload) override;

    // The same check, returning the decoded transaction too (for a request's first look,
    // where the caller also needs its id). The verdict is cached like authenticate()'s.
    Result<ledger::Tx> authenticate_tx(std::string_view payload);

    struct Stats {
        uint64_t hits = 0;    // verdicts answered from the cache
        uint64_t misses = 0;  // verdicts computed (a signature check, unless malformed)
        size_t entries = 0;
    };
    Stats stats() const;

private:
    struct Verdict {
        bool ok = false;
        bft::RequestInfo info;
        std::string error_code;  // when !ok
        std::string error_message;
    };

    // Decodes and verifies `payload`; `tx` receives the decoded transaction when it decodes.
    static Verdict judge(std::string_view payload, Result<ledger::Tx>* tx);
    bool lookup(const crypto::Hash& key, Verdict* out);
    void remember(const crypto::Hash& key, const Verdict& verdict);

    const size_t entries_max_;
    mutable std::mutex mutex_;
    std::unordered_map<crypto::Hash, Verdict, crypto::KeyedBytesHash> cache_;  // guarded by mutex_
    std::deque<crypto::Hash> order_;                               // insertion order; guarded
    uint64_t hits_ = 0;                                            // guarded
    uint64_t misses_ = 0;                                          // guarded
};

}  // namespace tally::node
