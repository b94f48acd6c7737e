// The ledger's digests (state.h): a block header's hash, the state digest that joins the
// accounts' (account_table.cc, digest_accounts) to the history's, and the history chain over
// the transaction records.
#include "ledger/state.h"

#include <array>
#include <memory>
#include <string_view>

#include "crypto/assert.h"

namespace tally::ledger {

crypto::Hash BlockHeader::hash() const {
    crypto::Sha256 sha;
    // Not the view: replicas may commit one batch in different views (a batch prepared in
    // view v and re-proposed by NEW-VIEW), and must still agree on every block hash.
    sha.update_u64(height).update_u64(seq);
    sha.update(prev_hash).update(tx_root).update(state_digest);
    std::array<char, 4> count = {static_cast<char>(tx_count >> 24),
                                 static_cast<char>(tx_count >> 16),
                                 static_cast<char>(tx_count >> 8), static_cast<char>(tx_count)};
    sha.update(std::string_view(count.data(), count.size()));
    return sha.finish();
}

crypto::Hash combine_digests(const crypto::Hash& accounts, const crypto::Hash& history) {
    return crypto::Sha256().update(accounts).update(history).finish();
}

HistoryChain::HistoryChain(const crypto::Hash& start) : head_(start) {}
HistoryChain::~HistoryChain() = default;

void HistoryChain::add(const TxRecord& record) {
    TALLY_ASSERT(!any_ || record.seq > last_seq_ ||
                 (record.seq == last_seq_ && last_id_ < record.id && open_ != nullptr));
    if (open_ != nullptr && record.seq != open_seq_) digest();
    if (open_ == nullptr) {
        open_ = std::make_unique<crypto::Sha256>();
        open_->update(head_).update_u64(record.seq);
        open_seq_ = record.seq;
    }
    open_->update(record.id).update_u64(static_cast<uint64_t>(record.code)).update_u64(record.value);
    any_ = true;
    last_seq_ = record.seq;
    last_id_ = record.id;
}

crypto::Hash HistoryChain::digest() {
    if (open_ != nullptr) {
        head_ = open_->finish();
        open_.reset();
    }
    return head_;
}

}  // namespace tally::ledger
