// The signed envelope: the one wire format between Tally's processes (replica to replica,
// client to replica, replica to client). A fixed binary frame, strictly decoded:
//
//   offset  size  field
//   0       1     version      (kEnvelopeVersion)
//   1       1     type         (MessageType)
//   2       32    sender       (Ed25519 public key)
//   34      4     body length  (big-endian; must equal what follows, less the signature)
//   38      n     body         (protobuf bytes, owned by the module of the type)
//   38+n    64    signature    Ed25519 over kDomainEnvelope || 0x00 || bytes [0, 38+n)
//
// Sign bytes, not structures: open() checks sizes, version, type and sender, then the
// signature, and only then may a caller decode the body. Each rejection has its own
// error code so a replica can count them separately.
//
// A frame of version 2 (kEnvelopeVersionPairwise) is the same but for its last 64 bytes: a MAC,
// keyed BLAKE2b-512 under the sender's and receiver's PairwiseKey (crypto/keys.h) of
// kDomainEnvelopeMac || 0x00 || bytes [0, 38+n), instead of a signature. Only its one receiver
// can check it, and that receiver could have made it: Raft's replicas use it between
// themselves, where nothing is ever shown to a third party (seal_for_peer). open() checks it
// only when given the pair's key; the version byte says which a frame carries.
//
// One exception to what the signature covers: a kBatchReply frame's signature is over its
// batch's Merkle root, under its own domain tag (crypto/reply_batch.h); open() checks it that
// way, so what open() accepts is still what the sender signed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "crypto/keys.h"
#include "crypto/result.h"

namespace tally::crypto {

inline constexpr uint8_t kEnvelopeVersion = 1;
inline constexpr uint8_t kEnvelopeVersionPairwise = 2;  // a MAC where the signature would be
inline constexpr std::string_view kDomainEnvelopeMac = "tally/envelope-mac/v1";
inline constexpr size_t kEnvelopeHeaderBytes = 38;
inline constexpr size_t kEnvelopeOverheadBytes = kEnvelopeHeaderBytes + 64;
// Large enough for a batch of several thousand transfers or a snapshot chunk.
inline constexpr size_t kEnvelopeMaxBytes = 8 * 1024 * 1024;

// Every kind of message. Numbers are part of the wire format: never reuse one.
enum class MessageType : uint8_t {
    // client <-> replica
    kRequest = 1,        // a client's signed transaction or query, to be ordered
    kReply = 2,          // a replica's signed result for one request
    kReadRequest = 3,    // an unordered read (fast / local consistency)
    kReadReply = 4,
    kStatusRequest = 5,  // `tally net status`
    kStatusReply = 6,
    kBatchReply = 7,     // a reply for one request of a batch, under the batch's signed root
    kRedirect = 8,       // a replica that does not order requests names the leader (Raft)
    // PBFT, replica <-> replica
    kPrePrepare = 16,
    kPrepare = 17,
    kCommit = 18,
    kCheckpoint = 19,
    kViewChange = 20,
    kNewView = 21,
    // a replica behind asks a peer for the batches committed from a seq on, with their
    // certificates (and the stable checkpoint, when it is below it), and gets them
    kFetchCommitted = 22,
    kCommitted = 23,
    // state transfer between nodes: a ledger snapshot at a stable checkpoint
    kFetchSnapshot = 24,
    kSnapshot = 25,
    // PBFT: a backup forwards client requests the primary has not proposed (PBFT.md rule 8)
    kForward = 26,
    // PBFT: the primary's signature over a pre-prepare's (view, seq, digest) alone, carried in
    // the pre-prepare; a VIEW-CHANGE's certificates carry it instead of the batch
    kPrePrepareHeader = 27,
    // PBFT: a new primary asks for a batch a certificate names by digest, and gets it
    kFetchBatch = 28,
    kBatch = 29,
    // backfill between nodes: the blocks below a snapshot, with their commit certificates
    kFetchBlocks = 30,
    kBlocks = 31,
    // Raft, replica <-> replica
    kRaftVote = 48,
    kRaftVoteReply = 49,
    kRaftAppend = 50,
    kRaftAppendReply = 51,
    kRaftSnapshot = 52,
    kRaftSnapshotReply = 53,
};

bool is_known_type(uint8_t type);
std::string_view type_name(MessageType type);

struct Envelope {
    MessageType type{};
    PublicKey sender{};
    std::string body;
    Signature signature{};  // or, when `pairwise`, the MAC
    bool pairwise = false;  // version 2: authenticated by a MAC for its one receiver
};

struct OpenOptions {
    size_t max_bytes = kEnvelopeMaxBytes;
    // When set, an envelope from any other key is refused with "wrong_sender".
    std::optional<PublicKey> expected_sender;
    // False only to read the header of an envelope whose signature was checked already.
    bool verify_signature = true;
    // The key a version-2 frame's MAC is checked with (the sender's and this receiver's); a
    // version-2 frame is refused ("bad_signature") when it is not given.
    const PairwiseKey* pairwise_key = nullptr;
};

// Frames and signs `body` as a message of `type` from `key`.
std::string seal(const KeyPair& key, MessageType type, std::string_view body);

// Frames `body` as a message of `type` from `key` for the one peer that shares `pairwise`,
// authenticated by a MAC (version 2).
std::string seal_for_peer(const KeyPair& key, const PairwiseKey& pairwise, MessageType type,
                          std::string_view body);
// True when `mac` is the MAC of a version-2 frame whose bytes before it are `maced`.
bool verify_peer_mac(const PairwiseKey& pairwise, std::string_view maced, const Signature& mac);

// Checks and decodes a frame. Errors, in the order they are checked:
//   "truncated"     shorter than a frame, or than its body length says
//   "oversized"     longer than max_bytes
//   "malformed"     a version neither 1 nor 2, or bytes after the signature
//   "unknown_type"  a type byte that names no MessageType
//   "wrong_sender"  not expected_sender
//   "bad_signature" the signature does not verify (version 2: the MAC, or no pairwise_key;
//                   kBatchReply: or the path does not lead to a root; "malformed" for a body
//                   that is not a batched reply)
Result<Envelope> open(std::string_view bytes, const OpenOptions& options = {});

}  // namespace tally::crypto
