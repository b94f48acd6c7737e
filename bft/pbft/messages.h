// PBFT message helpers: batch digests, store keys, decoding an envelope's body into its
// protobuf message. Pure functions; no state.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bft/engine.h"
#include "bft/pbft/pbft.pb.h"
#include "crypto/envelope.h"
#include "crypto/hash.h"

namespace tally::bft::pbft {

// The digest a pre-prepare names: SHA-256 over the request count and each request's SHA-256.
// The empty batch (a null request, proposed by NEW-VIEW to fill a gap) has a digest too.
crypto::Hash batch_digest(const std::vector<std::string>& requests);

crypto::Hash hash_from_bytes(std::string_view bytes);  // all-zero unless exactly 32 bytes
std::string hash_bytes(const crypto::Hash& hash);

// Strict body decode: false on bytes that do not parse or leave a digest the wrong size.
bool decode(std::string_view body, pb::PrePrepare& out);
bool decode(std::string_view body, pb::Vote& out);
bool decode(std::string_view body, pb::Checkpoint& out);
bool decode(std::string_view body, pb::ViewChange& out);
bool decode(std::string_view body, pb::NewView& out);
bool decode(std::string_view body, pb::FetchCommitted& out);
bool decode(std::string_view body, pb::Forward& out);
bool decode(std::string_view body, pb::CommittedReply& out);
bool decode(std::string_view body, pb::FetchBatch& out);
bool decode(std::string_view body, pb::Batches& out);

// A pre-prepare as a primary sends it: PrePrepare{view, seq, digest, requests} carrying its
// signed header PrePrepare{view, seq, digest}. (Two signatures: the header is what a
// VIEW-CHANGE carries.)
std::string seal_pre_prepare(const crypto::KeyPair& key, uint64_t view, uint64_t seq,
                             const crypto::Hash& digest, const std::vector<std::string>& requests);
// A pre-prepare is authenticated by its header alone: the kPrePrepareHeader envelope it
// carries, signed by the key that sent it (its view's primary), naming its view, seq and digest
// and nothing more; its digest names its batch (batch_digest, checked wherever the batch is
// used). The pre-prepare's own envelope signature covers nothing that these do not already
// bind, so no replica checks it: one signature check per pre-prepare instead of two. (The
// primary still makes it, for replicas of builds that check it.)
// True when pp's header is such an envelope from `primary`; its signature is checked unless
// `check_signature` is false (for the engine: its caller checked it, pre_prepare_authentic).
bool header_binds(const pb::PrePrepare& pp, const crypto::PublicKey& primary, bool check_signature);
// True when pp's digest is its batch's (batch_digest).
bool digest_binds(const pb::PrePrepare& pp);
// What a replica checks of a pre-prepare it receives, in place of its envelope's signature (the
// node's workers, and the test and fuzz harnesses that deliver as they do): its body decodes
// and its header binds it, signed by the envelope's sender.
bool pre_prepare_authentic(const crypto::Envelope& envelope);
// A stored or certified pre-prepare envelope, opened and authenticated the same way, and its
// digest checked against its batch. One without a header (stored or certified before headers,
// d839607) is authenticated by its envelope's signature, as it was then. None unless it opens
// as a kPrePrepare whose body decodes and that authenticates so.
struct OpenedPrePrepare {
    crypto::Envelope envelope;
    pb::PrePrepare pre_prepare;
};
std::optional<OpenedPrePrepare> open_pre_prepare(std::string_view envelope);
// The pre-prepare an envelope holds, its signature unchecked: for what this replica stored
// itself, or checked before. None unless it opens as a message of `type` (a pre-prepare, or
// its header as a VIEW-CHANGE carries it) that decodes.
std::optional<pb::PrePrepare> read_pre_prepare(std::string_view envelope,
                                               crypto::MessageType type = crypto::MessageType::kPrePrepare);
// The header a pre-prepare envelope carries (unchecked; empty if none).
std::string header_of(std::string_view pre_prepare_envelope);

// Keys of the durable store. Numbers are big-endian, so key order is sequence order.
std::string be64(uint64_t v);
uint64_t read_be64(std::string_view bytes);  // 0 unless at least 8 bytes
inline constexpr std::string_view kKeyView = "view";        // the view this replica is in
inline constexpr std::string_view kKeyStable = "stable";    // StableCheckpoint
// be64(seq): after a lost store, no VIEW-CHANGE until the stable checkpoint reaches it
// (PbftEngine::forgot_through_); erased once it has.
inline constexpr std::string_view kKeyForgot = "forgot";
inline constexpr char kKeySlotPrefix = 's';                // s | seq | view | kind
// A slot's records. Its pre-prepare (the whole batch) is stored once: a 'b' or 'c' record
// whose pre_prepare is empty proves the pre-prepare of the 'a' record of the same seq and view,
// written before it (in the same store write or an earlier one, so on disk whenever it is).
// One that names another pre-prepare, or has no 'a' record to lean on, carries its own.
inline constexpr char kSlotAccepted = 'a';                 // PreparedProof{pre-prepare, own prepare}
inline constexpr char kSlotPrepared = 'b';                 // PreparedProof: the certificate
inline constexpr char kSlotCommitted = 'c';                // CommittedProof: what was decided
std::string slot_key(uint64_t seq, uint64_t view, char kind);
// The view record's value: be64(view) | 1 byte, nonzero when the replica was in that view
// (0: it was changing views, towards view + 1 or beyond) | be64(rejoined_below), only when
// above the view: the view this replica had left when it went back to a lower one (the rejoin
// rule, PbftEngine::rejoined_below_view_), below which it stays silent after a restart too.
struct ViewRecord {
    uint64_t view = 0;
    bool active = true;
    uint64_t rejoined_below = 0;
};
std::string view_record(const ViewRecord& record);
// Lenient: check_stored_records refuses any but 8, 9 or 17 bytes before a restart reads it.
// Without the ninth byte, active; shorter than 8 bytes, view 0; shorter than 17, not rejoined.
ViewRecord parse_view_record(std::string_view value);
// A slot record's key read back: none when `key` is not one slot_key() makes (a kind it
// does not write included).
struct SlotKey {
    uint64_t seq = 0;
    uint64_t view = 0;
    char kind = 0;
};
std::optional<SlotKey> parse_slot_key(std::string_view key);
std::string slot_key_bound(uint64_t seq);  // the first key at seq (for erasing below it)

// The pre-prepares the 'a' records among `records` hold, by (seq, view).
using AcceptedPrePrepares = std::map<std::pair<uint64_t, uint64_t>, std::string>;
AcceptedPrePrepares accepted_pre_prepares(const std::vector<std::pair<std::string, std::string>>& records);
// A slot record's value as a whole proof: as stored, or, for a 'b' or 'c' record that left its
// pre-prepare out, with the one of its 'a' record put back. None when the value is not the
// proof its kind stores, or leaves the pre-prepare out with no 'a' record to take it from.
std::optional<std::string> whole_slot_record(const SlotKey& slot, std::string_view value,
                                             const AcceptedPrePrepares& accepted);

}  // namespace tally::bft::pbft
