// The signed envelope frame (envelope.h): sealing and strict opening.
//
// Trusts nothing in the bytes it opens. Every length is checked against the buffer before it
// is used, in an order that cannot overflow, and the signature is checked before anyone may
// look at the body.
#include "crypto/envelope.h"

#include <sodium.h>

#include <cstring>
#include <limits>

#include "crypto/assert.h"
#include "crypto/hash.h"
#include "crypto/reply_batch.h"

namespace tally::crypto {
namespace {

constexpr size_t kVersionAt = 0;
constexpr size_t kTypeAt = 1;
constexpr size_t kSenderAt = 2;
constexpr size_t kLengthAt = 34;
constexpr size_t kSignatureBytes = 64;
static_assert(kLengthAt + 4 == kEnvelopeHeaderBytes);
static_assert(kEnvelopeHeaderBytes + kSignatureBytes == kEnvelopeOverheadBytes);

uint8_t byte_at(std::string_view bytes, size_t i) { return static_cast<uint8_t>(bytes[i]); }

uint32_t read_be32(std::string_view bytes, size_t at) {
    return (uint32_t{byte_at(bytes, at)} << 24) | (uint32_t{byte_at(bytes, at + 1)} << 16) |
           (uint32_t{byte_at(bytes, at + 2)} << 8) | uint32_t{byte_at(bytes, at + 3)};
}

std::string short_key(const PublicKey& key) { return key_to_hex(key).substr(0, 16); }

// A kBatchReply's signature is over its batch's root (reply_batch.h), not over the frame.
Status verify_batch_reply(std::string_view body, const PublicKey& sender,
                          const Signature& signature) {
    auto reply = decode_reply_batch(body);
    if (!reply) return reply.error();
    auto statement = reply_batch_claim(*reply);
    if (!statement || !verify_reply_batch(sender, *statement, signature))
        return make_error("bad_signature", "batch_reply envelope from " + short_key(sender) +
                                               " is not under a root it signed");
    return Ok{};
}

}  // namespace

bool is_known_type(uint8_t type) {
    switch (static_cast<MessageType>(type)) {
        case MessageType::kRequest:
        case MessageType::kReply:
        case MessageType::kReadRequest:
        case MessageType::kReadReply:
        case MessageType::kStatusRequest:
        case MessageType::kStatusReply:
        case MessageType::kBatchReply:
        case MessageType::kRedirect:
        case MessageType::kPrePrepare:
        case MessageType::kPrepare:
        case MessageType::kCommit:
        case MessageType::kCheckpoint:
        case MessageType::kViewChange:
        case MessageType::kNewView:
        case MessageType::kFetchCommitted:
        case MessageType::kCommitted:
        case MessageType::kFetchSnapshot:
        case MessageType::kSnapshot:
        case MessageType::kForward:
        case MessageType::kPrePrepareHeader:
        case MessageType::kFetchBatch:
        case MessageType::kBatch:
        case MessageType::kFetchBlocks:
        case MessageType::kBlocks:
        case MessageType::kRaftVote:
        case MessageType::kRaftVoteReply:
        case MessageType::kRaftAppend:
        case MessageType::kRaftAppendReply:
        case MessageType::kRaftSnapshot:
        case MessageType::kRaftSnapshotReply:
            return true;
    }
    return false;
}

std::string_view type_name(MessageType type) {
    switch (type) {
        case MessageType::kRequest: return "request";
        case MessageType::kReply: return "reply";
        case MessageType::kReadRequest: return "read_request";
        case MessageType::kReadReply: return "read_reply";
        case MessageType::kStatusRequest: return "status_request";
        case MessageType::kStatusReply: return "status_reply";
        case MessageType::kBatchReply: return "batch_reply";
        case MessageType::kRedirect: return "redirect";
        case MessageType::kPrePrepare: return "pre_prepare";
        case MessageType::kPrepare: return "prepare";
        case MessageType::kCommit: return "commit";
        case MessageType::kCheckpoint: return "checkpoint";
        case MessageType::kViewChange: return "view_change";
        case MessageType::kNewView: return "new_view";
        // The names before the types were renamed: they label metrics and logs, which keep them.
        case MessageType::kFetchCommitted: return "fetch_state";
        case MessageType::kCommitted: return "state";
        case MessageType::kFetchSnapshot: return "fetch_snapshot";
        case MessageType::kSnapshot: return "snapshot";
        case MessageType::kForward: return "forward";
        case MessageType::kPrePrepareHeader: return "pre_prepare_header";
        case MessageType::kFetchBatch: return "fetch_batch";
        case MessageType::kBatch: return "batch";
        case MessageType::kFetchBlocks: return "fetch_blocks";
        case MessageType::kBlocks: return "blocks";
        case MessageType::kRaftVote: return "raft_vote";
        case MessageType::kRaftVoteReply: return "raft_vote_reply";
        case MessageType::kRaftAppend: return "raft_append";
        case MessageType::kRaftAppendReply: return "raft_append_reply";
        case MessageType::kRaftSnapshot: return "raft_snapshot";
        case MessageType::kRaftSnapshotReply: return "raft_snapshot_reply";
    }
    return "unknown";
}

namespace {

// The frame of `body` with its header and room for the trailer, which the caller fills.
std::string frame(uint8_t version, const KeyPair& key, MessageType type, std::string_view body) {
    // The length field is 32 bits; no Tally message comes near that, so a bigger body is a
    // programmer error, not an operating one.
    TALLY_ASSERT(body.size() <= std::numeric_limits<uint32_t>::max());
    const auto n = static_cast<uint32_t>(body.size());

    std::string out;
    out.resize(kEnvelopeOverheadBytes + body.size());
    out[kVersionAt] = static_cast<char>(version);
    out[kTypeAt] = static_cast<char>(type);
    std::memcpy(out.data() + kSenderAt, key.public_key().data(), key.public_key().size());
    for (size_t i = 0; i < 4; ++i) out[kLengthAt + i] = static_cast<char>(n >> (24 - 8 * i));
    if (!body.empty()) std::memcpy(out.data() + kEnvelopeHeaderBytes, body.data(), body.size());
    return out;
}

Signature peer_mac(const PairwiseKey& pairwise, std::string_view maced) {
    crypto_generichash_state state;
    Signature mac{};
    TALLY_ASSERT(crypto_generichash_init(&state, pairwise.data(), pairwise.size(), mac.size()) == 0);
    const auto update = [&state](std::string_view bytes) {
        crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(bytes.data()),
                                  bytes.size());
    };
    update(kDomainEnvelopeMac);
    update(std::string_view("\0", 1));
    update(maced);
    TALLY_ASSERT(crypto_generichash_final(&state, mac.data(), mac.size()) == 0);
    return mac;
}

}  // namespace

std::string seal(const KeyPair& key, MessageType type, std::string_view body) {
    std::string out = frame(kEnvelopeVersion, key, type, body);
    const size_t signed_bytes = kEnvelopeHeaderBytes + body.size();
    Signature sig = key.sign(kDomainEnvelope, std::string_view(out.data(), signed_bytes));
    std::memcpy(out.data() + signed_bytes, sig.data(), sig.size());
    return out;
}

std::string seal_for_peer(const KeyPair& key, const PairwiseKey& pairwise, MessageType type,
                          std::string_view body) {
    std::string out = frame(kEnvelopeVersionPairwise, key, type, body);
    const size_t maced = kEnvelopeHeaderBytes + body.size();
    Signature mac = peer_mac(pairwise, std::string_view(out.data(), maced));
    std::memcpy(out.data() + maced, mac.data(), mac.size());
    return out;
}

bool verify_peer_mac(const PairwiseKey& pairwise, std::string_view maced, const Signature& mac) {
    return sodium_memcmp(peer_mac(pairwise, maced).data(), mac.data(), mac.size()) == 0;
}

Result<Envelope> open(std::string_view bytes, const OpenOptions& options) {
    // Sizes first. Subtractions only ever take from a size already known to be larger.
    if (bytes.size() < kEnvelopeOverheadBytes)
        return make_error("truncated", "envelope of " + std::to_string(bytes.size()) +
                                           " bytes is shorter than the minimum of " +
                                           std::to_string(kEnvelopeOverheadBytes));
    const size_t body_len = read_be32(bytes, kLengthAt);
    const size_t room = bytes.size() - kEnvelopeOverheadBytes;
    if (body_len > room)
        return make_error("truncated", "envelope body length says " + std::to_string(body_len) +
                                           " bytes but only " + std::to_string(room) + " follow");
    if (bytes.size() > options.max_bytes)
        return make_error("oversized", "envelope of " + std::to_string(bytes.size()) +
                                           " bytes exceeds the limit of " +
                                           std::to_string(options.max_bytes));
    const uint8_t version = byte_at(bytes, kVersionAt);
    if (version != kEnvelopeVersion && version != kEnvelopeVersionPairwise)
        return make_error("malformed", "envelope version " + std::to_string(version) + " is not " +
                                           std::to_string(kEnvelopeVersion) + " or " +
                                           std::to_string(kEnvelopeVersionPairwise));
    if (body_len < room)
        return make_error("malformed", std::to_string(room - body_len) +
                                           " unexpected bytes after the envelope signature");
    const uint8_t type = byte_at(bytes, kTypeAt);
    if (!is_known_type(type))
        return make_error("unknown_type", "envelope type " + std::to_string(type) + " is not known");

    Envelope env;
    env.type = static_cast<MessageType>(type);
    env.pairwise = version == kEnvelopeVersionPairwise;
    std::memcpy(env.sender.data(), bytes.data() + kSenderAt, env.sender.size());
    if (options.expected_sender && *options.expected_sender != env.sender)
        return make_error("wrong_sender", "envelope from " + short_key(env.sender) +
                                              " where " + short_key(*options.expected_sender) +
                                              " was expected");

    const size_t signed_bytes = kEnvelopeHeaderBytes + body_len;
    std::memcpy(env.signature.data(), bytes.data() + signed_bytes, env.signature.size());
    if (options.verify_signature && env.pairwise) {
        if (!options.pairwise_key ||
            !verify_peer_mac(*options.pairwise_key, bytes.substr(0, signed_bytes), env.signature))
            return make_error("bad_signature", std::string(type_name(env.type)) + " envelope from " +
                                                   short_key(env.sender) +
                                                   (options.pairwise_key ? " has an invalid MAC"
                                                                         : " carries a MAC, not a signature"));
    } else if (options.verify_signature && env.type == MessageType::kBatchReply) {
        auto checked = verify_batch_reply(bytes.substr(kEnvelopeHeaderBytes, body_len), env.sender,
                                          env.signature);
        if (!checked) return checked.error();
    } else if (options.verify_signature &&
        !verify(env.sender, kDomainEnvelope, bytes.substr(0, signed_bytes), env.signature))
        return make_error("bad_signature", std::string(type_name(env.type)) + " envelope from " +
                                               short_key(env.sender) +
                                               " has an invalid signature");

    env.body.assign(bytes.substr(kEnvelopeHeaderBytes, body_len));
    return env;
}

}  // namespace tally::crypto
