// Catch-up: how a replica recovers what the network lost for it or what it missed while down.
//
// Every retransmit_ticks a replica re-sends its votes on slots that have not committed (lost
// messages are re-sent rather than waited out) and, as a heartbeat, its newest commit and
// checkpoint, so a replica that heard nothing learns how far the others are. A replica whose
// peers committed beyond what it delivered asks one of them (in turn) with FETCH-COMMITTED. The
// answer carries committed batches, each with its certificate (the pre-prepare and 2f+1
// commits), and — when the asker is below the responder's stable checkpoint — that checkpoint
// and its 2f+1 proof, from which the asker transfers the ledger state (Output::fetch_snapshot).
// Nothing in an answer is trusted: every certificate is checked before it is used.
#include <algorithm>

#include "bft/pbft/certificate.h"
#include "bft/pbft/engine.h"

namespace tally::bft::pbft {

namespace {
constexpr size_t kBatchesPerReply = 16;
constexpr size_t kRetransmitSlotsMax = 32;
}  // namespace

void PbftEngine::tick_catch_up(Output& out) {
    // A replica that has not run a round since it started, and sees its peers (a commit, or f+1
    // checkpoints) a checkpoint interval or more beyond what it executed — a restart after a
    // while down — runs its first round now, not retransmit_ticks after its start: until its
    // FETCH-COMMITTED brings the stable checkpoint that shows it is behind, its node admits
    // client requests against a stale ledger (node/replica_clients.cc). One round early, once
    // per start; later rounds keep their rate. (A replica restarted within
    // answer_interval_ticks of an ask to the same peer is refused once, counted `fetch_flood`
    // there, and asks again at its next round.)
    const bool far_behind_at_start =
        !retransmitted_ && max_seq_seen_ >= last_delivered_ + config_.checkpoint_interval;
    if (!far_behind_at_start && now_ - last_retransmit_tick_ < config_.retransmit_ticks) return;
    last_retransmit_tick_ = now_;
    retransmitted_ = true;

    size_t resent = 0;
    for (auto it = log_.upper_bound(last_delivered_); it != log_.end() && resent < kRetransmitSlotsMax; ++it) {
        Slot& slot = it->second;
        if (!active_ || !slot.accepted || slot.view != view_ || slot.committed) continue;
        ++resent;
        VoteKey key{view_, slot.digest};
        if (primary_of(view_) == config_.id) {
            out.send.push_back(Outgoing{kAllReplicas, slot.pre_prepare});
        } else if (auto p = slot.prepares.find(key); p != slot.prepares.end() && p->second.count(config_.id)) {
            out.send.push_back(Outgoing{kAllReplicas, p->second.at(config_.id)});
        }
        if (auto c = slot.commits.find(key); c != slot.commits.end() && c->second.count(config_.id))
            out.send.push_back(Outgoing{kAllReplicas, c->second.at(config_.id)});
    }
    // Heartbeat: the newest commit this replica signed that is still in its log (after a
    // restart, in the certificate it stored of what it decided).
    if (auto it = log_.find(last_delivered_); it != log_.end()) {
        auto c = it->second.commits.find({it->second.view, it->second.digest});
        if (c != it->second.commits.end() && c->second.count(config_.id)) {
            out.send.push_back(Outgoing{kAllReplicas, c->second.at(config_.id)});
        } else if (it->second.decided) {
            for (const auto& commit : it->second.decided->commits) {
                ReplicaId signer = 0;
                if (open_from(commit, crypto::MessageType::kCommit, &signer) && signer == config_.id) {
                    out.send.push_back(Outgoing{kAllReplicas, commit});
                    break;
                }
            }
        }
    }
    if (!own_checkpoints_.empty()) {
        auto& [seq, digest] = *own_checkpoints_.rbegin();
        auto cp = checkpoints_.find(seq);
        if (cp != checkpoints_.end() && cp->second.count(digest) && cp->second.at(digest).count(config_.id))
            out.send.push_back(Outgoing{kAllReplicas, cp->second.at(digest).at(config_.id)});
    }
    fetch_missing_batches(out);
    // Also while fetching a snapshot: the checkpoint being fetched may be one no peer serves any
    // more, and a newer stable checkpoint in an answer retargets the transfer.
    if (max_seq_seen_ > last_delivered_ || fetching_snapshot_) {
        next_fetch_peer_ = (next_fetch_peer_ + 1) % n_;
        if (next_fetch_peer_ == config_.id) next_fetch_peer_ = (next_fetch_peer_ + 1) % n_;
        pb::FetchCommitted req;
        req.set_from_seq(last_delivered_ + 1);
        out.send.push_back(
            Outgoing{next_fetch_peer_, seal(crypto::MessageType::kFetchCommitted, req)});
    }
}

void PbftEngine::on_fetch_committed(ReplicaId from, const crypto::Envelope& env, Output& out) {
    pb::FetchCommitted req;
    if (!decode(env.body, req)) return detect(from, Misbehaviour::kMalformed);
    // An answer carries up to kBatchesPerReply batches: one per peer per answer_interval_ticks().
    if (!may_answer(committed_answered_, from)) return detect(from, Misbehaviour::kFetchFlood);
    pb::CommittedReply reply;
    if (req.from_seq() <= low_ && low_ > 0) {
        reply.set_stable_seq(low_);
        reply.set_stable_digest(hash_bytes(low_digest_));
        for (const auto& e : low_proof_) reply.add_checkpoint_proof(e);
    }
    for (auto it = log_.lower_bound(std::max(req.from_seq(), low_ + 1));
         it != log_.end() && static_cast<size_t>(reply.batches_size()) < kBatchesPerReply; ++it) {
        const Slot& slot = it->second;
        if (!slot.decided || it->first > last_delivered_) break;
        pb::CommittedProof* proof = reply.add_batches();
        proof->set_pre_prepare(slot.decided->pre_prepare);
        for (const auto& e : slot.decided->commits) proof->add_commits(e);
    }
    if (!last_new_view_.empty()) reply.set_new_view(last_new_view_);
    if (reply.stable_seq() == 0 && reply.batches_size() == 0 && reply.new_view().empty()) return;
    out.send.push_back(Outgoing{from, seal(crypto::MessageType::kCommitted, reply)});
}

void PbftEngine::on_committed_reply(ReplicaId from, const crypto::Envelope& env, Output& out) {
    pb::CommittedReply reply;
    if (!decode(env.body, reply)) return detect(from, Misbehaviour::kMalformed);
    if (reply.batches_size() > static_cast<int>(kBatchesPerReply))
        return detect(from, Misbehaviour::kBadCommittedReply);
    if (!reply.new_view().empty()) {
        ReplicaId primary = 0;
        auto nv = open_from(reply.new_view(), crypto::MessageType::kNewView, &primary);
        if (nv && primary != config_.id) out.append(on_message(primary, *nv, reply.new_view()));
    }
    if (reply.stable_seq() > low_) {
        crypto::Hash digest = hash_from_bytes(reply.stable_digest());
        if (reply.stable_seq() % config_.checkpoint_interval != 0 ||
            !valid_checkpoint_proof(reply.stable_seq(), digest, reply.checkpoint_proof()))
            return detect(from, Misbehaviour::kBadCommittedReply);
        make_stable(reply.stable_seq(), digest,
                    {reply.checkpoint_proof().begin(), reply.checkpoint_proof().end()}, out);
    }
    for (const auto& proof : reply.batches()) {
        uint64_t view = 0, seq = 0;
        crypto::Hash digest{};
        std::vector<std::string> requests;
        if (!valid_committed_proof(proof, &view, &seq, &digest, &requests))
            return detect(from, Misbehaviour::kBadCommittedReply);
        if (seq <= last_delivered_ || !in_window(seq)) continue;
        Slot& slot = log_[seq];
        if (slot.committed) continue;
        // 2f+1 commits mean f+1 honest replicas prepared it: this is the batch decided at seq.
        // (The slot's normal case is left as it is: what this replica signed there stands.)
        out.steps.push_back(Step{seq, view, "caught-up", {from}});
        decide(seq, slot,
               Decided{view, digest, std::move(requests), proof.pre_prepare(),
                       {proof.commits().begin(), proof.commits().end()}},
               out);
    }
    deliver(out);
}

bool PbftEngine::valid_committed_proof(const pb::CommittedProof& proof, uint64_t* view,
                                       uint64_t* seq, crypto::Hash* digest,
                                       std::vector<std::string>* requests) const {
    auto batch = check_commit_certificate(proof, config_.replicas, quorum_.quorum());
    if (!batch) return false;
    *view = batch->view;
    *seq = batch->seq;
    *digest = batch->digest;
    *requests = std::move(batch->requests);
    return true;
}

// --- A new primary's missing batches --------------------------------------------------------

const std::vector<std::string>* PbftEngine::batch_held(uint64_t seq,
                                                       const crypto::Hash& digest) const {
    auto it = log_.find(seq);
    if (it == log_.end()) return nullptr;
    const Slot& slot = it->second;
    if (slot.decided && slot.decided->digest == digest) return &slot.decided->requests;
    if (slot.cert && slot.cert->digest == digest && !slot.cert->pre_prepare.empty() &&
        batch_digest(slot.cert->requests) == digest)
        return &slot.cert->requests;
    if (!slot.pre_prepare.empty() && slot.digest == digest) return &slot.requests;
    return nullptr;
}

// Asks one peer (the next in turn) for the lowest missing batches, at most kBatchesPerReply.
// Any replica that prepared one holds it; f+1 honest ones did. A batch learned meanwhile (a
// catch-up decided it) is re-proposed at once; one below a checkpoint is no longer wanted.
void PbftEngine::fetch_missing_batches(Output& out) {
    if (missing_batches_.empty() || !active_ || !is_primary()) return;
    for (auto it = missing_batches_.begin(); it != missing_batches_.end();) {
        const auto* held = batch_held(it->first, it->second);
        if (!held) {
            ++it;
            continue;
        }
        auto [seq, digest] = *it;
        it = missing_batches_.erase(it);
        repropose(seq, digest, *held, out);
    }
    if (missing_batches_.empty()) return propose(out);
    next_batch_peer_ = (next_batch_peer_ + 1) % n_;
    if (next_batch_peer_ == config_.id) next_batch_peer_ = (next_batch_peer_ + 1) % n_;
    pb::FetchBatch req;
    for (const auto& [seq, digest] : missing_batches_) {
        if (static_cast<size_t>(req.wanted_size()) == kBatchesPerReply) break;
        pb::BatchRef* ref = req.add_wanted();
        ref->set_seq(seq);
        ref->set_digest(hash_bytes(digest));
    }
    out.send.push_back(Outgoing{next_batch_peer_, seal(crypto::MessageType::kFetchBatch, req)});
}

void PbftEngine::on_fetch_batch(ReplicaId from, const crypto::Envelope& env, Output& out) {
    pb::FetchBatch req;
    if (!decode(env.body, req)) return detect(from, Misbehaviour::kMalformed);
    if (static_cast<size_t>(req.wanted_size()) > kBatchesPerReply)
        return detect(from, Misbehaviour::kBadFetchBatch);
    // Only the primary of this replica's view has a use for batches: anyone else asking is
    // refused before any work, and the primary gets one answer per answer_interval_ticks().
    if (from != primary_of(view_)) return;
    if (!may_answer(batches_answered_, from)) return detect(from, Misbehaviour::kFetchFlood);
    pb::Batches reply;
    for (const auto& ref : req.wanted()) {
        if (const auto* held = batch_held(ref.seq(), hash_from_bytes(ref.digest()))) {
            pb::Batch* b = reply.add_batches();
            b->set_seq(ref.seq());
            for (const auto& r : *held) b->add_requests(r);
        }
    }
    if (reply.batches_size() == 0) return;
    out.send.push_back(Outgoing{from, seal(crypto::MessageType::kBatch, reply)});
}

void PbftEngine::on_batch(ReplicaId from, const crypto::Envelope& env, Output& out) {
    pb::Batches reply;
    if (!decode(env.body, reply)) return detect(from, Misbehaviour::kMalformed);
    if (!active_ || !is_primary()) return;  // asked for in a view since left
    for (auto& b : *reply.mutable_batches()) {
        auto it = missing_batches_.find(b.seq());
        if (it == missing_batches_.end()) continue;
        if (!in_window(b.seq())) continue;  // (missing_batches_ holds nothing below h)
        std::vector<std::string> requests(b.requests().begin(), b.requests().end());
        // The digest is what 2f+1 replicas' certificate names: a batch that hashes to it is it.
        if (batch_digest(requests) != it->second) {
            detect(from, Misbehaviour::kBadBatch);
            continue;
        }
        crypto::Hash digest = it->second;
        missing_batches_.erase(it);
        repropose(b.seq(), digest, std::move(requests), out);
    }
    if (missing_batches_.empty()) propose(out);
}

// The new primary's pre-prepare for a batch NEW-VIEW re-proposes.
void PbftEngine::repropose(uint64_t seq, const crypto::Hash& digest,
                           std::vector<std::string> requests, Output& out) {
    std::string raw = seal_pre_prepare(key_, view_, seq, digest, requests);
    accept_pre_prepare(seq, view_, digest, std::move(requests), std::move(raw), out);
}

}  // namespace tally::bft::pbft
