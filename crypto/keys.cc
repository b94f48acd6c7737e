// Ed25519 keys, signatures and verification through libsodium.
//
// Trusts libsodium. Signed bytes are always domain || 0x00 || message (keys.h), so the tag
// of one kind of signature can never be confused with that of another. The secret key only
// lives in KeyPair::secret_ and is wiped when a KeyPair dies.
#include "crypto/keys.h"

#include <sodium.h>

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

}  // namespace

KeyPair KeyPair::generate() {
    ensure_sodium();
    KeyPair k;
    TALLY_ASSERT(crypto_sign_keypair(k.public_key_.data(), k.secret_.data()) == 0);
    return k;
}

KeyPair KeyPair::from_seed(const Seed& seed) {
    ensure_sodium();
    KeyPair k;
    TALLY_ASSERT(crypto_sign_seed_keypair(k.public_key_.data(), k.secret_.data(), seed.data()) == 0);
    return k;
}

Seed KeyPair::seed() const {
    Seed out{};
    TALLY_ASSERT(crypto_sign_ed25519_sk_to_seed(out.data(), secret_.data()) == 0);
    return out;
}

Signature KeyPair::sign(std::string_view domain, std::string_view message) const {
    return sign_raw(domain_bytes(domain, message));
}

Signature KeyPair::sign_raw(std::string_view message) const {
    ensure_sodium();
    Signature sig{};
    unsigned long long sig_len = 0;
    TALLY_ASSERT(crypto_sign_detached(sig.data(), &sig_len, as_uchar(message), message.size(),
                                      secret_.data()) == 0);
    TALLY_ASSERT(sig_len == sig.size());
    return sig;
}

KeyPair::~KeyPair() { sodium_memzero(secret_.data(), secret_.size()); }

bool verify(const PublicKey& key, std::string_view domain, std::string_view message,
            const Signature& signature) {
    return verify_raw(key, domain_bytes(domain, message), signature);
}

bool verify_raw(const PublicKey& key, std::string_view message, const Signature& signature) {
    ensure_sodium();
    return crypto_sign_verify_detached(signature.data(), as_uchar(message), message.size(),
                                       key.data()) == 0;
}

std::string key_to_hex(const PublicKey& key) { return to_hex(key); }

Result<PublicKey> key_from_hex(std::string_view hex) { return array_from_hex<32>(hex); }

}  // namespace tally::crypto
