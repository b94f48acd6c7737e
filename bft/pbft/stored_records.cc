// Checks the engine's stored records before on_start (see stored_records.h).
#include "bft/pbft/stored_records.h"

#include "bft/pbft/messages.h"

namespace tally::bft::pbft {

namespace {

std::string printable(const std::string& key) {
    std::string out;
    for (unsigned char c : key.substr(0, 24)) {
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            static const char* hex = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

// The pre-prepare a whole slot record (whole_slot_record) proves.
std::string pre_prepare_of(char kind, const std::string& whole) {
    pb::CommittedProof committed;
    pb::PreparedProof prepared;
    if (kind == kSlotCommitted) return committed.ParseFromString(whole) ? committed.pre_prepare() : "";
    return prepared.ParseFromString(whole) ? prepared.pre_prepare() : "";
}

}  // namespace

Status check_stored_records(const std::vector<std::pair<std::string, std::string>>& records,
                            uint64_t watermark_window) {
    // The stable checkpoint first (its key sorts after the slots'): the slots must lie in its
    // h + 2L. One that does not parse is refused below.
    uint64_t stable_seq = 0;
    uint64_t recorded_view = 0;  // no view record: it never voted beyond view 0
    for (const auto& record_kv : records) {
        pb::StableCheckpoint stable;
        if (record_kv.first == kKeyStable && stable.ParseFromString(record_kv.second))
            stable_seq = stable.seq();
        if (record_kv.first == kKeyView && record_kv.second.size() >= 8)
            recorded_view = read_be64(record_kv.second);
    }
    const uint64_t reach = watermark_window > UINT64_MAX / 2 ? UINT64_MAX : 2 * watermark_window;
    const AcceptedPrePrepares accepted = accepted_pre_prepares(records);
    for (const auto& record_kv : records) {
        // Not a structured binding: clang before 16 cannot capture one (the fuzz build, tests/fuzz).
        const std::string& key = record_kv.first;
        const std::string& value = record_kv.second;
        const auto bad = [&](const std::string& why) {
            return make_error("corrupt", "stored record \"" + printable(key) + "\": " + why);
        };
        if (key == kKeyView) {
            if (value.size() != 8 && value.size() != 9 && value.size() != 17)
                return bad("a view record is 8, 9 or 17 bytes");
            if (value.size() == 17 && parse_view_record(value).rejoined_below <= read_be64(value))
                return bad("a view record's rejoined view is not above its view");
            continue;
        }
        if (key == kKeyForgot) {
            if (value.size() != 8) return bad("a forgotten-certificates record is 8 bytes");
            continue;
        }
        if (key == kKeyStable) {
            pb::StableCheckpoint record;
            if (!record.ParseFromString(value) || record.seq() == 0 || record.state_digest().size() != 32)
                return bad("not a stable checkpoint");
            continue;
        }
        const auto slot = parse_slot_key(key);
        if (!slot) return bad("not a key this engine writes");
        const uint64_t seq = slot->seq;
        const uint64_t view = slot->view;
        // The view record is synced before the replica's first vote in a view: a pre-prepare it
        // accepted or a certificate it prepared in a later view means the record was lost.
        // (A committed proof may name a later view: catch-up brings those.)
        if (slot->kind != kSlotCommitted && view > recorded_view)
            return bad("a vote in view " + std::to_string(view) + ", above the recorded view " +
                       std::to_string(recorded_view) + ": the view record is missing or stale");
        if (seq > stable_seq && seq - stable_seq > reach)
            return bad("a slot more than 2L = " + std::to_string(reach) +
                       " above the stable checkpoint (" + std::to_string(stable_seq) +
                       "): the stable checkpoint's record is missing, or the file is not this replica's");
        const auto whole = whole_slot_record(*slot, value, accepted);
        if (!whole)
            return bad(slot->kind == kSlotCommitted ? "not a committed proof with a pre-prepare"
                                                    : "not a prepared proof with a pre-prepare");
        const auto pp = read_pre_prepare(pre_prepare_of(slot->kind, *whole));
        if (!pp || pp->seq() != seq || pp->view() != view)
            return bad("its pre-prepare is not one for seq " + std::to_string(seq) + " view " +
                       std::to_string(view));
    }
    return Ok{};
}

}  // namespace tally::bft::pbft
