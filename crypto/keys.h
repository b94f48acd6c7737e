// Ed25519 keys, signatures and verification (libsodium).
//
// Every signature Tally makes is over a domain tag, then the message:
//     signed bytes = tag || 0x00 || message
// The tag names the kind of thing signed, so a signature made for one purpose can never be
// replayed as another. Tally's messages (transactions included) are all signed envelopes
// (crypto/envelope.h), whose signed bytes also carry the message type.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/result.h"

namespace tally::crypto {

using PublicKey = std::array<uint8_t, 32>;
using Seed = std::array<uint8_t, 32>;
using Signature = std::array<uint8_t, 64>;

inline constexpr std::string_view kDomainEnvelope = "tally/envelope/v1";

// A key pair. The secret is libsodium's 64-byte form (seed || public key).
// It is never logged: there is deliberately no to_string or operator<< for it.
//
// Where the secret lives: not in the KeyPair object (which a copy, a std::vector or a stack
// frame could spread around memory) but in one slot of memory kept for secrets, which every
// copy of the KeyPair shares: its pages are excluded from core dumps (madvise(MADV_DONTDUMP))
// and locked out of swap where the memory-lock limit allows (mlock); the slot is wiped when the
// last copy dies (keys.cc, SecretSlots). Copies are cheap (a reference count).
class TransportSecret;

class KeyPair {
public:
    static KeyPair generate();                 // from the OS's randomness
    static KeyPair from_seed(const Seed& seed);  // deterministic (tests, the simulator)

    const PublicKey& public_key() const { return public_key_; }
    Seed seed() const;

    // Signs tag || 0x00 || message.
    Signature sign(std::string_view domain, std::string_view message) const;
    // Plain Ed25519 over `message` (RFC 8032 test vectors); Tally itself always uses a domain.
    Signature sign_raw(std::string_view message) const;

    ~KeyPair();  // the last copy wipes the secret

    static constexpr size_t kSecretBytes = 64;
    KeyPair(const KeyPair&) = default;
    KeyPair& operator=(const KeyPair&) = default;

private:
    struct Secret;  // the slot holding the secret (keys.cc)
    friend const void* secret_address_for_tests(const KeyPair& key);
    friend class TransportSecret;
    KeyPair() = default;
    PublicKey public_key_{};
    // Invariant: set (never null) in every KeyPair that generate() or from_seed() made.
    std::shared_ptr<const Secret> secret_;
};

// Where `key`'s secret bytes are, for tests that check the memory holding them (its mapping's
// flags in /proc/self/smaps). Never dereference it for anything else.
const void* secret_address_for_tests(const KeyPair& key);

// --- Transport keys (CurveZMQ) ----------------------------------------------------------------
// A replica's transport key is its signing key converted to X25519 (libsodium's
// crypto_sign_ed25519_{pk,sk}_to_curve25519): network.json's public_key of a replica already
// determines its transport public key, so there is nothing new to distribute or keep, and one
// key file. What that costs: the X25519 secret is the Ed25519 signing scalar itself, so the
// copy libzmq keeps for a socket's life (ordinary heap memory) is as sensitive as the key file.
using CurveKey = std::array<uint8_t, 32>;

// The X25519 public key of the replica whose Ed25519 public key is `signing_key`. Error
// "invalid_key" for a key that is not a point of the main subgroup (never one KeyPair made).
Result<CurveKey> transport_public_key(const PublicKey& signing_key);

// An X25519 secret in a buffer wiped (sodium_memzero) when it dies: hand data() to libzmq
// (which copies it) and let it go. Neither copied nor moved, never logged.
class TransportSecret {
public:
    // `key`'s transport secret (the matching public key is transport_public_key(key.public_key())).
    explicit TransportSecret(const KeyPair& key);
    // A fresh random (ephemeral) pair; its public key goes to `public_key`.
    explicit TransportSecret(CurveKey& public_key);
    ~TransportSecret();
    TransportSecret(const TransportSecret&) = delete;
    TransportSecret& operator=(const TransportSecret&) = delete;

    const uint8_t* data() const { return bytes_.data(); }
    static constexpr size_t size() { return 32; }

private:
    std::array<uint8_t, 32> bytes_{};
};

// --- Pairwise keys (Raft's messages between replicas) ------------------------------------------
// A 32-byte key only two replicas can compute: BLAKE2b-256, keyed by their X25519 agreement
// (each one's signing key converted, as the transport keys above), of a domain tag and both
// public keys in ascending order, so that either end derives the same key. Under Raft a replica
// authenticates what it sends a peer with a MAC under this key instead of a signature
// (crypto/envelope.h, seal_for_peer): Raft keeps no certificates, so no third party ever checks
// a peer's message, and a MAC proves the sender to the one receiver at a hundredth of an
// Ed25519 verification's cost. Wiped when it dies; never logged.
class PairwiseKey {
public:
    // Error "invalid_key" for a peer key that is no point of the main subgroup, or that yields
    // no shared secret (a small-order point); `peer` equal to self's own key is allowed.
    static Result<PairwiseKey> derive(const KeyPair& self, const PublicKey& peer);
    PairwiseKey(const PairwiseKey&) = default;
    PairwiseKey& operator=(const PairwiseKey&) = default;
    ~PairwiseKey();

    const uint8_t* data() const { return bytes_.data(); }
    static constexpr size_t size() { return 32; }

private:
    PairwiseKey() = default;
    std::array<uint8_t, 32> bytes_{};
};

// The key `self` shares with each of `replicas` (by index): none for its own key, or for a key
// that derives none (a peer that cannot have made a MAC either; a signature serves there).
std::vector<std::optional<PairwiseKey>> pairwise_keys(const KeyPair& self,
                                                      const std::vector<PublicKey>& replicas);

// True when `signature` is `key`'s signature of tag || 0x00 || message.
bool verify(const PublicKey& key, std::string_view domain, std::string_view message,
            const Signature& signature);
bool verify_raw(const PublicKey& key, std::string_view message, const Signature& signature);
// How many signatures this thread has checked (verify and verify_raw): what a test counts to
// show that input is refused before it costs a signature check, without timing anything.
uint64_t verifications_on_this_thread();

// --- Simulator only -------------------------------------------------------------------------
// A process-wide switch for the deterministic simulator (tests/sim), off by default; tallyd,
// the client and every other test never set it. When on, KeyPair::sign makes, and verify
// checks, a MAC instead of an Ed25519 signature: keyed BLAKE2b-512 of the signed bytes under
// (the signer's public key, a constant of this file) — two orders of magnitude cheaper, so the
// simulator explores more schedules. It is no signature (anyone holding the public key and
// this code could compute it), but inside the simulator nothing can: simulated traitors sign
// only through their own KeyPair, so none makes one for another identity. A MAC never verifies
// as an Ed25519 signature and vice versa. The constant, not a random secret, keeps a seed's
// run byte-for-byte the same in every process (batch digests cover the signatures). Set it
// before any signing or verifying starts, never while other threads sign or verify.
namespace simulator_only {
void use_mac_signatures(bool on);
bool mac_signatures();
}  // namespace simulator_only

// An account id / replica key in the CLI: 64 lower-case hex digits.
std::string key_to_hex(const PublicKey& key);
Result<PublicKey> key_from_hex(std::string_view hex);

}  // namespace tally::crypto
