// The accounts a ledger holds, in memory: the table a block reads and changes (AccountTable),
// the Merkle tree of their digest (AccountTree), and the pages a checkpoint's snapshot shares
// with the table (AccountPages). Internal to the ledger library (state.cc, snapshot.cc); the digest's
// definition is part of the wire format (state.h, digest_accounts).
// Threads: an AccountTable is one thread's; AccountPages, once shared, are read-only.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "crypto/assert.h"
#include "crypto/hash.h"
#include "ledger/account.h"
#include "ledger/state.h"

namespace tally::ledger {

inline bool key_less(const Account& a, const crypto::PublicKey& key) { return a.key < key; }

// The accounts digest is the root of a Merkle tree of fixed shape over 2^16 buckets, a
// bucket holding the accounts whose key starts with its 16 bits (so buckets in index order are
// accounts in key order):
//   leaf(b)   = 32 zero bytes if bucket b is empty, else
//               SHA-256(0x00 || for each account of b by key: key || balance || nonce)
//   node(l,r) = 32 zero bytes if l and r are both zero, else SHA-256(0x01 || l || r)
// (integers 8 bytes big-endian). Why: a block rehashes only the buckets it touched and their
// 16 ancestors, so its cost does not grow with the number of accounts in the ledger (with a
// million accounts a bucket holds about 15). Before, every block hashed every account.
// Empty subtrees hash to zero, so a small ledger costs little to build too.
inline constexpr size_t kDigestBucketBits = 16;
inline constexpr size_t kDigestBuckets = size_t{1} << kDigestBucketBits;

inline size_t bucket_of(const crypto::PublicKey& key) {
    return (static_cast<size_t>(key[0]) << 8) | static_cast<size_t>(key[1]);
}

// leaf(b) above, of `count` accounts sorted by key.
crypto::Hash digest_bucket(const Account* accounts, size_t count);

// The tree above, in heap layout (node 1 is the root, bucket b's leaf is node
// kDigestBuckets + b; 4 MiB when full) and brought up to date lazily: leaves change, and root()
// rehashes only the ancestors of those that changed. Kept in pages of kTreePageNodes nodes,
// each allocated at its first write (a missing page reads as zero, an empty subtree's hash):
// a small ledger touches a few dozen pages instead of clearing 4 MiB, which cost a replica's
// start and each digest_accounts() more than all its blocks (the simulator makes thousands).
class AccountTree {
  public:
    AccountTree() : pages_(2 * kDigestBuckets / kTreePageNodes) {}

    void set_leaf(size_t bucket, const crypto::Hash& leaf) {
        set(kDigestBuckets + bucket, leaf);
        changed_.push_back(kDigestBuckets + bucket);
    }

    crypto::Hash root() {
        std::vector<size_t> level = std::move(changed_);
        changed_.clear();
        for (size_t depth = 0; depth < kDigestBucketBits && !level.empty(); ++depth) {
            for (size_t& i : level) i /= 2;
            std::sort(level.begin(), level.end());
            level.erase(std::unique(level.begin(), level.end()), level.end());
            for (size_t i : level) set(i, node(get(2 * i), get(2 * i + 1)));
        }
        return get(1);
    }

  private:
    static constexpr size_t kTreePageNodes = 64;  // 2 KiB
    using Page = std::array<crypto::Hash, kTreePageNodes>;

    const crypto::Hash& get(size_t i) const {
        static const crypto::Hash kZero{};
        const auto& page = pages_[i / kTreePageNodes];
        return page ? (*page)[i % kTreePageNodes] : kZero;
    }
    void set(size_t i, const crypto::Hash& value) {
        auto& page = pages_[i / kTreePageNodes];
        if (!page) {
            if (value == crypto::Hash{}) return;  // reads as zero already
            page = std::make_unique<Page>();      // value-initialised: all zero
        }
        (*page)[i % kTreePageNodes] = value;
    }

    static crypto::Hash node(const crypto::Hash& left, const crypto::Hash& right) {
        static const crypto::Hash kZero{};
        if (left == kZero && right == kZero) return kZero;
        // One-shot over a buffer: crypto::sha256 reuses its context, where a Sha256 object
        // allocates one, which costs as much as hashing these 65 bytes.
        std::array<char, 65> bytes{};
        bytes[0] = 1;
        std::memcpy(bytes.data() + 1, left.data(), 32);
        std::memcpy(bytes.data() + 33, right.data(), 32);
        return crypto::sha256(std::string_view(bytes.data(), bytes.size()));
    }

    std::vector<std::unique_ptr<Page>> pages_;
    std::vector<size_t> changed_;  // node indices of leaves changed since the last root()
};

// The in-memory accounts, in their digest buckets (each sorted by key: binary-search lookups,
// and a bucket's digest streams through contiguous memory), plus the accounts the block in
// progress created, kept aside and merged in when the block's transactions are done.
// Remembers every account a block touches as it was before, so that a failed block can be
// undone, and which buckets changed, so that digest() rehashes only those. The buckets are
// kept in pages of kBucketsPerPage, each allocated when an account first lands in it (a small
// ledger does not construct and walk 2^16 empty buckets). A snapshot (State::snapshot_point)
// shares the pages as they are; the table copies a page the first time it changes one that a
// snapshot holds, so that a checkpoint costs a few thousand pointers, not a copy of every
// account (at a million accounts, 48 MB and ~40 ms per checkpoint per replica).
inline constexpr size_t kBucketsPerPage = 16;
using AccountPage = std::array<std::vector<Account>, kBucketsPerPage>;

struct AccountPages {
    std::vector<std::shared_ptr<const AccountPage>> pages;  // null: every bucket of it empty
    // Every account after `after` (from the first if null) in key order, while visit returns true.
    template <typename Visit>
    void for_each_after(const crypto::PublicKey* after, Visit visit) const {
        size_t first_bucket = after ? bucket_of(*after) : 0;
        for (size_t p = first_bucket / kBucketsPerPage; p < pages.size(); ++p) {
            if (!pages[p]) continue;
            for (size_t i = 0; i < kBucketsPerPage; ++i) {
                const size_t b = p * kBucketsPerPage + i;
                if (b < first_bucket) continue;
                const auto& bucket = (*pages[p])[i];
                auto it = bucket.begin();
                if (after && b == first_bucket)
                    it = std::upper_bound(bucket.begin(), bucket.end(), *after,
                                          [](const crypto::PublicKey& key, const Account& a) { return key < a.key; });
                for (; it != bucket.end(); ++it)
                    if (!visit(*it)) return;
            }
        }
    }
};

class AccountTable {
  public:
    AccountTable() : pages_(kDigestBuckets / kBucketsPerPage) {}
    explicit AccountTable(std::vector<Account> sorted) : AccountTable() {
        for (Account& account : sorted) {
            const size_t b = bucket_of(account.key);
            mutable_bucket(b).push_back(account);
            dirty_.insert(dirty_.end(), b);  // sorted: buckets come in increasing order
        }
        size_ = sorted.size();
    }

    const Account* find(const crypto::PublicKey& key) const {
        const auto& bucket = this->bucket(bucket_of(key));
        auto it = std::lower_bound(bucket.begin(), bucket.end(), key, key_less);
        if (it != bucket.end() && it->key == key) return &*it;
        auto fresh = fresh_.find(key);
        return fresh == fresh_.end() ? nullptr : &fresh->second;
    }

    // The account to change (created with balance 0 and nonce 0 if new), its value before the
    // block remembered. The reference stays valid until merge().
    Account& touch(const crypto::PublicKey& key) {
        const Account* found = find(key);
        if (!undo_.contains(key))
            undo_.emplace(key, found ? std::optional<Account>(*found) : std::nullopt);
        const size_t b = bucket_of(key);
        dirty_.insert(b);
        if (auto fresh = fresh_.find(key); fresh != fresh_.end()) return fresh->second;
        if (found == nullptr) return fresh_.emplace(key, Account{key, 0, 0}).first->second;
        auto& bucket = mutable_bucket(b);  // this table's own copy of the page
        return *std::lower_bound(bucket.begin(), bucket.end(), key, key_less);
    }

    // Every account the block in progress touched, with its value before the block.
    const std::map<crypto::PublicKey, std::optional<Account>>& touched() const { return undo_; }

    // The block's transactions are done: its new accounts join their buckets.
    void merge() {
        for (const auto& [key, account] : fresh_) {
            auto& bucket = mutable_bucket(bucket_of(key));
            bucket.insert(std::lower_bound(bucket.begin(), bucket.end(), key, key_less), account);
            ++size_;
        }
        fresh_.clear();
    }
    // The block committed: forget how things were.
    void keep() { undo_.clear(); }
    // The block failed: everything back as it was before it (merged or not).
    void undo() {
        fresh_.clear();
        for (const auto& [key, before] : undo_) {
            auto& bucket = mutable_bucket(bucket_of(key));
            dirty_.insert(bucket_of(key));
            auto it = std::lower_bound(bucket.begin(), bucket.end(), key, key_less);
            const bool present = it != bucket.end() && it->key == key;
            if (!before) {
                if (present) {
                    bucket.erase(it);
                    --size_;
                }
            } else {
                TALLY_ASSERT(present);
                *it = *before;
            }
        }
        undo_.clear();
    }
    bool in_block() const { return !undo_.empty() || !fresh_.empty(); }

    // The accounts digest (the tree above) of the table as it is; only after merge().
    crypto::Hash digest() {
        TALLY_ASSERT(fresh_.empty());
        for (size_t b : dirty_) {
            const auto& accounts = bucket(b);
            tree_.set_leaf(b, digest_bucket(accounts.data(), accounts.size()));
        }
        dirty_.clear();
        return tree_.root();
    }

    size_t size() const { return size_; }
    // Every account, in key order; complete whenever no block is in progress (or after merge()).
    template <typename Visit>
    void for_each(Visit visit) const {
        for (const auto& page : pages_)
            if (page)
                for (const auto& bucket : *page)
                    for (const Account& account : bucket) visit(account);
    }
    std::vector<Account> sorted() const {
        std::vector<Account> out;
        out.reserve(size_);
        for_each([&](const Account& account) { out.push_back(account); });
        return out;
    }

    // The pages as they are, shared from now on (copied here before this table changes one).
    std::shared_ptr<const AccountPages> share() const {
        auto shared = std::make_shared<AccountPages>();
        shared->pages.assign(pages_.begin(), pages_.end());
        return shared;
    }

  private:
    using Page = AccountPage;

    const std::vector<Account>& bucket(size_t b) const {
        static const std::vector<Account> kEmpty;
        const auto& page = pages_[b / kBucketsPerPage];
        return page ? (*page)[b % kBucketsPerPage] : kEmpty;
    }
    std::vector<Account>& mutable_bucket(size_t b) {
        auto& page = pages_[b / kBucketsPerPage];
        if (!page)
            page = std::make_shared<Page>();
        else if (page.use_count() > 1)
            page = std::make_shared<Page>(*page);  // a snapshot holds it: change a copy
        else  // the last snapshot that held it may have been let go on another thread: its
              // reads of the page happen before this thread's writes
            std::atomic_thread_fence(std::memory_order_acquire);
        return (*page)[b % kBucketsPerPage];
    }

    // Invariant: each bucket strictly increasing by key, every key in its own bucket. A page
    // is changed only while this table holds it alone (mutable_bucket).
    std::vector<std::shared_ptr<Page>> pages_;
    size_t size_ = 0;
    std::map<crypto::PublicKey, Account> fresh_;
    std::map<crypto::PublicKey, std::optional<Account>> undo_;
    std::set<size_t> dirty_;  // buckets changed since the last digest()
    AccountTree tree_;
};

}  // namespace tally::ledger
