// SHA-256 through OpenSSL's EVP interface, and hex helpers.
//
// Trusts OpenSSL. A failing EVP call here can only mean memory exhaustion or a broken
// OpenSSL build, so it is treated as a broken invariant (abort), not an operating error.
#include "crypto/hash.h"

#include <openssl/evp.h>
#include <sodium.h>

#include <memory>

#include "crypto/assert.h"

namespace tally::crypto {
namespace {

// The SHA-256 implementation, fetched once. OpenSSL 3 would otherwise look the algorithm
// up again on every EVP_DigestInit_ex, which costs more than hashing a short message.
const EVP_MD* sha256_md() {
    static const EVP_MD* const md = [] {
        const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
        return fetched != nullptr ? fetched : EVP_sha256();
    }();
    return md;
}

EVP_MD_CTX* as_ctx(void* p) { return static_cast<EVP_MD_CTX*>(p); }

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

KeyedBytesHash::KeyedBytesHash() {
    static_assert(crypto_shorthash_KEYBYTES == sizeof(key_) && crypto_shorthash_BYTES == sizeof(uint64_t));
    TALLY_ASSERT(sodium_init() >= 0);  // 1 when done already
    randombytes_buf(key_.data(), key_.size());
}

size_t KeyedBytesHash::hash(const uint8_t* data, size_t size) const noexcept {
    uint64_t out = 0;
    crypto_shorthash(reinterpret_cast<unsigned char*>(&out), data, size, key_.data());
    return static_cast<size_t>(out);
}

Hash sha256(std::string_view data) {
    // One context per thread, reused: allocating a context per call costs as much as hashing
    // a short message, and short messages (Merkle nodes, ids) are the common case.
    thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(
        EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    TALLY_ASSERT(ctx != nullptr);
    Hash out{};
    unsigned int out_len = 0;
    TALLY_ASSERT(EVP_DigestInit_ex(ctx.get(), sha256_md(), nullptr) == 1);
    TALLY_ASSERT(EVP_DigestUpdate(ctx.get(), data.data(), data.size()) == 1);
    TALLY_ASSERT(EVP_DigestFinal_ex(ctx.get(), out.data(), &out_len) == 1);
    TALLY_ASSERT(out_len == out.size());
    return out;
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
    TALLY_ASSERT(ctx_ != nullptr);
    TALLY_ASSERT(EVP_DigestInit_ex(as_ctx(ctx_), sha256_md(), nullptr) == 1);
}

Sha256::~Sha256() { EVP_MD_CTX_free(as_ctx(ctx_)); }

Sha256& Sha256::update(std::string_view data) {
    TALLY_ASSERT(EVP_DigestUpdate(as_ctx(ctx_), data.data(), data.size()) == 1);
    return *this;
}

Sha256& Sha256::update(const Hash& h) { return update(as_bytes(h)); }

Sha256& Sha256::update_u64(uint64_t v) {
    std::array<uint8_t, 8> be{};
    for (size_t i = 0; i < be.size(); ++i) be[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
    return update(as_bytes(be));
}

Hash Sha256::finish() {
    Hash out{};
    unsigned int out_len = 0;
    TALLY_ASSERT(EVP_DigestFinal_ex(as_ctx(ctx_), out.data(), &out_len) == 1);
    TALLY_ASSERT(out_len == out.size());
    // Start over, so that a (mistaken) further use hashes from scratch rather than failing.
    TALLY_ASSERT(EVP_DigestInit_ex(as_ctx(ctx_), sha256_md(), nullptr) == 1);
    return out;
}

std::string to_hex(std::string_view bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.resize(2 * bytes.size());
    for (size_t i = 0; i < bytes.size(); ++i) {
        auto b = static_cast<uint8_t>(bytes[i]);
        out[2 * i] = kDigits[b >> 4];
        out[2 * i + 1] = kDigits[b & 0x0f];
    }
    return out;
}

Result<std::string> from_hex(std::string_view hex) {
    if (hex.size() % 2 != 0)
        return make_error("bad_hex", "odd number of hex digits (" + std::to_string(hex.size()) + ")");
    std::string out;
    out.resize(hex.size() / 2);
    for (size_t i = 0; i < out.size(); ++i) {
        int hi = hex_value(hex[2 * i]);
        int lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return make_error("bad_hex", "not a hex digit at position " +
                                             std::to_string(hi < 0 ? 2 * i : 2 * i + 1));
        out[i] = static_cast<char>((hi << 4) | lo);
    }
    return out;
}

}  // namespace tally::crypto
