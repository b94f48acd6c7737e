// Batch-signed replies (reply_batch.h): sealing a batch under one signature, and decoding and
// checking one reply of it.
//
// Trusts nothing in a body it decodes: every length is checked against the bytes before use.
#include "crypto/reply_batch.h"

#include <cstring>
#include <limits>

#include "crypto/assert.h"
#include "crypto/merkle.h"

namespace tally::crypto {
namespace {

constexpr size_t kBodyFixedBytes = 8 + 4 + 4 + 1;
constexpr size_t kReplySignatureBytes = 64;
static_assert(kEnvelopeOverheadBytes == kEnvelopeHeaderBytes + kReplySignatureBytes);

void put_be(std::string& out, uint64_t v, size_t bytes) {
    for (size_t i = 0; i < bytes; ++i) out.push_back(static_cast<char>(v >> (8 * (bytes - 1 - i))));
}

uint64_t get_be(std::string_view in, size_t at, size_t bytes) {
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(in[at + i]);
    return v;
}

}  // namespace

std::string reply_batch_statement(uint64_t batch, uint32_t count, const Hash& root) {
    std::string out;
    out.reserve(kReplyBatchStatementBytes);
    put_be(out, batch, 8);
    put_be(out, count, 4);
    out.append(as_bytes(root));
    return out;
}

std::vector<std::string> seal_reply_batch(const KeyPair& key, uint64_t batch,
                                          std::span<const std::string> leaves) {
    TALLY_ASSERT(!leaves.empty() && leaves.size() <= std::numeric_limits<uint32_t>::max());
    const auto count = static_cast<uint32_t>(leaves.size());
    std::vector<Hash> hashes;
    hashes.reserve(leaves.size());
    for (const auto& leaf : leaves) hashes.push_back(sha256(leaf));
    Hash root{};
    const auto paths = merkle_proofs(hashes, &root);
    const Signature signature =
        key.sign(kDomainReplyBatch, reply_batch_statement(batch, count, root));

    std::vector<std::string> frames;
    frames.reserve(leaves.size());
    for (uint32_t i = 0; i < count; ++i) {
        const auto& path = paths[i];
        TALLY_ASSERT(path.size() <= kReplyBatchPathMax);
        const size_t body_bytes = kBodyFixedBytes + 32 * path.size() + leaves[i].size();
        TALLY_ASSERT(body_bytes <= std::numeric_limits<uint32_t>::max());
        std::string frame;
        frame.reserve(kEnvelopeOverheadBytes + body_bytes);
        frame.push_back(static_cast<char>(kEnvelopeVersion));
        frame.push_back(static_cast<char>(MessageType::kBatchReply));
        frame.append(as_bytes(key.public_key()));
        put_be(frame, body_bytes, 4);
        put_be(frame, batch, 8);
        put_be(frame, i, 4);
        put_be(frame, count, 4);
        frame.push_back(static_cast<char>(path.size()));
        for (const Hash& h : path) frame.append(as_bytes(h));
        frame.append(leaves[i]);
        frame.append(as_bytes(signature));
        TALLY_ASSERT(frame.size() == kEnvelopeOverheadBytes + body_bytes);
        frames.push_back(std::move(frame));
    }
    return frames;
}

Result<BatchedReply> decode_reply_batch(std::string_view body) {
    if (body.size() < kBodyFixedBytes)
        return make_error("malformed", "a batched reply of " + std::to_string(body.size()) +
                                           " bytes is shorter than its fixed fields");
    BatchedReply out;
    out.batch = get_be(body, 0, 8);
    out.index = static_cast<uint32_t>(get_be(body, 8, 4));
    out.count = static_cast<uint32_t>(get_be(body, 12, 4));
    const size_t k = static_cast<uint8_t>(body[16]);
    if (out.count == 0 || out.index >= out.count)
        return make_error("malformed", "a batched reply at index " + std::to_string(out.index) +
                                           " of " + std::to_string(out.count));
    if (k > kReplyBatchPathMax || 32 * k > body.size() - kBodyFixedBytes)
        return make_error("malformed", "a batched reply's path of " + std::to_string(k) +
                                           " hashes does not fit");
    out.path.resize(k);
    for (size_t i = 0; i < k; ++i)
        std::memcpy(out.path[i].data(), body.data() + kBodyFixedBytes + 32 * i, 32);
    out.leaf.assign(body.substr(kBodyFixedBytes + 32 * k));
    return out;
}

Result<std::string> reply_batch_claim(const BatchedReply& reply) {
    auto root = merkle_root_from_proof(sha256(reply.leaf), reply.index, reply.count, reply.path);
    if (!root)
        return make_error("bad_proof", "a path of " + std::to_string(reply.path.size()) +
                                           " hashes cannot place leaf " + std::to_string(reply.index) +
                                           " of " + std::to_string(reply.count));
    return reply_batch_statement(reply.batch, reply.count, *root);
}

bool verify_reply_batch(const PublicKey& key, std::string_view statement,
                        const Signature& signature) {
    return verify(key, kDomainReplyBatch, statement, signature);
}

}  // namespace tally::crypto
