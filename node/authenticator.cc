// TxAuthenticator: strict decode + signature check of transaction envelopes, with a bounded,
// thread-safe verdict cache (see authenticator.h).
#include "node/authenticator.h"

#include <cstring>

namespace tally::node {

TxAuthenticator::TxAuthenticator(size_t cache_entries_max)
    : entries_max_(cache_entries_max == 0 ? 1 : cache_entries_max) {
    cache_.reserve(std::min<size_t>(entries_max_, 1 << 16));
}


TxAuthenticator::Verdict TxAuthenticator::judge(std::string_view payload, Result<ledger::Tx>* tx) {
    Verdict v;
    auto decoded = ledger::decode_tx(payload);
    if (!decoded) {
        v.error_code = "malformed";
        v.error_message = decoded.error().message;
    } else if (!ledger::verify_tx(*decoded)) {
        v.error_code = "bad_signature";
        v.error_message = "the transaction's signature is not its sender's";
    } else {
        v.ok = true;
        v.info.client = decoded->sender;
        v.info.nonce = decoded->nonce;
    }
    if (tx) *tx = std::move(decoded);
    return v;
}

bool TxAuthenticator::lookup(const crypto::Hash& key, Verdict* out) {
    std::lock_guard lock(mutex_);
    auto it = cache_.find(key);
    if (it == cache_.end()) {
        ++misses_;
        return false;
    }
    ++hits_;
    *out = it->second;
    return true;
}

void TxAuthenticator::remember(const crypto::Hash& key, const Verdict& verdict) {
    std::lock_guard lock(mutex_);
    // Two threads may judge the same payload at once; the verdicts are equal, keep the first.
    if (!cache_.emplace(key, verdict).second) return;
    order_.push_back(key);
    while (order_.size() > entries_max_) {
        cache_.erase(order_.front());
        order_.pop_front();
    }
}

Result<bft::RequestInfo> TxAuthenticator::authenticate(std::string_view payload) {
    const crypto::Hash key = crypto::sha256(payload);
    Verdict v;
    if (!lookup(key, &v)) {
        v = judge(payload, nullptr);
        remember(key, v);
    }
    if (!v.ok) return make_error(v.error_code, v.error_message);
    return v.info;
}

Result<ledger::Tx> TxAuthenticator::authenticate_tx(std::string_view payload) {
    const crypto::Hash key = crypto::sha256(payload);
    Verdict v;
    if (lookup(key, &v)) {
        if (!v.ok) return make_error(v.error_code, v.error_message);
        return ledger::decode_tx(payload);  // known good: decode only, no signature check
    }
    Result<ledger::Tx> tx = make_error("malformed", "not decoded");
    v = judge(payload, &tx);
    remember(key, v);
    if (!v.ok) return make_error(v.error_code, v.error_message);
    return tx;
}

TxAuthenticator::Stats TxAuthenticator::stats() const {
    std::lock_guard lock(mutex_);
    return Stats{hits_, misses_, cache_.size()};
}

}  // namespace tally::node
