// SHA-256 through OpenSSL's EVP interface, and hex helpers. Byte strings are std::string
// (what protobuf uses); fixed-size values are std::array.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "crypto/result.h"

namespace tally::crypto {

using Hash = std::array<uint8_t, 32>;

// For unordered containers keyed by bytes that someone outside chooses (a transfer's id is
// the hash of bytes its client picked, so a client can grind ids whose first 8 bytes share a
// bucket): SipHash-2-4 (libsodium's crypto_shorthash) under a key drawn at random for each
// hasher, so that no one can aim at a bucket. It changes only where entries sit, never what a
// lookup finds.
class KeyedBytesHash {
public:
    KeyedBytesHash();  // a fresh random key
    template <typename A>
    size_t operator()(const A& bytes) const noexcept {
        return hash(bytes.data(), bytes.size());
    }

private:
    size_t hash(const uint8_t* data, size_t size) const noexcept;
    std::array<uint8_t, 16> key_{};
};

// SHA-256 of `data`.
Hash sha256(std::string_view data);

// Incremental SHA-256: update() any number of times, then finish() once.
class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;

    Sha256& update(std::string_view data);
    Sha256& update(const Hash& h);
    Sha256& update_u64(uint64_t v);  // 8 bytes, big-endian
    Hash finish();

private:
    void* ctx_;  // EVP_MD_CTX*
};

// Lower-case hex of any byte string.
std::string to_hex(std::string_view bytes);
template <size_t N>
std::string to_hex(const std::array<uint8_t, N>& a) {
    return to_hex(std::string_view(reinterpret_cast<const char*>(a.data()), N));
}

// Decodes hex (either case). Error "bad_hex" on an odd length or a non-hex character.
Result<std::string> from_hex(std::string_view hex);

// Decodes exactly N bytes of hex into an array. Error "bad_hex" or "bad_length".
template <size_t N>
Result<std::array<uint8_t, N>> array_from_hex(std::string_view hex) {
    auto bytes = from_hex(hex);
    if (!bytes) return bytes.error();
    if (bytes->size() != N)
        return make_error("bad_length", "expected " + std::to_string(2 * N) + " hex digits, got " +
                                            std::to_string(hex.size()));
    std::array<uint8_t, N> out{};
    for (size_t i = 0; i < N; ++i) out[i] = static_cast<uint8_t>((*bytes)[i]);
    return out;
}

template <size_t N>
std::string_view as_bytes(const std::array<uint8_t, N>& a) {
    return std::string_view(reinterpret_cast<const char*>(a.data()), N);
}

// Copies exactly N bytes into an array. Error "bad_length" otherwise.
template <size_t N>
Result<std::array<uint8_t, N>> array_from_bytes(std::string_view bytes) {
    if (bytes.size() != N)
        return make_error("bad_length", "expected " + std::to_string(N) + " bytes, got " +
                                            std::to_string(bytes.size()));
    std::array<uint8_t, N> out{};
    for (size_t i = 0; i < N; ++i) out[i] = static_cast<uint8_t>(bytes[i]);
    return out;
}

}  // namespace tally::crypto
