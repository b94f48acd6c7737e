// What the simulators watch of honest replicas' messages. See signed_watch.h.
#include "sim/signed_watch.h"

#include <cstdio>

#include "bft/pbft/messages.h"
#include "bft/pbft/stored_records.h"
#include "crypto/envelope.h"

namespace tally::sim {


// An honest replica never signs two different digests for one slot. Only top-level messages
// count; the signer is read from the envelope (a replica may forward another's pre-prepare).
void SignedWatch::record(const std::string& envelope, bft::ReplicaId sender, uint64_t now, const Signers& signers) {
    crypto::OpenOptions header_only;
    header_only.verify_signature = false;  // its own engine just sealed it
    auto env = crypto::open(envelope, header_only);
    if (!env) return;
    const auto n = static_cast<bft::ReplicaId>(replicas_.size());
    bft::ReplicaId signer = n;
    for (bft::ReplicaId i = 0; i < n; ++i)
        if (replicas_[i] == env->sender) signer = i;
    if (signer == n || !signers.honest(signer)) return;
    uint64_t view = 0, seq = 0;
    crypto::Hash digest{};
    switch (env->type) {
        case crypto::MessageType::kPrePrepare: {
            bft::pbft::pb::PrePrepare pp;
            if (!bft::pbft::decode(env->body, pp)) return;
            view = pp.view();
            seq = pp.seq();
            digest = bft::pbft::hash_from_bytes(pp.digest());
            break;
        }
        case crypto::MessageType::kPrepare:
        case crypto::MessageType::kCommit: {
            bft::pbft::pb::Vote vote;
            if (!bft::pbft::decode(env->body, vote)) return;
            view = vote.view();
            seq = vote.seq();
            digest = bft::pbft::hash_from_bytes(vote.digest());
            break;
        }
        case crypto::MessageType::kCheckpoint: {
            bft::pbft::pb::Checkpoint cp;
            if (!bft::pbft::decode(env->body, cp)) return;
            seq = cp.seq();
            digest = bft::pbft::hash_from_bytes(cp.state_digest());
            break;
        }
        case crypto::MessageType::kViewChange: {
            // Every prepared certificate the signer holds in its store above the stable
            // checkpoint it claims is in its VIEW-CHANGE (at that view or a later one) — also
            // after a restart, which must reload them all.
            if (signer != sender) return;
            bft::pbft::pb::ViewChange vc;
            if (!bft::pbft::decode(env->body, vc)) return;
            if (trace_)
                std::fprintf(stderr, "@%llu r%u signs view_change v%llu stable %llu, %d prepared\n",
                             (unsigned long long)now, signer, (unsigned long long)vc.new_view(),
                             (unsigned long long)vc.stable_seq(), vc.prepared_size());
            std::map<uint64_t, uint64_t> carried;  // seq -> view of the certificate carried
            for (const auto& p : vc.prepared())
                if (const auto pp = bft::pbft::read_pre_prepare(p.pre_prepare(), crypto::MessageType::kPrePrepareHeader))
                    carried[pp->seq()] = pp->view();
            for (const auto& [key, value] : signers.stored(signer)) {
                if (key.size() != 18 || key[0] != bft::pbft::kKeySlotPrefix || key[17] != bft::pbft::kSlotPrepared)
                    continue;
                uint64_t s = bft::pbft::read_be64(std::string_view(key).substr(1, 8));
                uint64_t v = bft::pbft::read_be64(std::string_view(key).substr(9, 8));
                // Only what it prepared before the view it asks for: a VIEW-CHANGE for view v
                // carries certificates of views below v (the node persists a whole turn's
                // outputs before it sends any, so the store may already hold view v's own).
                if (s <= vc.stable_seq() || v >= vc.new_view()) continue;
                auto c = carried.find(s);
                if ((c == carried.end() || c->second < v) && contradictions_.size() < 20)
                    contradictions_.push_back("replica " + std::to_string(signer) + "'s VIEW-CHANGE for view " +
                                              std::to_string(vc.new_view()) + " lacks its stored certificate for seq " +
                                              std::to_string(s) + " (view " + std::to_string(v) + ")");
            }
            return;
        }
        case crypto::MessageType::kNewView: {
            bft::pbft::pb::NewView nv;
            if (!bft::pbft::decode(env->body, nv)) return;
            view = nv.view();
            crypto::Sha256 h;  // O decides what the view re-proposes; V may differ harmlessly
            for (const auto& r : nv.reproposals()) h.update(r.SerializeAsString());
            digest = h.finish();
            break;
        }
        default: return;
    }
    if (trace_ && signer == sender)
        std::fprintf(stderr, "@%llu r%u signs %s v%llu s%llu %s\n", (unsigned long long)now, signer,
                     std::string(crypto::type_name(env->type)).c_str(), (unsigned long long)view, (unsigned long long)seq,
                     short_hex(digest).c_str());
    // A replica that delivered a batch at seq never votes for another one there, in any view,
    // from then on. (Re-sending a vote it signed before the delivery is no new vote; what it
    // forwards, signed by another, may be older than that one's delivery.)
    auto key = std::make_tuple(signer, static_cast<uint8_t>(env->type), view, seq);
    auto earlier = signed_.find(key);
    bool resent = earlier != signed_.end() && earlier->second == digest;
    if (signer == sender && !resent && env->type != crypto::MessageType::kCheckpoint &&
        env->type != crypto::MessageType::kNewView) {
        if (auto d = signers.delivered(signer, seq); d && *d != digest && contradictions_.size() < 20)
            contradictions_.push_back("replica " + std::to_string(signer) + " signed a " +
                                      std::string(crypto::type_name(env->type)) + " for seq " +
                                      std::to_string(seq) + " in view " + std::to_string(view) +
                                      " with another batch than the one it delivered there");
    }
    auto [it, inserted] = signed_.emplace(key, digest);
    if (!inserted && it->second != digest && contradictions_.size() < 20)
        contradictions_.push_back("replica " + std::to_string(signer) + " signed two " +
                                  std::string(crypto::type_name(env->type)) + "s for view " +
                                  std::to_string(view) + " seq " + std::to_string(seq));
}

}  // namespace tally::sim
