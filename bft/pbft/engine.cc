// The PBFT engine: inputs, dispatch by message type, status and restart.
// Message families are handled in normal_case.cc, checkpoint.cc and view_change.cc.
#include "bft/pbft/engine.h"

#include <algorithm>

#include "crypto/assert.h"

namespace tally::bft::pbft {

std::unique_ptr<Engine> make_engine(const Config& config, const crypto::KeyPair& key,
                                    RequestAuthenticator& authenticator) {
    return std::make_unique<PbftEngine>(config, key, authenticator);
}

PbftEngine::PbftEngine(const Config& config, const crypto::KeyPair& key,
                       RequestAuthenticator& authenticator)
    : config_(config),
      key_(key),
      authenticator_(authenticator),
      n_(static_cast<uint32_t>(config.replicas.size())),
      quorum_{config.f},
      view_change_timeout_ticks_(config.view_change_timeout_ticks) {
    TALLY_ASSERT(n_ == quorum_.n());
    TALLY_ASSERT(config_.id < n_);
    TALLY_ASSERT(config_.replicas[config_.id] == key_.public_key());
    TALLY_ASSERT(config_.checkpoint_interval > 0);
    TALLY_ASSERT(config_.watermark_window >= config_.checkpoint_interval);
    TALLY_ASSERT(config_.batch_size_max > 0 && config_.pipeline_depth > 0);
    TALLY_ASSERT(config_.batch_bytes_max > 0);
    recovering_ = config_.recovering;
}

std::string PbftEngine::seal(crypto::MessageType type,
                             const google::protobuf::Message& body) const {
    return crypto::seal(key_, type, body.SerializeAsString());
}

void PbftEngine::detect(ReplicaId from, Misbehaviour kind, bool proven) {
    // Bounded: a flood of bad messages between two status reads must not grow memory.
    if (detected_.size() < 10000) detected_.push_back(Detected{from, kind, proven});
}

std::vector<Detected> PbftEngine::take_detected() { return std::exchange(detected_, {}); }

bool PbftEngine::proof_shape_ok(const google::protobuf::RepeatedPtrField<std::string>& proof,
                                crypto::MessageType type, size_t count,
                                std::optional<ReplicaId> excluded) const {
    if (static_cast<size_t>(proof.size()) != count) return false;
    crypto::OpenOptions header_only;
    header_only.verify_signature = false;
    std::set<ReplicaId> senders;
    for (const auto& raw : proof) {
        auto env = crypto::open(raw, header_only);
        if (!env || env->type != type) return false;
        std::optional<ReplicaId> sender;
        for (ReplicaId i = 0; i < n_; ++i)
            if (config_.replicas[i] == env->sender) sender = i;
        if (!sender || sender == excluded || !senders.insert(*sender).second) return false;
    }
    return true;
}

bool PbftEngine::may_answer(std::map<ReplicaId, uint64_t>& answered, ReplicaId peer) {
    auto it = answered.find(peer);
    if (it != answered.end() && now_ - it->second < answer_interval_ticks()) return false;
    answered[peer] = now_;
    return true;
}

bool PbftEngine::is_replica_key(const crypto::PublicKey& key) const {
    return std::find(config_.replicas.begin(), config_.replicas.end(), key) != config_.replicas.end();
}

std::optional<crypto::Envelope> PbftEngine::open_from(std::string_view raw,
                                                      crypto::MessageType type,
                                                      ReplicaId* sender) const {
    auto env = crypto::open(raw);
    if (!env || env->type != type) return std::nullopt;
    for (ReplicaId i = 0; i < n_; ++i) {
        if (config_.replicas[i] == env->sender) {
            *sender = i;
            return std::move(env).value();
        }
    }
    return std::nullopt;
}

Output PbftEngine::on_tick() {
    Output out;
    ++now_;
    recent_clients_.forget_quiet(now_);
    tick_view_change(out);
    tick_catch_up(out);
    tick_forward(out);
    tick_recovery(out);
    if (active_ && is_primary()) propose(out);
    return with_certificates(std::move(out));
}

Output PbftEngine::on_message(ReplicaId from, const crypto::Envelope& env, std::string_view raw) {
    Output out;
    if (from >= n_ || from == config_.id) {
        detect(from, Misbehaviour::kBadSender);
        return out;
    }
    switch (env.type) {
        case crypto::MessageType::kPrePrepare: on_pre_prepare(from, env, raw, out); break;
        case crypto::MessageType::kPrepare:
        case crypto::MessageType::kCommit: on_vote(from, env, raw, out); break;
        case crypto::MessageType::kCheckpoint: on_checkpoint(from, env, raw, out); break;
        case crypto::MessageType::kViewChange: on_view_change(from, env, raw, out); break;
        case crypto::MessageType::kNewView: on_new_view(from, env, raw, out); break;
        case crypto::MessageType::kFetchCommitted: on_fetch_committed(from, env, out); break;
        case crypto::MessageType::kCommitted: on_committed_reply(from, env, out); break;
        case crypto::MessageType::kForward: on_forward(from, env, out); break;
        case crypto::MessageType::kFetchBatch: on_fetch_batch(from, env, out); break;
        case crypto::MessageType::kBatch: on_batch(from, env, out); break;
        default: detect(from, Misbehaviour::kUnexpectedType); break;
    }
    return with_certificates(std::move(out));
}

Output PbftEngine::on_client_request(const ClientRequest& request) {
    Output out;
    on_request(request, out);
    return with_certificates(std::move(out));
}

Output PbftEngine::on_executed(uint64_t seq, const crypto::Hash& digest) {
    Output out;
    // The caller executes Committed batches in order, exactly once each.
    TALLY_ASSERT(seq == last_executed_ + 1 && seq <= last_delivered_);
    last_executed_ = seq;
    last_executed_digest_ = digest;
    forget_delivered(seq);
    if (seq % config_.checkpoint_interval == 0) send_checkpoint(seq, digest, out);
    if (active_ && is_primary()) propose(out);
    return with_certificates(std::move(out));
}

Output PbftEngine::on_state_restored(uint64_t seq, const crypto::Hash& digest) {
    Output out;
    if (!fetching_snapshot_ || seq < fetch_target_) return out;
    fetching_snapshot_ = false;
    last_executed_ = seq;
    last_delivered_ = std::max(last_delivered_, seq);
    last_executed_digest_ = digest;
    next_seq_ = std::max(next_seq_, seq + 1);
    progress_tick_ = now_;
    // Requests that executed inside the transferred state no longer wait; the ledger
    // answers their retransmissions. Which waiting requests those are, the engine cannot
    // tell (payloads are opaque), so it keeps only those still in its log: any other one
    // still pending comes back when its client retransmits, and a stale one left waiting
    // would time out into a view change no fault caused.
    for (auto it = log_.begin(); it != log_.end() && it->first <= seq;) it = log_.erase(it);
    forget_delivered(seq);
    std::set<crypto::Hash> in_log;
    for (const auto& [s, slot] : log_)
        for (const auto& r : slot.requests) in_log.insert(crypto::sha256(r));
    for (auto it = waiting_.begin(); it != waiting_.end();)
        it = in_log.count(it->first) ? std::next(it) : erase_waiting(it);
    std::erase_if(queue_, [&](const crypto::Hash& d) { return !waiting_.count(d); });
    deliver(out);
    return with_certificates(std::move(out));
}

Output PbftEngine::with_certificates(Output out) const {
    for (Committed& batch : out.commit) {
        if (!batch.certificate.empty()) continue;
        auto it = log_.find(batch.seq);
        if (it == log_.end() || !it->second.decided) continue;
        pb::CommittedProof proof;
        proof.set_pre_prepare(it->second.decided->pre_prepare);
        for (const auto& e : it->second.decided->commits) proof.add_commits(e);
        batch.certificate = proof.SerializeAsString();
    }
    return out;
}

std::map<crypto::Hash, PbftEngine::Waiting>::iterator PbftEngine::erase_waiting(
    std::map<crypto::Hash, Waiting>::iterator it) {
    arrivals_.erase({it->second.since_tick, it->first});
    if (timed_request_ == it->first) {
        // The request the timer ran for is done: it restarts, for the next oldest one.
        timed_request_.reset();
        progress_tick_ = now_;
    }
    return waiting_.erase(it);
}

void PbftEngine::forget_delivered(uint64_t through_seq) {
    auto end = delivered_requests_.upper_bound(through_seq);
    for (auto it = delivered_requests_.begin(); it != end; ++it)
        for (const auto& d : it->second) delivered_digests_.erase(d);
    delivered_requests_.erase(delivered_requests_.begin(), end);
}

Output PbftEngine::on_start(const std::vector<std::pair<std::string, std::string>>& records,
                            uint64_t executed_seq, const crypto::Hash& digest,
                            const CertificateOf& certificate_of) {
    Output out;
    last_executed_ = executed_seq;
    last_delivered_ = executed_seq;
    last_executed_digest_ = digest;
    next_seq_ = executed_seq + 1;
    // The water mark is the stored, proven stable checkpoint, or 0 without one: a VIEW-CHANGE
    // may only claim a checkpoint its sender can prove. The ledger's last block may lie above it.
    low_ = 0;
    const bool view_known = load_view_record(records);
    for (const auto& [key, value] : records)
        if (key == kKeyForgot) forgot_through_ = read_be64(value);
    const std::optional<pb::StableCheckpoint> stable = load_stable_record(records);
    const uint64_t stable_seq = stable ? stable->seq() : 0;
    // The log holds slots in (h, h + 2L] only.
    const uint64_t reach =
        stable_seq + std::min(2 * config_.watermark_window, UINT64_MAX - stable_seq);
    load_slots(records, stable_seq, reach, executed_seq);
    if (certificate_of)
        restore_decided_from_ledger(certificate_of, stable_seq, reach, executed_seq);
    if (stable) restore_stable_checkpoint(*stable, executed_seq, out);
    maybe_stop_withholding(out);
    reenter_view(view_known);
    // Its checkpoint at the ledger's seq may never have reached anyone (its own record of
    // signing it is in memory only): sign it again, or with every replica restarted at h + L
    // no checkpoint would ever become stable and the full window would stall the network.
    if (!fetching_snapshot_ && executed_seq > low_ &&
        executed_seq % config_.checkpoint_interval == 0)
        send_checkpoint(executed_seq, digest, out);
    // Batches decided before the crash but not executed by the ledger execute now.
    deliver(out);
    return with_certificates(std::move(out));
}

bool PbftEngine::load_view_record(const std::vector<std::pair<std::string, std::string>>& records) {
    bool known = false;
    for (const auto& [key, value] : records) {
        if (key != kKeyView) continue;
        const ViewRecord record = parse_view_record(value);
        view_ = record.view;
        active_ = record.active;
        rejoined_below_view_ = record.rejoined_below;
        known = true;
    }
    return known;
}

std::optional<pb::StableCheckpoint> PbftEngine::load_stable_record(
    const std::vector<std::pair<std::string, std::string>>& records) {
    std::optional<pb::StableCheckpoint> stable;
    for (const auto& [key, value] : records) {
        if (key != kKeyStable) continue;
        pb::StableCheckpoint record;
        if (record.ParseFromString(value) && record.seq() > 0 &&
            valid_checkpoint_proof(record.seq(), hash_from_bytes(record.state_digest()),
                                   record.proof()))
            stable = std::move(record);
        else
            detect(config_.id, Misbehaviour::kBadRecord);
    }
    return stable;
}

// Every slot above the stable checkpoint comes back, executed ones included: until a
// checkpoint is stable, this replica's prepared certificates are what makes a later view
// change keep the batches it executed (a VIEW-CHANGE without them lets a new view fill
// those slots with other batches), and what was decided there is what it must never
// contradict.
// The log holds slots in (h, h + 2L] only (`reach` is h + 2L). The node refuses a store with
// slots beyond its stable record's reach (check_stored_records), but cannot check that
// record's proof: one whose proof fails here is damage too (reported), and the slots beyond
// the h it leaves are not loaded (found by fuzzing, tests/fuzz/fuzz_store.cc: they broke that
// invariant).
void PbftEngine::load_slots(const std::vector<std::pair<std::string, std::string>>& records,
                            uint64_t stable_seq, uint64_t reach, uint64_t executed_seq) {
    const AcceptedPrePrepares accepted = accepted_pre_prepares(records);
    for (const auto& [key, value] : records) {
        const auto slot = parse_slot_key(key);
        if (!slot) continue;
        if (slot->seq > reach) {
            detect(config_.id, Misbehaviour::kBadRecord);
            continue;
        }
        if (slot->seq <= stable_seq) continue;
        // check_stored_records refused a store with a record that is not whole.
        if (const auto whole = whole_slot_record(*slot, value, accepted))
            load_slot(slot->seq, slot->view, slot->kind, *whole, executed_seq);
    }
}

// An executed batch whose commit record the store lost (written unsynced, and the power
// went) is decided all the same: the ledger keeps its certificate with the block. Without
// it this replica could not answer a FETCH-COMMITTED for that batch, and a peer that missed
// it, with no checkpoint above to transfer, would stay behind for good (seed 6455629450:
// every replica lost power after seq 3; the one that had missed seq 3 never got it).
// Only within (h, h + 2L], where the log may hold a slot: a ledger further ahead of the
// stable checkpoint than that (a store set aside by --recover beside a ledger past 2L, found
// by fuzzing: tests/fuzz/fuzz_store.cc) restores nothing there; its peers serve those
// batches, and its checkpoints move h up to them.
void PbftEngine::restore_decided_from_ledger(const CertificateOf& certificate_of,
                                             uint64_t stable_seq, uint64_t reach,
                                             uint64_t executed_seq) {
    const uint64_t window = config_.watermark_window;
    const uint64_t above = std::max(stable_seq, executed_seq > window ? executed_seq - window : 0);
    for (uint64_t seq = above + 1; seq <= std::min(executed_seq, reach); ++seq) {
        if (auto it = log_.find(seq); it != log_.end() && it->second.decided) continue;
        const std::string certificate = certificate_of(seq);
        // A block without one (installed by a state transfer) has nothing to restore.
        if (!certificate.empty() && !restore_decided(seq, std::nullopt, certificate))
            detect(config_.id, Misbehaviour::kBadLedgerCertificate);
    }
}

// The water mark this replica can prove (a VIEW-CHANGE must carry the proof).
void PbftEngine::restore_stable_checkpoint(const pb::StableCheckpoint& stable,
                                           uint64_t executed_seq, Output& out) {
    const crypto::Hash d = hash_from_bytes(stable.state_digest());
    std::vector<std::string> proof(stable.proof().begin(), stable.proof().end());
    for (const auto& e : proof) {
        ReplicaId sender = 0;
        if (open_from(e, crypto::MessageType::kCheckpoint, &sender))
            checkpoints_[stable.seq()][d][sender] = e;
    }
    if (stable.seq() > executed_seq) {
        // The ledger lost blocks the network had made stable (a machine crash before its
        // WAL reached the disk): fetch that state from peers.
        make_stable(stable.seq(), d, std::move(proof), out);
    } else {
        low_ = stable.seq();
        low_digest_ = d;
        low_proof_ = std::move(proof);
        // Its own CHECKPOINT, if the proof holds it, is its newest again: the heartbeat
        // (catch_up.cc) carries it, so that a replica that missed the checkpoint learns of
        // it from an idle network whose every replica restarted since.
        if (checkpoints_[low_][d].count(config_.id)) own_checkpoints_[low_] = d;
    }
}

// A restarted replica re-enters its view; it learns newer views from its peers.
void PbftEngine::reenter_view(bool view_known) {
    progress_tick_ = now_;
    // The restart rule (engine.h): silent where it may have voted before. The view record is
    // synced before this replica's first vote in a view, so without one it never voted; and a
    // replica that was between views had not voted in the one it was entering.
    view_recorded_ = view_known;
    if (view_known && active_) silent_through_view_ = view_;
    if (active_) entered_view_ = std::max(entered_view_, view_);
    // Restarted between views: it left its view knowing at least what it executed and logged,
    // so only progress beyond that counts towards the rejoin rule (not its peers' heartbeats,
    // which repeat their newest commit, of whatever view).
    if (!active_)
        left_view_at_seq_ =
            std::max({last_delivered_, max_seq_seen_, log_.empty() ? 0 : log_.rbegin()->first});
}

void PbftEngine::load_slot(uint64_t seq, uint64_t view, char kind, std::string_view value,
                           uint64_t executed_seq) {
    if (kind == kSlotCommitted) {
        restore_decided(seq, view, value);
        return;
    }
    pb::PreparedProof proof;
    if (!proof.ParseFromArray(value.data(), static_cast<int>(value.size()))) return;
    auto opened = open_pre_prepare(proof.pre_prepare());  // its digest checked against its batch
    if (!opened || !is_replica_key(opened->envelope.sender)) return;
    const pb::PrePrepare& pp = opened->pre_prepare;
    if (pp.view() != view || pp.seq() != seq) return;
    std::vector<std::string> requests(pp.requests().begin(), pp.requests().end());
    crypto::Hash d = hash_from_bytes(pp.digest());
    Slot& slot = log_[seq];
    if (kind == kSlotAccepted && view >= slot.view && seq > executed_seq) {
        // What this replica signed for (view, seq): it will never sign another digest there.
        // (At an executed slot, what was decided is what it must not contradict.) It was active
        // in that view: it never rejoins a view below it.
        entered_view_ = std::max(entered_view_, view);
        slot.accepted = true;
        slot.view = view;
        slot.digest = d;
        slot.requests = std::move(requests);
        slot.pre_prepare = proof.pre_prepare();
        slot.pre_prepare_recorded = true;  // this very record
        for (const auto& p : proof.prepares()) slot.prepares[{view, d}][config_.id] = p;
    } else if (kind == kSlotPrepared) {
        entered_view_ = std::max(entered_view_, view);  // it prepared there: it was active in it
        PreparedCert cert{view, d, std::move(requests), proof.pre_prepare(),
                          {proof.prepares().begin(), proof.prepares().end()}};
        if (!slot.cert || slot.cert->view < view) slot.cert = std::move(cert);
    }
    next_seq_ = std::max(next_seq_, seq + 1);
}

bool PbftEngine::restore_decided(uint64_t seq, std::optional<uint64_t> view,
                                 std::string_view certificate) {
    pb::CommittedProof proof;
    uint64_t v = 0, s = 0;
    crypto::Hash d{};
    std::vector<std::string> requests;
    if (!proof.ParseFromArray(certificate.data(), static_cast<int>(certificate.size())) ||
        !valid_committed_proof(proof, &v, &s, &d, &requests) || s != seq || (view && v != *view))
        return false;
    Slot& slot = log_[seq];
    if (slot.decided) return true;
    slot.committed = true;
    slot.decided =
        Decided{v, d, std::move(requests), proof.pre_prepare(), {proof.commits().begin(), proof.commits().end()}};
    next_seq_ = std::max(next_seq_, seq + 1);
    return true;
}

EngineStatus PbftEngine::status() const {
    EngineStatus s;
    s.protocol = "pbft";
    s.role = is_primary() ? "primary" : "backup";
    s.view = view_;
    s.last_executed = last_executed_;
    s.low_water_mark = low_;
    s.stable_checkpoint = low_;
    s.view_changing = !active_;
    s.recovering = recovering_;
    if (recovering_)
        s.view_changes_withheld_through = UINT64_MAX;  // not known before its request commits
    else if (forgot_through_)
        s.view_changes_withheld_through = *forgot_through_;
    if (active_) s.leader = primary_of(view_);
    return s;
}

void PbftEngine::check_invariants() const {
    // Sequence numbers: executed <= delivered; the stable checkpoint is a multiple of K, proven
    // by a quorum (or 0 without proof), and at or below what was delivered unless this replica
    // is fetching exactly that state (which it was handed nothing beyond). Not "at or below
    // what executed": a checkpoint can become stable between a batch's delivery and its
    // execution (make_stable does not fetch what an Output already carries).
    TALLY_ASSERT(last_executed_ <= last_delivered_);
    TALLY_ASSERT(low_ % config_.checkpoint_interval == 0);
    TALLY_ASSERT(low_ == 0 ? low_proof_.empty() : low_proof_.size() >= quorum_.quorum());
    TALLY_ASSERT(low_ <= last_delivered_ || fetching_snapshot_);
    TALLY_ASSERT(!fetching_snapshot_ || (fetch_target_ == low_ && last_delivered_ < low_));
    // The log: every key in (h, h + 2L] (accepted ones within the window itself); a prepared
    // slot was accepted; a committed slot holds what was decided. (That a delivered slot's
    // digest never changes across replicas and restarts, the simulator checks.)
    if (!log_.empty()) {
        TALLY_ASSERT(log_.begin()->first > low_);
        TALLY_ASSERT(log_.rbegin()->first <= low_ + 2 * config_.watermark_window);
    }
    for (const auto& [seq, slot] : log_) {
        TALLY_ASSERT(!slot.prepared || slot.accepted);
        // (A batch committed in a later view may arrive by catch-up before this replica
        // enters that view: its slot is committed, in the view its commits name.)
        TALLY_ASSERT(!slot.accepted || slot.view <= view_ || slot.committed);
        TALLY_ASSERT(slot.committed == slot.decided.has_value());
        TALLY_ASSERT(!slot.cert || slot.cert->view <= view_);
    }
    // Requests handed out for execution and not executed yet lie in (executed, delivered].
    if (!delivered_requests_.empty()) {
        TALLY_ASSERT(delivered_requests_.begin()->first > last_executed_);
        TALLY_ASSERT(delivered_requests_.rbegin()->first <= last_delivered_);
    }
    // The restart rule only ever silences views up to the current one.
    TALLY_ASSERT(!silent_through_view_ || *silent_through_view_ <= view_);
    // A replica that forgot prepared certificates holds back until its stable checkpoint passes
    // them, and holds no VIEW-CHANGE of its own meanwhile (it signs none; its peers' copies of
    // its old ones are dropped as its own messages).
    TALLY_ASSERT(!forgot_through_ || low_ < *forgot_through_);
    if (withholds_view_changes())
        for (const auto& [view, senders] : view_changes_) TALLY_ASSERT(!senders.count(config_.id));
    // (Not an invariant: queue_.size() <= waiting_.size(). The queue keeps stale entries —
    // requests executed or proposed since, skipped by take_batch — so it can outgrow waiting_.)
    // Own checkpoints are above h (older ones are garbage) and of executed states only.
    if (!own_checkpoints_.empty()) TALLY_ASSERT(own_checkpoints_.rbegin()->first <= last_executed_);
    TALLY_ASSERT(arrivals_.size() == waiting_.size());
    for (const auto& [view, senders] : view_changes_) TALLY_ASSERT(!senders.empty());
    for (const auto& [seq, digests] : checkpoints_) TALLY_ASSERT(!digests.empty());
    for (const auto& [sender, load] : future_load_)
        TALLY_ASSERT(load.first <= kFutureMessagesPerSenderMax && load.second <= kFutureBytesPerSenderMax);
    TALLY_ASSERT(!timed_request_ || waiting_.count(*timed_request_));
}

}  // namespace tally::bft::pbft
