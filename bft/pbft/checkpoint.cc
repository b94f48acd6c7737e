// Checkpoints and garbage collection (PBFT.md "Checkpoints and garbage collection"): every K
// sequence numbers each replica signs its state digest; 2f+1 matching make a stable
// checkpoint, which moves the low water mark h and lets the log below it go. A replica that
// sees a stable checkpoint above what it executed asks its caller for state transfer.
#include <algorithm>
#include <set>

#include "bft/pbft/engine.h"

namespace tally::bft::pbft {

namespace {
// Checkpoints kept per sender that are not stable yet: enough for a full window of them.
constexpr size_t kCheckpointsPerSenderMax = 16;
}  // namespace

void PbftEngine::send_checkpoint(uint64_t seq, const crypto::Hash& digest, Output& out) {
    // Vouching for a state the ledger could lose: 2f+1 such vouchers make the log below go
    // everywhere, so the state must survive a power loss of every replica (engine.h, step 0).
    out.ledger_sync_through = std::max(out.ledger_sync_through, seq);
    own_checkpoints_[seq] = digest;
    pb::Checkpoint cp;
    cp.set_seq(seq);
    cp.set_state_digest(hash_bytes(digest));
    std::string raw = seal(crypto::MessageType::kCheckpoint, cp);
    checkpoints_[seq][digest][config_.id] = raw;
    out.send.push_back(Outgoing{kAllReplicas, std::move(raw)});
    try_stabilize(seq, out);
}

void PbftEngine::on_checkpoint(ReplicaId from, const crypto::Envelope& env, std::string_view raw,
                               Output& out) {
    pb::Checkpoint cp;
    if (!decode(env.body, cp)) return detect(from, Misbehaviour::kMalformed);
    if (cp.seq() == 0 || cp.seq() % config_.checkpoint_interval != 0)
        return detect(from, Misbehaviour::kBadCheckpoint);
    if (cp.seq() <= low_) return;  // already stable here
    crypto::Hash d = hash_from_bytes(cp.state_digest());
    // A sender gets one digest per checkpoint: a second one is a lie to someone.
    if (auto at = checkpoints_.find(cp.seq()); at != checkpoints_.end()) {
        for (const auto& [digest, senders] : at->second)
            if (digest != d && senders.count(from))
                return detect(from, Misbehaviour::kEquivocation);
    }
    checkpoints_[cp.seq()][d].emplace(from, std::string(raw));
    // Bound what one sender can make this replica keep: its newest checkpoints only.
    size_t kept = 0;
    for (auto it = checkpoints_.rbegin(); it != checkpoints_.rend(); ++it) {
        for (auto& [digest, senders] : it->second) {
            if (senders.count(from) && ++kept > kCheckpointsPerSenderMax) senders.erase(from);
        }
        std::erase_if(it->second, [](const auto& entry) { return entry.second.empty(); });
    }
    std::erase_if(checkpoints_, [](const auto& entry) { return entry.second.empty(); });
    // f+1 peers that checkpointed beyond what this replica delivered show, whatever its window,
    // that it is behind: it asks for state (tick_catch_up). Commits count only within reach of
    // the window, and a replica down for longer than a window heard none (seed 3116179: back
    // at seq 3 with the others at 38, it never asked).
    if (auto at = checkpoints_.find(cp.seq()); at != checkpoints_.end() && at->second.count(d) &&
                                               at->second.at(d).size() >= quorum_.weak())
        max_seq_seen_ = std::max(max_seq_seen_, cp.seq());
    try_stabilize(cp.seq(), out);
}

void PbftEngine::try_stabilize(uint64_t seq, Output& out) {
    if (seq <= low_) return;
    auto it = checkpoints_.find(seq);
    if (it == checkpoints_.end()) return;
    for (const auto& [digest, senders] : it->second) {
        if (senders.size() < quorum_.quorum()) continue;
        std::vector<std::string> proof;
        for (const auto& [sender, envelope] : senders) {
            if (proof.size() == quorum_.quorum()) break;
            proof.push_back(envelope);
        }
        make_stable(seq, digest, std::move(proof), out);
        return;
    }
}

void PbftEngine::make_stable(uint64_t seq, const crypto::Hash& digest,
                             std::vector<std::string> proof, Output& out) {
    auto own = own_checkpoints_.find(seq);
    bool diverged = own != own_checkpoints_.end() && own->second != digest;
    if (diverged) detect(config_.id, Misbehaviour::kStateDiverged);
    low_ = seq;
    low_digest_ = digest;
    low_proof_ = std::move(proof);
    maybe_stop_withholding(out);
    missing_batches_.erase(missing_batches_.begin(), missing_batches_.upper_bound(seq));
    pb::StableCheckpoint record;
    record.set_seq(seq);
    record.set_state_digest(hash_bytes(digest));
    for (const auto& e : low_proof_) record.add_proof(e);
    out.persist.push_back(PersistPut{std::string(kKeyStable), record.SerializeAsString()});
    // Synced: after a machine crash the ledger may keep blocks above this checkpoint, and a
    // replica's VIEW-CHANGE may only claim a water mark it can prove.
    out.sync = true;
    // Behind only when the checkpoint is beyond what this replica has been handed to execute:
    // batches already in an Output will execute before anything else happens, and fetching a
    // snapshot below them would take the ledger backwards.
    // (A replica whose own digest differs has a determinism bug: it is reported above, not
    // repaired by rolling its ledger back.)
    if (last_delivered_ < seq) {
        // Behind the network: the proof tells what state to fetch and from whom.
        fetching_snapshot_ = true;
        fetch_target_ = seq;
        // The proof's signers hold that state; so do the senders of matching CHECKPOINTs
        // this replica received itself (the proof may have come in a NEW-VIEW or a
        // catch-up reply, with no CHECKPOINT of its own).
        std::set<ReplicaId> holders;
        for (const auto& envelope : low_proof_) {
            ReplicaId sender = 0;
            if (open_from(envelope, crypto::MessageType::kCheckpoint, &sender)) holders.insert(sender);
        }
        if (auto at = checkpoints_.find(seq); at != checkpoints_.end() && at->second.count(digest))
            for (const auto& [sender, envelope] : at->second.at(digest)) holders.insert(sender);
        holders.erase(config_.id);
        out.fetch_snapshot = SnapshotTarget{seq, digest, {holders.begin(), holders.end()}};
    }
    collect_garbage(out);
    if (active_ && is_primary()) {
        next_seq_ = std::max(next_seq_, low_ + 1);
        propose(out);
    }
}

// Discards every message, certificate and checkpoint at or below the stable checkpoint.
void PbftEngine::collect_garbage(Output& out) {
    log_.erase(log_.begin(), log_.upper_bound(low_));
    checkpoints_.erase(checkpoints_.begin(), checkpoints_.lower_bound(low_));
    own_checkpoints_.erase(own_checkpoints_.begin(), own_checkpoints_.lower_bound(low_));
    evidence_sent_.erase(evidence_sent_.begin(), evidence_sent_.lower_bound({low_ + 1, 0}));
    view_changes_.erase(view_changes_.begin(), view_changes_.lower_bound(view_));
    // The certificates below go: the ledger is made durable through what it executed of
    // them first (engine.h, step 0). Those above what it executed are proven by the 2f+1
    // replicas that signed the checkpoint, whose ledgers are durable through it.
    const uint64_t provable = std::min(low_, last_executed_);
    if (provable > 0) out.ledger_sync_through = std::max(out.ledger_sync_through, provable);
    out.persist.push_back(PersistErase{slot_key_bound(0), slot_key_bound(low_ + 1)});
}

bool PbftEngine::valid_checkpoint_proof(
    uint64_t seq, const crypto::Hash& digest,
    const google::protobuf::RepeatedPtrField<std::string>& proof) const {
    if (!proof_shape_ok(proof, crypto::MessageType::kCheckpoint, quorum_.quorum())) return false;
    std::set<ReplicaId> senders;
    for (const auto& raw : proof) {
        ReplicaId sender = 0;
        auto env = open_from(raw, crypto::MessageType::kCheckpoint, &sender);
        pb::Checkpoint cp;
        if (!env || !decode(env->body, cp)) return false;
        if (cp.seq() != seq || hash_from_bytes(cp.state_digest()) != digest) return false;
        senders.insert(sender);
    }
    return senders.size() >= quorum_.quorum();
}

}  // namespace tally::bft::pbft
