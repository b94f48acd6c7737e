// Ed25519 keys, signatures and verification through libsodium.
//
// Trusts libsodium. Signed bytes are always domain || 0x00 || message (keys.h), so the tag
// of one kind of signature can never be confused with that of another. The secret key only
// lives in a KeyPair::Secret (guarded memory, below), wiped when the last KeyPair sharing it dies.
#include "crypto/keys.h"

#include <sodium.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

#include <algorithm>
#include <array>

#include "crypto/assert.h"
#include "crypto/hash.h"

namespace tally::crypto {
namespace {

static_assert(crypto_sign_PUBLICKEYBYTES == sizeof(PublicKey));
static_assert(crypto_sign_SEEDBYTES == sizeof(Seed));
static_assert(crypto_sign_BYTES == sizeof(Signature));
static_assert(crypto_sign_SECRETKEYBYTES == 64);

// libsodium must be initialised once before use; a function-local static makes that
// thread-safe. sodium_init() returns 1 when it had been done already, -1 on failure.
void ensure_sodium() {
    static const bool initialised = sodium_init() >= 0;
    TALLY_ASSERT(initialised);
}

// domain || 0x00 || message, the bytes every domain-separated signature covers.
std::string domain_bytes(std::string_view domain, std::string_view message) {
    std::string out;
    out.reserve(domain.size() + 1 + message.size());
    out.append(domain);
    out.push_back('\0');
    out.append(message);
    return out;
}

const unsigned char* as_uchar(std::string_view s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}

// The simulator's MAC scheme (keys.h, simulator_only). Off unless a simulator turns it on.
bool g_mac_signatures = false;
constexpr std::string_view kMacConstant = "tally/simulator-only/mac/v1:::::";  // 32 bytes

Signature mac(const PublicKey& key, std::string_view message) {
    static_assert(kMacConstant.size() == 32);
    std::array<unsigned char, 64> k{};
    std::copy(key.begin(), key.end(), k.begin());
    std::copy(kMacConstant.begin(), kMacConstant.end(), k.begin() + 32);
    Signature out{};
    TALLY_ASSERT(crypto_generichash(out.data(), out.size(), as_uchar(message), message.size(),
                                    k.data(), k.size()) == 0);
    return out;
}

}  // namespace

// The secret key in libsodium's guarded heap memory. sodium_malloc places it at the end of its
// own page(s), between inaccessible guard pages, and mlocks that page, which on Linux also
// advises the kernel to leave it out of core dumps. mlock can fail (RLIMIT_MEMLOCK, 8 MiB by
// default for a user), and libsodium then carries on without telling, so the MADV_DONTDUMP is
// made here as well, on the page that holds the bytes: the secret never reaches a core dump
// whatever the lock limit. Once the key is written the memory is made read-only: nothing
// writes it again until sodium_free wipes it. Threads sign with it concurrently (reads only).
struct KeyPair::Secret {
    static constexpr size_t kBytes = 64;
    unsigned char* bytes = nullptr;

    Secret() {
        bytes = static_cast<unsigned char*>(sodium_malloc(kBytes));
        TALLY_ASSERT(bytes != nullptr);  // out of memory or address space
        const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
        const uintptr_t first = reinterpret_cast<uintptr_t>(bytes) & ~(page - 1);
        const uintptr_t last = (reinterpret_cast<uintptr_t>(bytes) + kBytes - 1) & ~(page - 1);
        TALLY_ASSERT(::madvise(reinterpret_cast<void*>(first), last - first + page, MADV_DONTDUMP) == 0);
    }
    ~Secret() { sodium_free(bytes); }  // wipes (and unlocks, and unmaps) it
    Secret(const Secret&) = delete;
    Secret& operator=(const Secret&) = delete;
    void make_read_only() { TALLY_ASSERT(sodium_mprotect_readonly(bytes) == 0); }
};

KeyPair KeyPair::generate() {
    ensure_sodium();
    KeyPair k;
    auto secret = std::make_shared<Secret>();
    TALLY_ASSERT(crypto_sign_keypair(k.public_key_.data(), secret->bytes) == 0);
    secret->make_read_only();
    k.secret_ = std::move(secret);
    return k;
}

KeyPair KeyPair::from_seed(const Seed& seed) {
    ensure_sodium();
    KeyPair k;
    auto secret = std::make_shared<Secret>();
    TALLY_ASSERT(crypto_sign_seed_keypair(k.public_key_.data(), secret->bytes, seed.data()) == 0);
    secret->make_read_only();
    k.secret_ = std::move(secret);
    return k;
}

Seed KeyPair::seed() const {
    Seed out{};
    TALLY_ASSERT(crypto_sign_ed25519_sk_to_seed(out.data(), secret_->bytes) == 0);
    return out;
}

const void* secret_address_for_tests(const KeyPair& key) { return key.secret_->bytes; }

Signature KeyPair::sign(std::string_view domain, std::string_view message) const {
    return sign_raw(domain_bytes(domain, message));
}

Signature KeyPair::sign_raw(std::string_view message) const {
    ensure_sodium();
    if (g_mac_signatures) return mac(public_key_, message);
    Signature sig{};
    unsigned long long sig_len = 0;
    TALLY_ASSERT(crypto_sign_detached(sig.data(), &sig_len, as_uchar(message), message.size(),
                                      secret_->bytes) == 0);
    TALLY_ASSERT(sig_len == sig.size());
    return sig;
}

KeyPair::~KeyPair() = default;  // the Secret, when this was its last KeyPair, wipes itself

bool verify(const PublicKey& key, std::string_view domain, std::string_view message,
            const Signature& signature) {
    return verify_raw(key, domain_bytes(domain, message), signature);
}

namespace {
thread_local uint64_t t_verifications = 0;
}  // namespace

uint64_t verifications_on_this_thread() { return t_verifications; }

bool verify_raw(const PublicKey& key, std::string_view message, const Signature& signature) {
    ensure_sodium();
    ++t_verifications;
    if (g_mac_signatures)
        return sodium_memcmp(mac(key, message).data(), signature.data(), signature.size()) == 0;
    return crypto_sign_verify_detached(signature.data(), as_uchar(message), message.size(),
                                       key.data()) == 0;
}

namespace simulator_only {
void use_mac_signatures(bool on) { g_mac_signatures = on; }
bool mac_signatures() { return g_mac_signatures; }
}  // namespace simulator_only

std::string key_to_hex(const PublicKey& key) { return to_hex(key); }

Result<PublicKey> key_from_hex(std::string_view hex) { return array_from_hex<32>(hex); }

}  // namespace tally::crypto
