// The accounts in memory (account_table.h): a bucket's digest, and the whole tree of a list.
#include "ledger/account_table.h"

#include <cstring>
#include <string_view>

namespace tally::ledger {

namespace {

constexpr size_t kDigestChunkAccounts = 64;
constexpr size_t kDigestAccountBytes = 32 + 8 + 8;

void put_be64(uint8_t* out, uint64_t v) {
    for (int i = 7; i >= 0; --i) {
        out[i] = static_cast<uint8_t>(v & 0xff);
        v >>= 8;
    }
}

}  // namespace

crypto::Hash digest_bucket(const Account* accounts, size_t count) {
    if (count == 0) return crypto::Hash{};
    // Serialized into a chunk and hashed a chunk at a time: one SHA-256 update per chunk.
    crypto::Sha256 sha;
    const char leaf_tag = 0;
    sha.update(std::string_view(&leaf_tag, 1));
    std::array<uint8_t, kDigestChunkAccounts * kDigestAccountBytes> chunk{};
    size_t used = 0;
    for (size_t i = 0; i < count; ++i) {
        const Account& account = accounts[i];
        uint8_t* out = chunk.data() + used;
        std::memcpy(out, account.key.data(), 32);
        put_be64(out + 32, account.balance);
        put_be64(out + 40, account.nonce);
        used += kDigestAccountBytes;
        if (used == chunk.size()) {
            sha.update(std::string_view(reinterpret_cast<const char*>(chunk.data()), used));
            used = 0;
        }
    }
    if (used > 0) sha.update(std::string_view(reinterpret_cast<const char*>(chunk.data()), used));
    return sha.finish();
}

crypto::Hash digest_accounts(const std::vector<Account>& sorted_accounts) {
    AccountTree tree;
    size_t start = 0;
    while (start < sorted_accounts.size()) {
        const size_t bucket = bucket_of(sorted_accounts[start].key);
        size_t end = start + 1;
        while (end < sorted_accounts.size() && bucket_of(sorted_accounts[end].key) == bucket) ++end;
        tree.set_leaf(bucket, digest_bucket(sorted_accounts.data() + start, end - start));
        start = end;
    }
    return tree.root();
}

}  // namespace tally::ledger
