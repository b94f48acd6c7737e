// Batch-signed replies: one Ed25519 signature vouches for every reply of an executed batch.
//
// A replica that executed a batch has one reply per request to send. Instead of signing each,
// it hashes the replies into an RFC 6962 Merkle tree (crypto/merkle.h), signs the root once,
// and sends each client its reply with the reply's audit path and the root's signature. The
// frame is an envelope frame (crypto/envelope.h) of type kBatchReply:
//
//   offset  size  field
//   0       38    envelope header: version, type = kBatchReply, sender, body length
//   38      n     body:
//                   8    batch   (big-endian; the batch's sequence number)
//                   4    index   (big-endian; this reply's place among the batch's replies)
//                   4    count   (big-endian; the batch's replies, >= 1)
//                   1    k       (audit path length, <= kReplyBatchPathMax)
//                   32k  audit path, from the leaf's sibling up
//                   ...  the leaf: the reply message's bytes (for Tally, a node::pb::Reply)
//   38+n    64    signature: Ed25519 over kDomainReplyBatch || 0x00 || statement, where
//                 statement = batch (8, BE) || count (4, BE) || root (32) and
//                 root = merkle_root(SHA-256 of each leaf, in index order)
//
// The signed bytes are not the frame's: the frame's header and path are unsigned, but the
// sender is checked against the expected key, and a changed leaf, path, index or count leads
// to another root, whose signature does not verify. The domain tag is distinct from every
// other tag Tally signs under (kDomainEnvelope), so a root signature can never pass for an
// envelope's, nor the reverse.
//
// Trusts nothing in a frame it decodes; a caller may cache statements whose signature it
// already verified (the statement binds the root, so a cached one vouches for any reply whose
// path leads to it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/envelope.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/result.h"

namespace tally::crypto {

inline constexpr std::string_view kDomainReplyBatch = "tally/reply-batch/v1";
// A path this long covers 2^32 leaves: more than a batch can hold.
inline constexpr size_t kReplyBatchPathMax = 32;
inline constexpr size_t kReplyBatchStatementBytes = 8 + 4 + 32;

// A decoded kBatchReply body.
struct BatchedReply {
    uint64_t batch = 0;
    uint32_t index = 0;
    uint32_t count = 0;
    std::vector<Hash> path;
    std::string leaf;  // the reply's bytes
};

// The bytes signed (after the domain tag) for a batch's root.
std::string reply_batch_statement(uint64_t batch, uint32_t count, const Hash& root);

// Frames every leaf of a batch under one signature by `key`: out[i] is leaves[i]'s frame.
// Precondition: 1 <= leaves.size() <= UINT32_MAX. Costs one signature and about 3n hashes.
std::vector<std::string> seal_reply_batch(const KeyPair& key, uint64_t batch,
                                          std::span<const std::string> leaves);

// Decodes a kBatchReply body. Error "malformed" (too short, count 0, index >= count, a path
// longer than kReplyBatchPathMax or than the body).
Result<BatchedReply> decode_reply_batch(std::string_view body);

// The statement a decoded reply's path leads to (the root computed from its leaf), or error
// "bad_proof" when the path cannot be one for its index and count. Checks no signature.
Result<std::string> reply_batch_claim(const BatchedReply& reply);

// True when `signature` is `key`'s signature of `statement` under kDomainReplyBatch.
bool verify_reply_batch(const PublicKey& key, std::string_view statement, const Signature& signature);

}  // namespace tally::crypto
