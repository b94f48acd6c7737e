// View change (PBFT.md "View change"): a backup whose waiting requests do not execute in time
// moves to the next view and sends VIEW-CHANGE with its stable checkpoint proof (C) and its
// prepared certificates above it (P). The new primary gathers 2f+1 of them (V), computes the
// batches to re-propose (O) and sends NEW-VIEW; each backup recomputes O from V before
// accepting it. Failed view changes double the timeout; f+1 view changes for higher views
// make a replica join the smallest of them.
#include <algorithm>
#include <set>

#include "bft/pbft/engine.h"

namespace tally::bft::pbft {

void PbftEngine::tick_view_change(Output& out) {
    if (active_) {
        // PBFT's request timer (timed_request_): it runs for the oldest waiting request, from
        // when it arrived or the previous timed request executed or a view began; only its
        // own execution restarts it.
        // Not while this replica fetches a snapshot: behind the others, it cannot tell a slow
        // primary from its own lag (a long transfer under load would otherwise end in a view
        // change of its own, alone, which no quorum joins).
        if (fetching_snapshot_) progress_tick_ = now_;
        if (waiting_.empty()) {
            timed_request_.reset();
            return;
        }
        if (!timed_request_) timed_request_ = arrivals_.begin()->second;
        if (now_ - progress_tick_ >= view_change_timeout_ticks_) start_view_change(view_ + 1, out);
        return;
    }
    // Between views. The timer of a view change starts only once 2f+1 replicas are seen
    // changing view, to this view or a later one (Castro & Liskov start it at 2f+1 VIEW-CHANGEs
    // for the view; counting later views too lets replicas that timed out at different times
    // meet in one view). Before that nothing says a view can form, and a replica cut off from
    // the others would climb views alone and come back outside every quorum. Until then it
    // re-sends its VIEW-CHANGE every T, since one may have been lost (after a restart it has
    // none in memory, and signs it anew).
    std::set<ReplicaId> changing;
    for (auto it = view_changes_.lower_bound(view_); it != view_changes_.end(); ++it)
        for (const auto& [sender, envelope] : it->second) changing.insert(sender);
    auto held = view_changes_.find(view_);
    if (changing.size() < quorum_.quorum()) {
        view_change_quorum_tick_.reset();
        if (now_ - view_change_started_tick_ < view_change_timeout_ticks_) return;
        view_change_started_tick_ = now_;
        if (held != view_changes_.end() && held->second.count(config_.id)) {
            out.send.push_back(Outgoing{kAllReplicas, held->second.at(config_.id)});
        } else if (!withholds_view_changes()) {
            start_view_change(view_, out);
        }
        return;
    }
    if (!view_change_quorum_tick_) view_change_quorum_tick_ = now_;
    if (now_ - *view_change_quorum_tick_ >= view_change_timeout_ticks_) {
        // No valid NEW-VIEW in time although the view could form: try the next view, waiting
        // twice as long.
        view_change_timeout_ticks_ *= 2;
        start_view_change(view_ + 1, out);
    }
}

void PbftEngine::persist_view(Output& out) {
    out.persist.push_back(
        PersistPut{std::string(kKeyView), view_record(ViewRecord{view_, active_, rejoined_below_view_})});
    out.sync = true;
    view_recorded_ = true;
}

void PbftEngine::start_view_change(uint64_t new_view, Output& out) {
    // A replica that rejoined a lower view (the rejoin rule) had already left for
    // rejoined_below_view_: it may have signed a VIEW-CHANGE and, as primary, a NEW-VIEW for
    // any view in between, which it no longer remembers after a restart. It never signs for
    // those views again (seed 7953: a NEW-VIEW for view 1 signed twice, differently).
    new_view = std::max(new_view, rejoined_below_view_);
    if (active_) {
        lower_view_seen_.clear();
        left_view_at_seq_ = std::max({last_delivered_, max_seq_seen_, log_.empty() ? 0 : log_.rbegin()->first});
    }
    view_ = new_view;
    active_ = false;
    out.steps.push_back(Step{0, new_view, "view-change", {}});
    view_change_started_tick_ = now_;
    view_change_quorum_tick_.reset();
    queue_.clear();
    missing_batches_.clear();
    if (withholds_view_changes()) {
        // It forgot prepared certificates (engine.h, forgot_through_): it waits for a NEW-VIEW
        // made of its peers' VIEW-CHANGEs, or builds one from them as the primary.
        persist_view(out);
        maybe_send_new_view(new_view, out);
        return;
    }

    pb::ViewChange vc;
    vc.set_new_view(new_view);
    vc.set_stable_seq(low_);
    if (low_ > 0) vc.set_stable_digest(hash_bytes(low_digest_));
    for (const auto& e : low_proof_) vc.add_checkpoint_proof(e);
    for (const auto& [seq, slot] : log_) {
        if (seq <= low_ || !slot.cert) continue;
        pb::PreparedProof* p = vc.add_prepared();
        p->set_pre_prepare(header_of(slot.cert->pre_prepare));  // the batch stays home
        for (const auto& e : slot.cert->prepares) p->add_prepares(e);
    }
    std::string raw = seal(crypto::MessageType::kViewChange, vc);
    // Persist before send: after a crash this replica must not act in a view it left.
    persist_view(out);
    view_changes_[new_view][config_.id] = raw;
    out.send.push_back(Outgoing{kAllReplicas, std::move(raw)});
    maybe_send_new_view(new_view, out);
}

void PbftEngine::on_view_change(ReplicaId from, const crypto::Envelope& env, std::string_view raw,
                                Output& out) {
    pb::ViewChange vc;
    if (!decode(env.body, vc)) return detect(from, Misbehaviour::kMalformed);
    uint64_t v = vc.new_view();
    if (v < view_ || (v == view_ && active_)) {
        // A replica left behind (restarted, partitioned): show it how this view began. A
        // NEW-VIEW is large and a stale VIEW-CHANGE small: answered only when the view change
        // is valid, and at most once per peer per answer_interval_ticks(), so a peer cannot
        // turn its cheap messages into this replica's bandwidth.
        // (Never to its own signer, which would take it for a message of its own come back.)
        if (active_ && !last_new_view_.empty() && v <= view_ && from != primary_of(view_) &&
            may_answer(new_view_answered_, from) && valid_view_change(from, vc))
            out.send.push_back(Outgoing{from, last_new_view_});
        return;
    }
    if (!valid_view_change(from, vc)) return detect(from, Misbehaviour::kBadViewChange);
    // One view change per sender is kept, its highest: memory stays bounded whatever it sends.
    // (An honest replica's VIEW-CHANGEs only rise, engine.h: a lower one after a higher is a
    // retransmission overtaken, or a traitor's way to make this map hold one per view.)
    if (asks_above(from, v)) return;
    for (auto it = view_changes_.begin(); it != view_changes_.end();) {
        if (it->first < v) it->second.erase(from);
        it = it->second.empty() ? view_changes_.erase(it) : std::next(it);
    }
    view_changes_[v][from] = std::string(raw);
    maybe_join_higher_view(out);
    maybe_send_new_view(v, out);
}

bool PbftEngine::asks_above(ReplicaId peer, uint64_t v) const {
    for (auto it = view_changes_.upper_bound(v); it != view_changes_.end(); ++it)
        if (it->second.count(peer)) return true;
    return false;
}

size_t PbftEngine::peers_asking_above(uint64_t v) const {
    std::set<ReplicaId> senders;
    for (auto it = view_changes_.upper_bound(v); it != view_changes_.end(); ++it)
        for (const auto& [sender, envelope] : it->second)
            if (sender != config_.id) senders.insert(sender);
    return senders.size();
}

// Rule: a replica that holds f+1 valid view changes for views above its own joins the
// smallest of them at once (f faulty replicas alone can never force a view change).
void PbftEngine::maybe_join_higher_view(Output& out) {
    std::map<ReplicaId, uint64_t> newest;
    for (const auto& [v, senders] : view_changes_) {
        if (v <= view_) continue;
        for (const auto& [sender, envelope] : senders) newest[sender] = v;
    }
    if (newest.size() < quorum_.weak()) return;
    uint64_t smallest = UINT64_MAX;
    for (const auto& [sender, v] : newest) smallest = std::min(smallest, v);
    start_view_change(smallest, out);
}

bool PbftEngine::note_lower_view(ReplicaId from, uint64_t view, uint64_t seq, Output& out) {
    if (seq <= left_view_at_seq_ || seq > high_water_mark()) return false;
    // A peer whose VIEW-CHANGE for a later view this replica holds has left `view`: what it
    // signed there came before (a retransmission, or a message that crossed its VIEW-CHANGE)
    // and shows nothing of where it is now; back in `view` by this rule, it would be silent
    // there. (Seed 2624410396: a replica that had just joined view 2 on two peers'
    // VIEW-CHANGEs went back to view 1 on the same two peers' older COMMITs, in one turn.)
    if (asks_above(from, view)) return false;
    uint64_t& seen = lower_view_seen_[from];
    seen = std::max(seen, view);
    std::map<uint64_t, uint32_t> in_view;  // view -> peers whose newest message is of it
    for (const auto& [peer, v] : lower_view_seen_)
        if (v < view_ && !asks_above(peer, v)) ++in_view[v];
    // f+1 other peers asking for views above v (the join rule's own condition) outweigh f+1
    // showing v: at least one honest peer has left v, and rejoining it would only have the
    // join rule take this replica up again, back and forth.
    for (auto it = in_view.rbegin(); it != in_view.rend(); ++it) {
        if (it->second < quorum_.weak() || it->first < entered_view_ ||
            peers_asking_above(it->first) >= quorum_.weak())
            continue;
        // f+1 peers signed messages of view it->first since this replica left it: at least one
        // honest replica works in that view. Rejoin it, silent (the rejoin rule, engine.h).
        rejoined_below_view_ = std::max(rejoined_below_view_, view_);
        view_ = it->first;
        entered_view_ = view_;
        active_ = true;
        view_change_quorum_tick_.reset();
        progress_tick_ = now_;
        lower_view_seen_.clear();
        detect(config_.id, Misbehaviour::kRejoinedView);
        replay_future(out);
        return true;
    }
    return false;
}

void PbftEngine::maybe_send_new_view(uint64_t view, Output& out) {
    if (primary_of(view) != config_.id || view != view_ || active_ || new_view_sent_.count(view)) return;
    if (recovering_) return;  // it may have sent another NEW-VIEW for this view before
    auto it = view_changes_.find(view);
    // Its own VIEW-CHANGE among them, unless it forgot prepared certificates and sends none
    // (engine.h, forgot_through_).
    if (it == view_changes_.end() || (!it->second.count(config_.id) && !withholds_view_changes()) ||
        it->second.size() < quorum_.quorum())
        return;
    pb::NewView nv;
    nv.set_view(view);
    std::vector<pb::ViewChange> vcs;
    for (const auto& [sender, envelope] : it->second) {
        if (vcs.size() == quorum_.quorum()) break;
        ReplicaId s = 0;
        auto env = open_from(envelope, crypto::MessageType::kViewChange, &s);
        pb::ViewChange vc;
        if (!env || !decode(env->body, vc)) continue;
        vcs.push_back(std::move(vc));
        nv.add_view_changes(envelope);
    }
    uint64_t min_s = 0;
    crypto::Hash min_digest{};
    std::vector<std::string> min_proof;
    std::vector<Reproposal> o;
    if (vcs.size() < quorum_.quorum() || !compute_new_view(vcs, &min_s, &min_digest, &min_proof, &o))
        return;
    // Only possible with more than f traitors among V: this replica will not re-propose
    // another batch where one was decided (the view change times out to the next view).
    if (contradicts_decided(o)) return detect(config_.id, Misbehaviour::kNewViewContradictsDecided);
    for (const auto& r : o) {
        pb::Vote* entry = nv.add_reproposals();
        entry->set_view(view);
        entry->set_seq(r.seq);
        entry->set_digest(hash_bytes(r.digest));
    }
    new_view_sent_.insert(view);
    std::string raw = seal(crypto::MessageType::kNewView, nv);
    last_new_view_ = raw;
    out.send.push_back(Outgoing{kAllReplicas, std::move(raw)});
    enter_view(view, min_s, min_digest, std::move(min_proof), o, out);
}

// Rule: a backup accepts NEW-VIEW only if it is signed by the primary of v+1; V holds 2f+1
// valid view changes for v+1 from distinct replicas; and recomputing O from V gives exactly
// the O received.
void PbftEngine::on_new_view(ReplicaId from, const crypto::Envelope& env, std::string_view raw,
                             Output& out) {
    pb::NewView nv;
    if (!decode(env.body, nv)) return detect(from, Misbehaviour::kMalformed);
    uint64_t v = nv.view();
    if (v < view_ || (v == view_ && active_)) return;
    if (from != primary_of(v)) return detect(from, Misbehaviour::kBadNewView);
    if (!proof_shape_ok(nv.view_changes(), crypto::MessageType::kViewChange, quorum_.quorum()))
        return detect(from, Misbehaviour::kBadNewView);
    std::vector<pb::ViewChange> vcs;
    std::set<ReplicaId> senders;
    for (const auto& envelope : nv.view_changes()) {
        ReplicaId s = 0;
        auto vc_env = open_from(envelope, crypto::MessageType::kViewChange, &s);
        pb::ViewChange vc;
        if (!vc_env || !decode(vc_env->body, vc) || vc.new_view() != v || !senders.insert(s).second ||
            !valid_view_change(s, vc))
            return detect(from, Misbehaviour::kBadNewView);
        vcs.push_back(std::move(vc));
    }
    if (vcs.size() < quorum_.quorum()) return detect(from, Misbehaviour::kBadNewView);
    uint64_t min_s = 0;
    crypto::Hash min_digest{};
    std::vector<std::string> min_proof;
    std::vector<Reproposal> o;
    if (!compute_new_view(vcs, &min_s, &min_digest, &min_proof, &o))
        return detect(from, Misbehaviour::kBadNewView);
    if (static_cast<size_t>(nv.reproposals_size()) != o.size())
        return detect(from, Misbehaviour::kBadNewView);
    for (size_t i = 0; i < o.size(); ++i) {
        const pb::Vote& entry = nv.reproposals(static_cast<int>(i));
        if (entry.view() != v || entry.seq() != o[i].seq || hash_from_bytes(entry.digest()) != o[i].digest)
            return detect(from, Misbehaviour::kBadNewView);
    }
    // A NEW-VIEW that follows from its V but puts another batch where this replica knows one
    // was decided: V's senders hid what they prepared, which more than f traitors could do.
    if (contradicts_decided(o)) return detect(from, Misbehaviour::kNewViewContradictsDecided);
    last_new_view_ = std::string(raw);
    enter_view(v, min_s, min_digest, std::move(min_proof), o, out);
}

bool PbftEngine::valid_view_change(ReplicaId sender, const pb::ViewChange& vc) const {
    (void)sender;
    if (vc.stable_seq() % config_.checkpoint_interval != 0) return false;
    // At most one certificate per seq of a window: more is refused before any is checked.
    if (static_cast<uint64_t>(vc.prepared_size()) > config_.watermark_window) return false;
    if (vc.stable_seq() > 0 &&
        !valid_checkpoint_proof(vc.stable_seq(), hash_from_bytes(vc.stable_digest()), vc.checkpoint_proof()))
        return false;
    std::set<uint64_t> seqs;
    for (const auto& p : vc.prepared()) {
        PreparedCert cert;
        uint64_t seq = 0;
        if (!valid_prepared_proof(p, vc.new_view(), &cert, &seq)) return false;
        if (seq <= vc.stable_seq() || seq > vc.stable_seq() + config_.watermark_window) return false;
        if (!seqs.insert(seq).second) return false;
    }
    return true;
}

bool PbftEngine::valid_prepared_proof(const pb::PreparedProof& proof, uint64_t below_view,
                                      PreparedCert* cert, uint64_t* seq) const {
    ReplicaId primary = 0;
    auto pp_env = open_from(proof.pre_prepare(), crypto::MessageType::kPrePrepareHeader, &primary);
    pb::PrePrepare pp;
    if (!pp_env || !decode(pp_env->body, pp) || pp.requests_size() > 0 || !pp.header().empty()) return false;
    if (pp.view() >= below_view || primary != primary_of(pp.view())) return false;
    if (!proof_shape_ok(proof.prepares(), crypto::MessageType::kPrepare, quorum_.prepares(), primary)) return false;
    crypto::Hash d = hash_from_bytes(pp.digest());
    std::set<ReplicaId> senders;
    for (const auto& raw : proof.prepares()) {
        ReplicaId s = 0;
        auto env = open_from(raw, crypto::MessageType::kPrepare, &s);
        pb::Vote vote;
        if (!env || !decode(env->body, vote)) return false;
        if (s == primary || vote.view() != pp.view() || vote.seq() != pp.seq() ||
            hash_from_bytes(vote.digest()) != d)
            return false;
        senders.insert(s);
    }
    if (senders.size() < quorum_.prepares()) return false;
    *cert = PreparedCert{pp.view(), d, {}, proof.pre_prepare(), {proof.prepares().begin(), proof.prepares().end()}};
    *seq = pp.seq();
    return true;
}

// O from V: min_s is the highest stable checkpoint in V; for every s in (min_s, max_s], the
// batch of the highest-view prepared certificate for s, or a null (empty) batch.
bool PbftEngine::compute_new_view(const std::vector<pb::ViewChange>& vcs, uint64_t* min_s,
                                  crypto::Hash* min_digest, std::vector<std::string>* min_proof,
                                  std::vector<Reproposal>* o) const {
    const pb::ViewChange* best = nullptr;
    for (const auto& vc : vcs)
        if (!best || vc.stable_seq() > best->stable_seq()) best = &vc;
    if (!best) return false;
    *min_s = best->stable_seq();
    *min_digest = best->stable_seq() > 0 ? hash_from_bytes(best->stable_digest()) : crypto::Hash{};
    min_proof->assign(best->checkpoint_proof().begin(), best->checkpoint_proof().end());

    std::map<uint64_t, PreparedCert> chosen;
    for (const auto& vc : vcs) {
        for (const auto& p : vc.prepared()) {
            PreparedCert cert;
            uint64_t seq = 0;
            if (!valid_prepared_proof(p, vc.new_view(), &cert, &seq)) return false;
            if (seq <= *min_s) continue;
            auto it = chosen.find(seq);
            if (it == chosen.end() || it->second.view < cert.view) chosen[seq] = std::move(cert);
        }
    }
    uint64_t max_s = chosen.empty() ? *min_s : chosen.rbegin()->first;
    o->clear();
    for (uint64_t s = *min_s + 1; s <= max_s; ++s) {
        auto it = chosen.find(s);
        if (it != chosen.end()) {
            o->push_back(Reproposal{s, it->second.digest, true});
        } else {
            o->push_back(Reproposal{s, batch_digest({}), false});
        }
    }
    return true;
}

void PbftEngine::enter_view(uint64_t view, uint64_t min_s, const crypto::Hash& min_digest,
                            std::vector<std::string> min_proof, const std::vector<Reproposal>& o,
                            Output& out) {
    view_ = view;
    entered_view_ = view;
    active_ = true;
    out.steps.push_back(Step{0, view, "new-view", {primary_of(view)}});
    // The back-off stays: T returns to its configured value only once a request executes in
    // this view (deliver). A view entered while the network was still slow may itself be
    // unable to execute in T, and resetting here made replicas give it up after T again, and
    // again: a livelock.
    progress_tick_ = now_;
    persist_view(out);
    maybe_end_recovery(out);  // its recovery request committed in this view or an earlier one
    view_changes_.erase(view_changes_.begin(), view_changes_.upper_bound(view));
    new_view_sent_.erase(new_view_sent_.begin(), new_view_sent_.lower_bound(view));
    if (min_s > low_) make_stable(min_s, min_digest, std::move(min_proof), out);

    // Slots start over in the new view; certificates (for later view changes) and what was
    // decided are kept.
    for (auto& [seq, slot] : log_) {
        slot.accepted = false;
        slot.prepared = false;
        slot.committed = slot.decided.has_value();
        slot.expected.reset();
        slot.expected_certified = false;
    }
    for (auto& [digest, w] : waiting_) w.in_log = false;
    to_forward_.clear();
    missing_batches_.clear();
    for (const auto& r : o) {
        if (r.seq <= low_) continue;
        log_[r.seq].expected = r.digest;
        log_[r.seq].expected_certified = r.certified;
    }
    next_seq_ = std::max(low_, o.empty() ? min_s : o.back().seq) + 1;
    next_seq_ = std::max(next_seq_, last_delivered_ + 1);

    queue_.clear();
    if (is_primary()) {
        for (const auto& r : o) {
            // Not at a slot it executed without knowing what (restart without the record):
            // peers that lack it catch up from those who hold its proof.
            if (r.seq <= low_ || conflicts_with_decided(r.seq, r.digest)) continue;
            if (r.digest == batch_digest({})) {
                repropose(r.seq, r.digest, {}, out);
            } else if (const auto* held = batch_held(r.seq, r.digest)) {
                repropose(r.seq, r.digest, *held, out);
            } else {
                missing_batches_.emplace(r.seq, r.digest);
            }
        }
        fetch_missing_batches(out);
        // Requests still waiting, oldest first, go into the new view's first batches.
        std::vector<std::pair<uint64_t, crypto::Hash>> order;
        for (const auto& [digest, w] : waiting_)
            if (!w.in_log) order.emplace_back(w.since_tick, digest);
        std::sort(order.begin(), order.end());
        for (const auto& [tick, digest] : order) queue_.push_back(digest);
    }
    if (!is_primary()) {
        // The new primary may lack what the old one never proposed: forward it again.
        for (const auto& [tick, digest] : arrivals_)
            if (!waiting_.at(digest).in_log) to_forward_.emplace_back(now_ + forward_delay_ticks(), digest);
    }
    replay_future(out);
    if (is_primary()) propose(out);
}

bool PbftEngine::contradicts_decided(const std::vector<Reproposal>& o) const {
    for (const auto& r : o) {
        auto it = log_.find(r.seq);
        if (r.seq > low_ && it != log_.end() && it->second.decided && it->second.decided->digest != r.digest)
            return true;
    }
    return false;
}

void PbftEngine::replay_future(Output& out) {
    auto pending = std::exchange(future_, {});
    future_load_.clear();
    for (auto& [from, env, raw] : pending) out.append(on_message(from, env, raw));
}

}  // namespace tally::bft::pbft
