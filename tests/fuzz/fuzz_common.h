// What the fuzz targets share: reading a fuzzer's bytes as a script of records, the fixed keys
// every target and the corpus generator use (the same seeds as the unit tests' harnesses, so a
// corpus file replays the traffic it was recorded from), and a property check that aborts.
//
// A script is a sequence of records, each an op byte and a body:
//     op (1 byte) | length (2 bytes, big-endian) | body (length bytes)
// A record cut short by the end of the input ends the script. The corpus generator
// (fuzz_corpus_gen.cc) writes real traffic in this form; the fuzzer mutates it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bft/engine.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "ledger/tx.h"

namespace tally::fuzz {

// A broken property: print it and abort, which libFuzzer reports as a crash with the input.
#define FUZZ_CHECK(cond)                                                                \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            std::fprintf(stderr, "%s:%d: fuzz property failed: %s\n", __FILE__, __LINE__, \
                         #cond);                                                        \
            std::abort();                                                               \
        }                                                                               \
    } while (0)

inline std::string_view as_view(const uint8_t* data, size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

struct Record {
    uint8_t op = 0;
    std::string_view body;
};

// Reads records off the front of the input.
class Script {
public:
    explicit Script(std::string_view input) : rest_(input) {}
    std::optional<Record> next() {
        if (rest_.size() < 3) return std::nullopt;
        const auto op = static_cast<uint8_t>(rest_[0]);
        const size_t len = (static_cast<size_t>(static_cast<uint8_t>(rest_[1])) << 8) |
                           static_cast<uint8_t>(rest_[2]);
        if (rest_.size() - 3 < len) return std::nullopt;
        Record r{op, rest_.substr(3, len)};
        rest_.remove_prefix(3 + len);
        return r;
    }

private:
    std::string_view rest_;
};

// Appends one record (the corpus generator; bodies longer than 65535 bytes are a bug there).
inline void append_record(std::string& out, uint8_t op, std::string_view body) {
    if (body.size() > 0xffff) {
        std::fprintf(stderr, "append_record: body of %zu bytes\n", body.size());
        std::abort();
    }
    out.push_back(static_cast<char>(op));
    out.push_back(static_cast<char>(body.size() >> 8));
    out.push_back(static_cast<char>(body.size() & 0xff));
    out.append(body);
}

// The replicas' and clients' keys: replica i is key_of(i), clients key_of(100 + c).
inline crypto::KeyPair key_of(uint32_t i) {
    crypto::Seed seed{};
    seed[0] = static_cast<uint8_t>(i + 1);
    seed[1] = 0x5a;
    return crypto::KeyPair::from_seed(seed);
}

inline const std::vector<crypto::KeyPair>& replica_keys() {
    static const std::vector<crypto::KeyPair> keys = [] {
        std::vector<crypto::KeyPair> k;
        for (uint32_t i = 0; i < 4; ++i) k.push_back(key_of(i));
        return k;
    }();
    return keys;
}

inline std::vector<crypto::PublicKey> replica_public_keys() {
    std::vector<crypto::PublicKey> out;
    for (const auto& k : replica_keys()) out.push_back(k.public_key());
    return out;
}

// The ledger's own check of a request (as node/authenticator.h does, without its cache).
class LedgerAuthenticator : public bft::RequestAuthenticator {
public:
    Result<bft::RequestInfo> authenticate(std::string_view payload) override {
        auto tx = ledger::decode_tx(payload);
        if (!tx) return tx.error();
        if (!ledger::verify_tx(*tx)) return make_error("bad_signature", "client signature");
        return bft::RequestInfo{tx->sender, tx->nonce};
    }
};

// The engine targets (fuzz_pbft, fuzz_raft, fuzz_store) and their corpus sign with the
// simulator's MAC scheme (crypto/keys.h, simulator_only): the same engine code, with signing
// and verifying two orders of magnitude cheaper, so the fuzzer runs that many more inputs. The
// fuzzer cannot forge a MAC any more than a signature (it would have to compute a keyed BLAKE2b
// of the bytes); Ed25519 itself, and the envelope around it, are fuzzed by fuzz_envelope.
inline void use_engine_signatures() { crypto::simulator_only::use_mac_signatures(true); }

// The digest a driver reports for an executed seq: the same on every replica (so checkpoints
// become stable in the generator's runs, and again when a target replays them).
inline crypto::Hash executed_digest(uint64_t seq) {
    crypto::Sha256 h;
    h.update(std::string_view("tally/fuzz/executed"));
    h.update_u64(seq);
    return h.finish();
}

// The ops of an engine script (fuzz_pbft, fuzz_raft; the generator records them).
enum EngineOp : uint8_t {
    kOpMessage = 0,  // body: from (1) | type (1) | message body — sealed by replica `from`
    kOpTick = 1,     // body ignored
    kOpClient = 2,   // body: a client's request envelope
    kOpRestored = 3, // body ignored: the state transfer the engine asked for completes
};
inline constexpr uint8_t kEngineOps = 4;

}  // namespace tally::fuzz
