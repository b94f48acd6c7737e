// What the simulator watches of every message an honest replica sends: no honest replica ever
// signs two different things for one slot (a pre-prepare, prepare or commit for one
// (view, seq), a checkpoint for one seq, a NEW-VIEW's O for one view) — across its crashes and
// restarts too; none signs a vote for another batch than it delivered at that seq; and every
// honest VIEW-CHANGE carries every prepared certificate its sender's store holds above its
// stable checkpoint. PBFT's messages only (others pass unread).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "bft/engine.h"
#include "crypto/hash.h"
#include "crypto/keys.h"

namespace tally::sim {

// A digest's first four bytes in hex, for the simulator's traces.
inline std::string short_hex(const crypto::Hash& h) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (int i = 0; i < 4; ++i) {
        out += digits[h[i] >> 4];
        out += digits[h[i] & 15];
    }
    return out;
}

class SignedWatch {
public:
    // What the watch asks the simulator about a signer.
    class Signers {
    public:
        virtual ~Signers() = default;
        virtual bool honest(bft::ReplicaId id) const = 0;
        // Its consensus store's records now.
        virtual std::vector<std::pair<std::string, std::string>> stored(bft::ReplicaId id) const = 0;
        // The digest of the batch it delivered at `seq` (and still holds), if known.
        virtual std::optional<crypto::Hash> delivered(bft::ReplicaId id, uint64_t seq) const = 0;
    };

    // `replicas`: the replicas' keys, by id. `trace`: print what each honest replica signs.
    SignedWatch(std::vector<crypto::PublicKey> replicas, bool trace)
        : replicas_(std::move(replicas)), trace_(trace) {}

    // Notes what `envelope`, sent by replica `sender` at tick `now`, commits its signer to.
    void record(const std::string& envelope, bft::ReplicaId sender, uint64_t now, const Signers& signers);
    // What the watch found (at most 20), and a problem found elsewhere to report with them.
    const std::vector<std::string>& contradictions() const { return contradictions_; }
    void add(std::string problem) {
        if (contradictions_.size() < 20) contradictions_.push_back(std::move(problem));
    }

private:
    std::vector<crypto::PublicKey> replicas_;
    bool trace_ = false;
    // (signer, message type, view, seq) -> digest it signed.
    std::map<std::tuple<bft::ReplicaId, uint8_t, uint64_t, uint64_t>, crypto::Hash> signed_;
    std::vector<std::string> contradictions_;
};

}  // namespace tally::sim
