// The signed envelope (crypto/envelope.h), the first decoder every byte from a socket meets.
// Properties: a frame that opens (signature unchecked) is exactly its fields laid out again;
// one that opens with its signature checked and comes from a key we hold is exactly what
// seal() makes of its type and body (Ed25519 signatures are deterministic); a sender other
// than the expected one is refused. A version-2 frame (a pairwise MAC) never opens without the
// pair's key, and one that opens with replica 0's key for its sender is exactly what
// seal_for_peer() makes.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "crypto/envelope.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace tally;
    const std::string_view bytes = fuzz::as_view(data, size);

    crypto::OpenOptions unchecked;
    unchecked.verify_signature = false;
    auto header = crypto::open(bytes, unchecked);
    if (header) {
        std::string again;
        again.push_back(static_cast<char>(header->pairwise ? crypto::kEnvelopeVersionPairwise
                                                           : crypto::kEnvelopeVersion));
        again.push_back(static_cast<char>(header->type));
        again.append(crypto::as_bytes(header->sender));
        const auto n = static_cast<uint32_t>(header->body.size());
        for (int shift = 24; shift >= 0; shift -= 8) again.push_back(static_cast<char>(n >> shift));
        again.append(header->body);
        again.append(crypto::as_bytes(header->signature));
        FUZZ_CHECK(again == bytes);
    }

    auto opened = crypto::open(bytes);
    if (header && header->pairwise) {
        FUZZ_CHECK(!opened && opened.error().code == "bad_signature");
        const auto& self = fuzz::replica_keys()[0];
        for (const auto& key : fuzz::replica_keys()) {
            if (key.public_key() != header->sender || key.public_key() == self.public_key()) continue;
            const auto pairwise = crypto::PairwiseKey::derive(self, key.public_key()).value();
            crypto::OpenOptions with_key;
            with_key.pairwise_key = &pairwise;
            auto maced = crypto::open(bytes, with_key);
            if (maced)
                FUZZ_CHECK(crypto::seal_for_peer(key, pairwise, maced->type, maced->body) == bytes);
        }
        return 0;
    }
    if (opened) {
        FUZZ_CHECK(header.ok());
        FUZZ_CHECK(opened->body == header->body && opened->sender == header->sender);
        if (opened->type != crypto::MessageType::kBatchReply) {
            for (const auto& key : fuzz::replica_keys())
                if (key.public_key() == opened->sender)
                    FUZZ_CHECK(crypto::seal(key, opened->type, opened->body) == bytes);
        }
        crypto::OpenOptions other;
        other.expected_sender = fuzz::replica_keys()[0].public_key();
        other.expected_sender->at(0) ^= 1;
        auto refused = crypto::open(bytes, other);
        FUZZ_CHECK(!refused && refused.error().code == "wrong_sender");
    }
    return 0;
}
