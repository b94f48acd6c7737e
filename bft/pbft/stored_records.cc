// Checks the engine's stored records before on_start (see stored_records.h).
#include "bft/pbft/stored_records.h"

#include "bft/pbft/messages.h"
#include "crypto/envelope.h"

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

}  // namespace

Status check_stored_records(const std::vector<std::pair<std::string, std::string>>& records) {
    for (const auto& [key, value] : records) {
        const auto bad = [&](const std::string& why) {
            return make_error("corrupt", "stored record \"" + printable(key) + "\": " + why);
        };
        if (key == kKeyView) {
            if (value.size() != 8 && value.size() != 9) return bad("a view record is 8 or 9 bytes");
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
        std::string pre_prepare;
        if (slot->kind == kSlotCommitted) {
            pb::CommittedProof proof;
            if (!proof.ParseFromString(value)) return bad("not a committed proof");
            pre_prepare = proof.pre_prepare();
        } else {
            pb::PreparedProof proof;
            if (!proof.ParseFromString(value)) return bad("not a prepared proof");
            pre_prepare = proof.pre_prepare();
        }
        crypto::OpenOptions options;
        options.verify_signature = false;
        auto envelope = crypto::open(pre_prepare, options);
        pb::PrePrepare pp;
        if (!envelope || envelope->type != crypto::MessageType::kPrePrepare ||
            !decode(envelope->body, pp) || pp.seq() != seq || pp.view() != view)
            return bad("its pre-prepare is not one for seq " + std::to_string(seq) + " view " +
                       std::to_string(view));
    }
    return Ok{};
}

}  // namespace tally::bft::pbft
