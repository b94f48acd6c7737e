// PBFT message helpers. See messages.h.
#include "bft/pbft/messages.h"

#include <algorithm>

namespace tally::bft::pbft {

namespace {

// batch_digest over any sequence of requests (a vector, or a message's repeated field read in
// place: the check of every pre-prepare copies no request).
template <typename Requests>
crypto::Hash digest_of(const Requests& requests) {
    crypto::Sha256 h;
    h.update(std::string_view("tally/pbft/batch/v1"));
    h.update_u64(requests.size());
    for (const auto& r : requests) h.update(crypto::sha256(r));
    return h.finish();
}

}  // namespace

crypto::Hash batch_digest(const std::vector<std::string>& requests) { return digest_of(requests); }

crypto::Hash hash_from_bytes(std::string_view bytes) {
    crypto::Hash out{};
    if (bytes.size() == out.size()) std::copy(bytes.begin(), bytes.end(), out.begin());
    return out;
}

std::string hash_bytes(const crypto::Hash& hash) { return std::string(crypto::as_bytes(hash)); }

namespace {
// Canonical bytes only: no unknown field, no field twice, no padding. What re-encodes to other
// bytes than it came in is refused, so a peer cannot make this replica keep (or forward, as
// proof) more bytes than the message means: a vote is a few dozen bytes, never MiBs.
template <typename M>
bool parse(std::string_view body, M& out) {
    if (!out.ParseFromArray(body.data(), static_cast<int>(body.size()))) return false;
    out.DiscardUnknownFields();
    return out.ByteSizeLong() == body.size();
}
}  // namespace

bool decode(std::string_view body, pb::PrePrepare& out) {
    return parse(body, out) && out.digest().size() == 32;
}
bool decode(std::string_view body, pb::Vote& out) {
    return parse(body, out) && out.digest().size() == 32;
}
bool decode(std::string_view body, pb::Checkpoint& out) {
    return parse(body, out) && out.state_digest().size() == 32;
}
bool decode(std::string_view body, pb::ViewChange& out) {
    return parse(body, out) && (out.stable_digest().empty() || out.stable_digest().size() == 32);
}
bool decode(std::string_view body, pb::NewView& out) { return parse(body, out); }
bool decode(std::string_view body, pb::FetchCommitted& out) { return parse(body, out); }
bool decode(std::string_view body, pb::Forward& out) { return parse(body, out); }
bool decode(std::string_view body, pb::FetchBatch& out) {
    if (!parse(body, out)) return false;
    for (const auto& ref : out.wanted())
        if (ref.digest().size() != 32) return false;
    return true;
}
bool decode(std::string_view body, pb::Batches& out) { return parse(body, out); }

std::string seal_pre_prepare(const crypto::KeyPair& key, uint64_t view, uint64_t seq,
                             const crypto::Hash& digest, const std::vector<std::string>& requests) {
    pb::PrePrepare pp;
    pp.set_view(view);
    pp.set_seq(seq);
    pp.set_digest(hash_bytes(digest));
    pp.set_header(crypto::seal(key, crypto::MessageType::kPrePrepareHeader, pp.SerializeAsString()));
    for (const auto& r : requests) pp.add_requests(r);
    return crypto::seal(key, crypto::MessageType::kPrePrepare, pp.SerializeAsString());
}

bool header_binds(const pb::PrePrepare& pp, const crypto::PublicKey& primary, bool check_signature) {
    crypto::OpenOptions options;
    options.verify_signature = check_signature;
    auto env = crypto::open(pp.header(), options);
    pb::PrePrepare header;
    return env && !env->pairwise && env->type == crypto::MessageType::kPrePrepareHeader &&
           env->sender == primary &&
           decode(env->body, header) && header.requests_size() == 0 && header.header().empty() &&
           header.view() == pp.view() && header.seq() == pp.seq() && header.digest() == pp.digest();
}

bool digest_binds(const pb::PrePrepare& pp) {
    return digest_of(pp.requests()) == hash_from_bytes(pp.digest());
}

bool pre_prepare_authentic(const crypto::Envelope& envelope) {
    pb::PrePrepare pp;
    return envelope.type == crypto::MessageType::kPrePrepare && decode(envelope.body, pp) &&
           header_binds(pp, envelope.sender, true);
}

std::optional<OpenedPrePrepare> open_pre_prepare(std::string_view envelope) {
    crypto::OpenOptions unchecked;
    unchecked.verify_signature = false;
    auto env = crypto::open(envelope, unchecked);
    OpenedPrePrepare opened;
    if (!env || env->type != crypto::MessageType::kPrePrepare || !decode(env->body, opened.pre_prepare) ||
        !digest_binds(opened.pre_prepare))
        return std::nullopt;
    const bool authentic = opened.pre_prepare.header().empty()
                               ? crypto::open(envelope).ok()  // written before headers
                               : header_binds(opened.pre_prepare, env->sender, true);
    if (!authentic) return std::nullopt;
    opened.envelope = std::move(env).value();
    return opened;
}

std::optional<pb::PrePrepare> read_pre_prepare(std::string_view envelope, crypto::MessageType type) {
    crypto::OpenOptions unchecked;
    unchecked.verify_signature = false;
    auto env = crypto::open(envelope, unchecked);
    pb::PrePrepare pp;
    if (!env || env->type != type || !decode(env->body, pp)) return std::nullopt;
    return pp;
}

std::string header_of(std::string_view pre_prepare_envelope) {
    const auto pp = read_pre_prepare(pre_prepare_envelope);
    return pp ? pp->header() : std::string();
}
bool decode(std::string_view body, pb::CommittedReply& out) {
    return parse(body, out) && (out.stable_digest().empty() || out.stable_digest().size() == 32);
}

std::string be64(uint64_t v) {
    std::string out(8, '\0');
    for (int i = 7; i >= 0; --i) {
        out[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
        v >>= 8;
    }
    return out;
}

uint64_t read_be64(std::string_view bytes) {
    if (bytes.size() < 8) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(bytes[i]);
    return v;
}

// A slot key's layout: prefix | seq (8) | view (8) | kind (1), numbers big-endian.
constexpr size_t kSlotKeySeqAt = 1;
constexpr size_t kSlotKeyViewAt = kSlotKeySeqAt + 8;
constexpr size_t kSlotKeyKindAt = kSlotKeyViewAt + 8;
constexpr size_t kSlotKeyBytes = kSlotKeyKindAt + 1;

std::string slot_key(uint64_t seq, uint64_t view, char kind) {
    return std::string(1, kKeySlotPrefix) + be64(seq) + be64(view) + std::string(1, kind);
}

std::optional<SlotKey> parse_slot_key(std::string_view key) {
    if (key.size() != kSlotKeyBytes || key[0] != kKeySlotPrefix) return std::nullopt;
    const char kind = key[kSlotKeyKindAt];
    if (kind != kSlotAccepted && kind != kSlotPrepared && kind != kSlotCommitted) return std::nullopt;
    return SlotKey{read_be64(key.substr(kSlotKeySeqAt, 8)),
                   read_be64(key.substr(kSlotKeyViewAt, 8)), kind};
}

// The view record's layout: view (8, big-endian) | active (1) | rejoined_below (8, when above
// the view).
constexpr size_t kViewRecordActiveAt = 8;
constexpr size_t kViewRecordRejoinedAt = 9;

std::string view_record(const ViewRecord& record) {
    std::string value = be64(record.view) + std::string(1, record.active ? 1 : 0);
    if (record.rejoined_below > record.view) value += be64(record.rejoined_below);
    return value;
}

ViewRecord parse_view_record(std::string_view value) {
    ViewRecord record;
    record.view = read_be64(value);
    record.active = value.size() > kViewRecordActiveAt ? value[kViewRecordActiveAt] != 0 : true;
    if (value.size() >= kViewRecordRejoinedAt + 8) record.rejoined_below = read_be64(value.substr(kViewRecordRejoinedAt));
    return record;
}

std::string slot_key_bound(uint64_t seq) { return std::string(1, kKeySlotPrefix) + be64(seq); }

AcceptedPrePrepares accepted_pre_prepares(const std::vector<std::pair<std::string, std::string>>& records) {
    AcceptedPrePrepares out;
    for (const auto& [key, value] : records) {
        const auto slot = parse_slot_key(key);
        if (!slot || slot->kind != kSlotAccepted) continue;
        pb::PreparedProof proof;
        if (proof.ParseFromString(value) && !proof.pre_prepare().empty())
            out[{slot->seq, slot->view}] = proof.pre_prepare();
    }
    return out;
}

namespace {

template <typename Proof>
std::optional<std::string> with_pre_prepare(std::string_view value, const std::string* accepted) {
    Proof proof;
    if (!proof.ParseFromArray(value.data(), static_cast<int>(value.size()))) return std::nullopt;
    if (!proof.pre_prepare().empty()) return std::string(value);
    if (!accepted) return std::nullopt;
    proof.set_pre_prepare(*accepted);
    return proof.SerializeAsString();
}

}  // namespace

std::optional<std::string> whole_slot_record(const SlotKey& slot, std::string_view value,
                                             const AcceptedPrePrepares& accepted) {
    // An 'a' record carries its own: there is nothing to lean on.
    const auto it = slot.kind == kSlotAccepted ? accepted.end() : accepted.find({slot.seq, slot.view});
    const std::string* pre_prepare = it == accepted.end() ? nullptr : &it->second;
    return slot.kind == kSlotCommitted ? with_pre_prepare<pb::CommittedProof>(value, pre_prepare)
                                       : with_pre_prepare<pb::PreparedProof>(value, pre_prepare);
}

}  // namespace tally::bft::pbft
