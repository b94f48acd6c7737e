// Ed25519 keys, signatures and verification through libsodium.
//
// Trusts libsodium. Signed bytes are always domain || 0x00 || message (keys.h), so the tag
// of one kind of signature can never be confused with that of another. The secret key only
// lives in a KeyPair::Secret (a slot of memory kept out of core dumps, below), wiped when the
// last KeyPair sharing it dies.
#include "crypto/keys.h"

#include <sodium.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <mutex>
#include <vector>

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
constexpr std::string_view kDomainPairwise = "tally/pairwise-key/v1";
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

// Where secret keys live: slots of 64 bytes in pages of their own, mapped for secrets only,
// advised out of core dumps (MADV_DONTDUMP) and locked out of swap (mlock, where the memory-lock
// limit allows: a refused lock is not an error, the pages are still left out of dumps). A slot
// is wiped (sodium_memzero) when its key dies and then reused; the pages are kept for the
// process's life (as many as the most keys alive at once need: 64 keys a page).
//
// Not libsodium's sodium_malloc (guard pages, read-only memory): it maps, protects, locks and
// advises pages for every key, about 8 system calls, and keys are made often — the client
// makes one for every query it signs, the simulator its replicas' and clients' for each of
// thousands of schedules. Measured: 200,000 keys made, copied and signed with took 35 s of
// system time with sodium_malloc; with these slots, none to speak of. What the slots keep of
// it: the secret in no ordinary heap or stack memory, out of dumps and swap, wiped after use.
namespace {
class SecretSlots {
public:
    static SecretSlots& instance() {
        static SecretSlots* slots = new SecretSlots();  // never destroyed: keys outlive statics
        return *slots;
    }

    unsigned char* take() {
        std::lock_guard<std::mutex> lock(mu_);
        if (free_.empty()) grow();
        unsigned char* slot = free_.back();
        free_.pop_back();
        return slot;
    }

    void give_back(unsigned char* slot) {
        sodium_memzero(slot, KeyPair::kSecretBytes);
        std::lock_guard<std::mutex> lock(mu_);
        free_.push_back(slot);
    }

private:
    void grow() {
        const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
        void* pages = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        TALLY_ASSERT(pages != MAP_FAILED);  // out of memory
        TALLY_ASSERT(::madvise(pages, page, MADV_DONTDUMP) == 0);
        (void)::mlock(pages, page);  // best effort: RLIMIT_MEMLOCK may refuse it
        auto* bytes = static_cast<unsigned char*>(pages);
        for (size_t at = page; at >= KeyPair::kSecretBytes; at -= KeyPair::kSecretBytes)
            free_.push_back(bytes + at - KeyPair::kSecretBytes);
    }

    std::mutex mu_;
    std::vector<unsigned char*> free_;
};
}  // namespace

// One key's secret, shared by every copy of its KeyPair; given back (wiped) with the last one.
struct KeyPair::Secret {
    unsigned char* bytes = SecretSlots::instance().take();
    Secret() = default;
    ~Secret() { SecretSlots::instance().give_back(bytes); }
    Secret(const Secret&) = delete;
    Secret& operator=(const Secret&) = delete;
};

KeyPair KeyPair::generate() {
    ensure_sodium();
    KeyPair k;
    auto secret = std::make_shared<Secret>();
    TALLY_ASSERT(crypto_sign_keypair(k.public_key_.data(), secret->bytes) == 0);
    k.secret_ = std::move(secret);
    return k;
}

KeyPair KeyPair::from_seed(const Seed& seed) {
    ensure_sodium();
    KeyPair k;
    auto secret = std::make_shared<Secret>();
    TALLY_ASSERT(crypto_sign_seed_keypair(k.public_key_.data(), secret->bytes, seed.data()) == 0);
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

Result<CurveKey> transport_public_key(const PublicKey& signing_key) {
    ensure_sodium();
    CurveKey out{};
    if (crypto_sign_ed25519_pk_to_curve25519(out.data(), signing_key.data()) != 0)
        return make_error("invalid_key", "public key " + key_to_hex(signing_key) +
                                             " is not a valid Ed25519 key (no transport key derives from it)");
    return out;
}

static_assert(crypto_scalarmult_curve25519_BYTES == TransportSecret::size());
static_assert(crypto_box_SECRETKEYBYTES == TransportSecret::size());

TransportSecret::TransportSecret(const KeyPair& key) {
    ensure_sodium();
    TALLY_ASSERT(crypto_sign_ed25519_sk_to_curve25519(bytes_.data(), key.secret_->bytes) == 0);
}

TransportSecret::TransportSecret(CurveKey& public_key) {
    ensure_sodium();
    TALLY_ASSERT(crypto_box_keypair(public_key.data(), bytes_.data()) == 0);
}

TransportSecret::~TransportSecret() { sodium_memzero(bytes_.data(), bytes_.size()); }

Result<PairwiseKey> PairwiseKey::derive(const KeyPair& self, const PublicKey& peer) {
    auto peer_curve = transport_public_key(peer);
    if (!peer_curve) return peer_curve.error();
    const TransportSecret secret(self);
    std::array<uint8_t, crypto_scalarmult_BYTES> shared{};
    if (crypto_scalarmult(shared.data(), secret.data(), peer_curve->data()) != 0)
        return make_error("invalid_key", "public key " + key_to_hex(peer) +
                                             " shares no secret with this replica's key");
    const PublicKey& mine = self.public_key();
    const auto& [low, high] = std::minmax(mine, peer);
    std::string context(kDomainPairwise);
    context.push_back('\0');
    context.append(reinterpret_cast<const char*>(low.data()), low.size());
    context.append(reinterpret_cast<const char*>(high.data()), high.size());
    PairwiseKey key;
    TALLY_ASSERT(crypto_generichash(key.bytes_.data(), key.bytes_.size(), as_uchar(context),
                                    context.size(), shared.data(), shared.size()) == 0);
    sodium_memzero(shared.data(), shared.size());
    return key;
}

PairwiseKey::~PairwiseKey() { sodium_memzero(bytes_.data(), bytes_.size()); }

std::vector<std::optional<PairwiseKey>> pairwise_keys(const KeyPair& self,
                                                      const std::vector<PublicKey>& replicas) {
    std::vector<std::optional<PairwiseKey>> keys;
    for (const PublicKey& replica : replicas) {
        std::optional<PairwiseKey> key;
        if (replica != self.public_key())
            if (auto derived = PairwiseKey::derive(self, replica)) key = *derived;
        keys.push_back(std::move(key));
    }
    return keys;
}

std::string key_to_hex(const PublicKey& key) { return to_hex(key); }

Result<PublicKey> key_from_hex(std::string_view hex) { return array_from_hex<32>(hex); }

}  // namespace tally::crypto
