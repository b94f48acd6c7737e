// PbftEngine, PBFT as one Engine, split by message family over several files —
//   engine.cc       construction, inputs, status, restart, shared helpers
//   normal_case.cc  request, pre-prepare, prepare, commit, execution order
//   checkpoint.cc   checkpoints, stable checkpoints, water marks, garbage collection
//   catch_up.cc     fetching committed batches a replica missed, re-proposing them
//   view_change.cc  view-change timer, VIEW-CHANGE, NEW-VIEW
//
// Deterministic: ordered containers only; time is the tick count; no randomness.
// Untrusted input (every message body, every request in a batch) is validated before any
// state changes; a bad message is dropped and reported through take_detected(), never asserted on.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bft/engine.h"
#include "bft/pbft/messages.h"
#include "bft/pbft/pbft.h"
#include "bft/quorum.h"
#include "bft/recent_clients.h"

namespace tally::bft::pbft {

class PbftEngine final : public Engine {
public:
    PbftEngine(const Config& config, const crypto::KeyPair& key,
               RequestAuthenticator& authenticator);

    Output on_tick() override;
    Output on_message(ReplicaId from, const crypto::Envelope& envelope, std::string_view raw) override;
    // A vote for a slot whose certificate this replica already holds is not wanted; one toward
    // a certificate it lacks says how many more it needs (normal_case.cc).
    Worth worth_unverified(crypto::MessageType type, std::string_view body,
                           std::optional<ReplicaId> from) const override;
    Output on_client_request(const ClientRequest& request) override;
    Output on_executed(uint64_t seq, const crypto::Hash& digest) override;
    Output on_state_restored(uint64_t seq, const crypto::Hash& digest) override;
    Output on_start(const std::vector<std::pair<std::string, std::string>>& records,
                    uint64_t executed_seq, const crypto::Hash& digest,
                    const CertificateOf& certificate_of) override;
    EngineStatus status() const override;
    std::vector<Detected> take_detected() override;

    // Checks the invariants that hold between inputs; aborts on a broken one. The simulator
    // calls it after every input.
    void check_invariants() const;

private:
    using VoteKey = std::pair<uint64_t, crypto::Hash>;        // (view, digest)
    using Votes = std::map<ReplicaId, std::string>;            // sender -> envelope

    struct PreparedCert {
        uint64_t view = 0;
        crypto::Hash digest{};
        std::vector<std::string> requests;
        std::string pre_prepare;            // envelope
        std::vector<std::string> prepares;  // 2f envelopes from distinct backups
    };

    // What was decided at a sequence number: the batch 2f+1 replicas committed, and the proof
    // (the pre-prepare and 2f+1 matching commits) that lets a peer catching up check it.
    struct Decided {
        uint64_t view = 0;
        crypto::Hash digest{};
        std::vector<std::string> requests;
        std::string pre_prepare;
        std::vector<std::string> commits;
    };

    // Everything known about one sequence number.
    struct Slot {
        // The pre-prepare accepted in `view` (the current view once accepted).
        bool accepted = false;
        uint64_t view = 0;
        crypto::Hash digest{};
        std::vector<std::string> requests;
        std::string pre_prepare;
        // The store's 'a' record of (seq, view) holds `pre_prepare`: the 'b' and 'c' records
        // of that view and pre-prepare leave it out (messages.h, kSlotAccepted).
        bool pre_prepare_recorded = false;
        bool prepared = false;   // Invariant: prepared => accepted, in `view`
        bool committed = false;  // Invariant: committed => prepared (committed-local)
        // Set by NEW-VIEW: the only digest a pre-prepare for this seq in the new view may carry.
        std::optional<crypto::Hash> expected;
        // ... and whether V held a prepared certificate for it (else it is a null fill).
        bool expected_certified = false;
        // Votes of every view, by (view, digest): a certificate needs them as envelopes.
        std::map<VoteKey, Votes> prepares;
        std::map<VoteKey, Votes> commits;
        // The prepared certificate of the highest view this replica prepared in (for P).
        std::optional<PreparedCert> cert;
        // Set once committed-local (or proven committed by a peer); never changes after, in any
        // view or across restarts: this replica never accepts another digest for the slot, and
        // executes this batch. (The fields above are the normal case of the current view: a
        // replica that accepted an equivocating primary's other batch may hold it there.)
        // Invariant: committed <=> decided.
        std::optional<Decided> decided;
    };

    // A request this replica holds that has not executed (waiting_).
    struct Waiting {
        std::string payload;
        uint64_t since_tick = 0;
        bool in_log = false;  // proposed in a pre-prepare this replica accepted
    };

    // --- engine.cc
    ReplicaId primary_of(uint64_t view) const { return static_cast<ReplicaId>(view % n_); }
    bool is_primary() const { return primary_of(view_) == config_.id; }
    uint64_t high_water_mark() const { return low_ + config_.watermark_window; }
    bool in_window(uint64_t seq) const { return seq > low_ && seq <= high_water_mark(); }
    // The restart rule: may this replica pre-prepare or prepare in `view`?
    bool may_vote(uint64_t view) const {
        return !recovering_ && (!silent_through_view_ || view > *silent_through_view_) &&
               view >= rejoined_below_view_;
    }
    // The rejoin rule, and recovery: may this replica send a COMMIT in `view`? (A recovering
    // one sends none, so that the commits that end its recovery are all its peers'.)
    bool may_commit(uint64_t view) const { return !recovering_ && view >= rejoined_below_view_; }
    std::string seal(crypto::MessageType type, const google::protobuf::Message& body) const;
    void detect(ReplicaId from, Misbehaviour kind, bool proven = true);
    std::optional<crypto::Envelope> open_from(std::string_view raw, crypto::MessageType type,
                                              ReplicaId* sender) const;
    bool is_replica_key(const crypto::PublicKey& key) const;

    // Proof shape, before any signature is checked: `proof` holds exactly `count` envelopes of
    // `type`, each signed (so far as its header says) by a distinct replica other than
    // `excluded`. A proof with duplicates or extra entries is refused at no signature's cost.
    bool proof_shape_ok(const google::protobuf::RepeatedPtrField<std::string>& proof,
                        crypto::MessageType type, size_t count,
                        std::optional<ReplicaId> excluded = std::nullopt) const;
    // Amplification bounds: a peer gets at most one answer of a kind (a NEW-VIEW to its stale
    // VIEW-CHANGE, a CommittedReply to its FetchCommitted) per answer_interval_ticks(). Records the
    // answer when allowed. An honest asker asks once per retransmit_ticks at most.
    uint64_t answer_interval_ticks() const { return std::max<uint64_t>(1, config_.retransmit_ticks / 2); }
    bool may_answer(std::map<ReplicaId, uint64_t>& answered, ReplicaId peer);
    void forget_delivered(uint64_t through_seq);  // executed: no longer "executing now"
    // Restart (on_start's steps, in order). The view record's view and whether it was in it
    // (active_); false without one.
    bool load_view_record(const std::vector<std::pair<std::string, std::string>>& records);
    // The stored stable checkpoint, if its proof holds (one that does not is reported).
    std::optional<pb::StableCheckpoint> load_stable_record(
        const std::vector<std::pair<std::string, std::string>>& records);
    // The slot records in (stable_seq, reach] back into the log; those above reach are reported.
    void load_slots(const std::vector<std::pair<std::string, std::string>>& records,
                    uint64_t stable_seq, uint64_t reach, uint64_t executed_seq);
    // Executed batches whose commit records the store lost, decided again from the ledger's
    // certificates.
    void restore_decided_from_ledger(const CertificateOf& certificate_of, uint64_t stable_seq,
                                     uint64_t reach, uint64_t executed_seq);
    // The low water mark and its proof from the stable record (or a state fetch up to it).
    void restore_stable_checkpoint(const pb::StableCheckpoint& stable, uint64_t executed_seq,
                                   Output& out);
    void reenter_view(bool view_known);  // the restart rule (see silent_through_view_)
    // Restart: rebuilds the log from the store's slot records above the stable checkpoint.
    void load_slot(uint64_t seq, uint64_t view, char kind, std::string_view value, uint64_t executed_seq);
    // Decides `seq` from `certificate` (a pb::CommittedProof) at a restart: false when it
    // does not parse, fails its check, or proves another seq (or another view than `view`).
    bool restore_decided(uint64_t seq, std::optional<uint64_t> view, std::string_view certificate);
    // Fills in each committed batch's certificate (Committed::certificate) from what was
    // decided there; every input's output passes through it.
    Output with_certificates(Output out) const;
    // Removes a waiting request (it executed, or left with a state transfer); returns the next.
    std::map<crypto::Hash, Waiting>::iterator erase_waiting(std::map<crypto::Hash, Waiting>::iterator it);

    // --- normal_case.cc
    void on_request(const ClientRequest& request, Output& out);
    // PBFT.md rule 8: a backup forwards to the primary the requests it has held for
    // forward_delay_ticks() without seeing them proposed; the primary takes them as a client's.
    uint64_t forward_delay_ticks() const { return std::max<uint64_t>(1, config_.view_change_timeout_ticks / 4); }
    void tick_forward(Output& out);
    void tick_recovery(Output& out);
    void hold_peer_request(ReplicaId from, const pb::Forward& forward, Output& out);
    void maybe_end_recovery(Output& out);
    void maybe_stop_withholding(Output& out);
    void on_forward(ReplicaId from, const crypto::Envelope& env, Output& out);
    void on_pre_prepare(ReplicaId from, const crypto::Envelope& env, std::string_view raw, Output& out);
    // Keeps a message for a view this replica has not entered (future_), within its bounds.
    void keep_future(ReplicaId from, const crypto::Envelope& env, std::string_view raw);
    void on_vote(ReplicaId from, const crypto::Envelope& env, std::string_view raw, Output& out);
    // Validates a pre-prepare's batch: size, every request's client signature (its digest is
    // checked first, digest_binds).
    bool valid_batch(ReplicaId from, const pb::PrePrepare& pp);
    bool valid_header(ReplicaId from, const pb::PrePrepare& pp) const;
    // The record of what this replica signs for (v, s), which may wait for its next write.
    static PersistPut accepted_record(uint64_t seq, uint64_t view, const pb::PreparedProof& record);
    void accept_pre_prepare(uint64_t seq, uint64_t view, const crypto::Hash& digest,
                            std::vector<std::string> requests, std::string raw, Output& out);
    void propose(Output& out);
    void advance(uint64_t seq, Output& out);
    void deliver(Output& out);
    // The slot is committed: remember what was decided and persist its proof (not synced: a
    // lost record costs only the ability to serve it to peers and to refuse a conflicting
    // proposal for it, which the prepared certificates of f+1 honest replicas prevent anyway).
    void decide(uint64_t seq, Slot& slot, Decided decided, Output& out);
    // Whether a 'b' or 'c' record of `view` proving `pre_prepare` may leave it out: the slot's
    // 'a' record, written before it, holds that very pre-prepare.
    static bool pre_prepare_recorded(const Slot& slot, uint64_t view, const std::string& pre_prepare) {
        return slot.pre_prepare_recorded && slot.view == view && slot.pre_prepare == pre_prepare;
    }
    // Would accepting a pre-prepare of `digest` at `seq` contradict what was decided there?
    // Yes for another batch than the one decided; at a slot executed without a record of which
    // batch, for anything but what a checked NEW-VIEW re-proposes from a certificate.
    bool conflicts_with_decided(uint64_t seq, const crypto::Hash& digest) const;
    void mark_in_log(uint64_t seq, const std::vector<std::string>& requests);
    std::vector<std::string> take_batch();
    // Batching: may the primary start another batch now?
    bool batch_is_due() const;

    // --- checkpoint.cc
    void on_checkpoint(ReplicaId from, const crypto::Envelope& env, std::string_view raw, Output& out);
    void send_checkpoint(uint64_t seq, const crypto::Hash& digest, Output& out);
    void try_stabilize(uint64_t seq, Output& out);
    void make_stable(uint64_t seq, const crypto::Hash& digest, std::vector<std::string> proof,
                     Output& out);
    void collect_garbage(Output& out);
    // Checks a checkpoint proof (2f+1 distinct valid checkpoint envelopes for seq/digest).
    bool valid_checkpoint_proof(uint64_t seq, const crypto::Hash& digest,
                                const google::protobuf::RepeatedPtrField<std::string>& proof) const;

    // --- catch_up.cc
    void tick_catch_up(Output& out);
    void on_fetch_committed(ReplicaId from, const crypto::Envelope& env, Output& out);
    void on_committed_reply(ReplicaId from, const crypto::Envelope& env, Output& out);
    // A new primary's batches: V's certificates name them by digest only. It re-proposes those
    // it holds at once, asks peers for the others (FetchBatch, one peer a retransmit interval,
    // in turn), and proposes nothing new until it has them all.
    const std::vector<std::string>* batch_held(uint64_t seq, const crypto::Hash& digest) const;
    void fetch_missing_batches(Output& out);
    void on_fetch_batch(ReplicaId from, const crypto::Envelope& env, Output& out);
    void on_batch(ReplicaId from, const crypto::Envelope& env, Output& out);
    void repropose(uint64_t seq, const crypto::Hash& digest, std::vector<std::string> requests, Output& out);
    // Checks a committed batch's proof; on success fills view, seq, digest and the batch.
    bool valid_committed_proof(const pb::CommittedProof& proof, uint64_t* view, uint64_t* seq,
                               crypto::Hash* digest, std::vector<std::string>* requests) const;

    // --- view_change.cc
    void tick_view_change(Output& out);
    void start_view_change(uint64_t new_view, Output& out);
    void on_view_change(ReplicaId from, const crypto::Envelope& env, std::string_view raw, Output& out);
    void on_new_view(ReplicaId from, const crypto::Envelope& env, std::string_view raw, Output& out);
    void maybe_send_new_view(uint64_t view, Output& out);
    void maybe_join_higher_view(Output& out);
    // Over the VIEW-CHANGEs held (view_changes_): whether `peer` asks for a view above `v`,
    // and how many peers other than this replica do.
    bool asks_above(ReplicaId peer, uint64_t v) const;
    size_t peers_asking_above(uint64_t v) const;
    // The rejoin rule: a replica alone between views notes the newest lower view each peer
    // showed a signed normal-case message of, and rejoins the highest that f+1 peers are in.
    // Only a message for a seq above any this replica knew of when it left its view counts:
    // progress made after it left, not a retransmission or a heartbeat of what was before
    // (replicas that all wait for a dead primary would otherwise pull each other back to its
    // view). True when it rejoined a view.
    bool note_lower_view(ReplicaId from, uint64_t view, uint64_t seq, Output& out);
    // Checks a VIEW-CHANGE's C and P proofs.
    bool valid_view_change(ReplicaId sender, const pb::ViewChange& vc) const;
    // A VIEW-CHANGE's certificate: the primary's signed header (no batch) and 2f prepares.
    bool valid_prepared_proof(const pb::PreparedProof& proof, uint64_t below_view,
                              PreparedCert* cert, uint64_t* seq) const;
    // Computes NEW-VIEW's O set from V: min_s, and per seq the digest (null if none).
    struct Reproposal {
        uint64_t seq = 0;
        crypto::Hash digest{};
        bool certified = false;  // from a prepared certificate in V (else a null fill)
    };
    bool compute_new_view(const std::vector<pb::ViewChange>& vcs, uint64_t* min_s,
                          crypto::Hash* min_digest, std::vector<std::string>* min_proof,
                          std::vector<Reproposal>* o) const;
    void enter_view(uint64_t view, uint64_t min_s, const crypto::Hash& min_digest,
                    std::vector<std::string> min_proof, const std::vector<Reproposal>& o,
                    Output& out);
    // Does O put another batch where this replica knows one was decided?
    bool contradicts_decided(const std::vector<Reproposal>& o) const;
    void persist_view(Output& out);
    void replay_future(Output& out);

    Config config_;
    crypto::KeyPair key_;
    RequestAuthenticator& authenticator_;
    uint32_t n_;
    ByzantineQuorum quorum_;

    uint64_t now_ = 0;  // ticks since start

    // View. Invariant: active_ is false only between sending VIEW-CHANGE for view_ and
    // accepting NEW-VIEW for it.
    uint64_t view_ = 0;
    bool active_ = true;
    // The restart rule. Pre-prepares and prepares are written without fsync (Output::sync), so
    // a machine crash may lose the record of one this replica sent. After a restart it
    // therefore sends neither in any view up to the one it was in (it still commits from its
    // peers' votes, and votes again from the next view on). Commits, prepared certificates and
    // views are synced, so nothing else it signed can be forgotten.
    std::optional<uint64_t> silent_through_view_;
    // Recovery (Config::recovering): silent in every view until a batch holding this start's
    // recovery request (Config::recovery_request, made after the store was lost) commits, in
    // view V, and this replica is in V or above. Every view it voted in before the loss is at
    // most V: to vote in a view v it accepted a NEW-VIEW of 2f+1 VIEW-CHANGEs for v, at least
    // f of them from honest peers, whose view records (synced, rejoin included) are then at
    // least v; V's 2f+1 commits came from peers (it is silent), at least f+1 of them honest, so
    // at least one honest peer signed both, and it never commits in a view below one it left.
    // Old messages cannot end it: no commit certificate signed before the loss holds the
    // request. (Ending on any 2f+1 commits in its view, as before, let a traitor replay old
    // ones, of a view long left, and then have it vote again in a view it had voted in.)
    // Recovery ends as a restart does: silent through its view (the view record is synced),
    // voting from the next. A replica that lost its store counts as one of the f until then.
    // Not covered by this argument: a VIEW-CHANGE it signed before the loss for a view above V
    // that it never entered (one it signs later for that view reports what it holds then).
    bool recovering_ = false;
    std::optional<uint64_t> recovery_view_;  // V: the view its recovery request committed in
    uint64_t recovery_seq_ = 0;              // r: the seq of the batch that holds it
    // The prepared certificates it forgot. A VIEW-CHANGE reports its signer's prepared
    // certificates, and a NEW-VIEW keeps a batch that may have committed only because 2f+1
    // VIEW-CHANGEs intersect the 2f+1 replicas that prepared it in an honest one that reports
    // it. A replica that lost its store reports none of what it prepared before: its VIEW-CHANGE
    // and f traitors' could make a NEW-VIEW that drops a committed batch (session 32's note).
    // So from the loss on it signs no VIEW-CHANGE (and, as a primary, builds a NEW-VIEW from
    // 2f+1 of its peers' alone) until its stable checkpoint reaches r + L: before the loss it
    // prepared only within (h, h + L] of its water mark h then, a checkpoint stable before the
    // loss, and h < r (2f+1 peers committed r, f+1 of them honest, and at least one of those
    // had executed h: an honest replica never prepares a new batch at a seq it executed; one
    // that lost the record of an executed batch accepts there only a re-proposal backed by a
    // certificate, so the first certificate for the batch at r comes from replicas that had not
    // executed r, and it shares an honest one with those that had executed h). Set when
    // recovery ends (its votes resume) and stored with the view record, synced (kKeyForgot: a
    // restart, a power loss of every replica, keeps it, and needs no second recovery); reset,
    // and the record erased, once low_ >= it.
    std::optional<uint64_t> forgot_through_;
    // Set when withholding ends: between views, it signs the VIEW-CHANGE it withheld at the next
    // tick (as the primary it needs its own to send a NEW-VIEW: maybe_send_new_view).
    bool sign_withheld_view_change_ = false;
    bool withholds_view_changes() const { return recovering_ || forgot_through_.has_value(); }
    uint64_t recovery_asked_tick_ = 0;       // when it last sent the request to its peers
    bool view_recorded_ = false;  // the store holds the current view (synced before any vote)
    // The rejoin rule. A replica that changed view alone (its peers stayed in an older view)
    // goes back to the view f+1 peers show they are in, rather than wait for the next real
    // view change. Its VIEW-CHANGE for the view it left may still be counted in a NEW-VIEW, and
    // it does not report what it learns after it; so in every view below the one it left it
    // stays silent: no pre-prepare, prepare or commit (it still executes what 2f+1 of its
    // peers commit). Persisted with the view record (ViewRecord::rejoined_below): until it
    // enters another view its record keeps the view it left, and after a restart it rejoins
    // again; but a NEW-VIEW for a view between the two, entered while rejoined, writes that
    // lower view, and without this a restart would let it vote in views up to the one it
    // left, below a VIEW-CHANGE it signed that reports nothing of them. Invariant: only rises.
    uint64_t rejoined_below_view_ = 0;
    std::map<ReplicaId, uint64_t> lower_view_seen_;  // peer -> newest view below view_ it showed
    uint64_t left_view_at_seq_ = 0;  // the highest seq this replica knew of when it left its view
    // The last view this replica was active in: it never rejoins one below it (f+1 peers may
    // include a lagging honest replica and a traitor, and what it accepted there must stay in
    // views at most its own).
    uint64_t entered_view_ = 0;

    // The log, by sequence number. Invariant: every key is in (low_, low_ + 2L].
    std::map<uint64_t, Slot> log_;
    uint64_t next_seq_ = 1;        // primary: the next sequence number to assign
    uint64_t last_delivered_ = 0;  // the highest seq handed out in Output::commit
    uint64_t last_executed_ = 0;   // the highest seq the caller executed
    crypto::Hash last_executed_digest_{};

    // Requests this replica holds that have not executed: digest -> (payload, arrival tick).
    // The primary proposes from queue_; every replica times the oldest for view change.
    std::map<crypto::Hash, Waiting> waiting_;
    // waiting_ in arrival order (since_tick, digest): the view-change timer picks the oldest.
    std::set<std::pair<uint64_t, crypto::Hash>> arrivals_;
    // PBFT's request timer: it runs for one waiting request, the oldest when it was picked, from
    // progress_tick_. Only that request's execution restarts it (for the next oldest): other
    // clients' batches and empty batches are no progress for it, so a primary that leaves one
    // client out while committing others still times out.
    std::optional<crypto::Hash> timed_request_;
    std::deque<crypto::Hash> queue_;  // primary: requests in arrival order, not yet proposed
    // Clients this replica got requests from lately (batch_is_due). At most batch_size_max: a
    // full batch proposes at once anyway.
    RecentClients recent_clients_{config_.batch_size_max};
    // Backup: requests to forward to the primary if still not proposed by (tick, digest).first.
    // Invariant: at most one entry per waiting request and view (bounded by waiting_'s bound).
    std::deque<std::pair<uint64_t, crypto::Hash>> to_forward_;
    // Primary: the tick of the last Forward taken from each peer, and how many requests it
    // took from that peer in that tick (a traitor's forwards are bounded per tick).
    std::map<ReplicaId, std::pair<uint64_t, uint32_t>> forwards_taken_;
    // The last own request (one it signed: its recovery request) a backup took from each peer
    // (hold_peer_request), and when.
    struct PeerRequest {
        crypto::Hash digest{};
        uint64_t tick = 0;
    };
    std::map<ReplicaId, PeerRequest> peer_requests_;
    // Requests of batches handed out in Output::commit that the caller has not executed yet,
    // by seq: a copy arriving meanwhile is already done (the caller answers it once executed)
    // and must not wait again, or it would time out into a view change no fault caused.
    std::map<uint64_t, std::vector<crypto::Hash>> delivered_requests_;
    std::set<crypto::Hash> delivered_digests_;

    // Checkpoints: seq -> digest -> sender -> envelope.
    std::map<uint64_t, std::map<crypto::Hash, Votes>> checkpoints_;
    std::map<uint64_t, crypto::Hash> own_checkpoints_;
    uint64_t low_ = 0;  // h: the last stable checkpoint
    crypto::Hash low_digest_{};
    std::vector<std::string> low_proof_;  // 2f+1 checkpoint envelopes (empty at 0)
    bool fetching_snapshot_ = false;
    uint64_t fetch_target_ = 0;

    // Catch-up: the highest seq peers showed a commit for, and whom to ask next.
    uint64_t max_seq_seen_ = 0;
    uint64_t last_retransmit_tick_ = 0;
    bool retransmitted_ = false;  // a catch-up round ran since this engine started (tick_catch_up)
    ReplicaId next_fetch_peer_ = 0;

    // View change.
    std::map<uint64_t, std::map<ReplicaId, std::string>> view_changes_;  // view -> sender -> env
    std::set<uint64_t> new_view_sent_;
    std::string last_new_view_;  // the NEW-VIEW that began the current view (none in view 0)
    std::map<ReplicaId, uint64_t> new_view_answered_;  // peer -> tick it last got last_new_view_
    std::map<ReplicaId, uint64_t> committed_answered_;  // peer -> tick it last got a CommittedReply
    std::map<ReplicaId, uint64_t> batches_answered_;   // peer -> tick it last got a Batch
    // New primary: seq -> digest of re-proposals whose batch it still lacks (at most a window).
    std::map<uint64_t, crypto::Hash> missing_batches_;
    ReplicaId next_batch_peer_ = 0;
    uint64_t view_change_timeout_ticks_;  // current T; doubles on each failed view change
    uint64_t view_change_started_tick_ = 0;  // also: when it last re-sent its VIEW-CHANGE
    std::optional<uint64_t> view_change_quorum_tick_;  // when 2f+1 VIEW-CHANGEs were first held
    uint64_t progress_tick_ = 0;  // when the request timer (timed_request_) last (re)started
    // Messages for a view this replica has not entered yet, replayed when it does.
    // Bounded per sender: kFutureMessagesPerSenderMax messages and kFutureBytesPerSenderMax
    // bytes (future_load_ counts them).
    std::deque<std::tuple<ReplicaId, crypto::Envelope, std::string>> future_;
    std::map<ReplicaId, std::pair<size_t, size_t>> future_load_;  // sender -> (count, bytes)
    static constexpr size_t kFutureMessagesPerSenderMax = 1024;
    static constexpr size_t kFutureBytesPerSenderMax = 8u << 20;

    std::vector<Detected> detected_;
    // (seq, peer) pairs this replica sent its pre-prepare to as evidence of equivocation.
    std::set<std::pair<uint64_t, ReplicaId>> evidence_sent_;
};

}  // namespace tally::bft::pbft
