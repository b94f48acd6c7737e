// PBFT's normal case (PBFT.md "Normal case"): requests, pre-prepare, prepare, commit, and
// execution strictly in sequence order.
#include <algorithm>
#include <limits>

#include "bft/pbft/engine.h"

namespace tally::bft::pbft {

namespace {
// Requests a replica keeps waiting at once; beyond it new ones are refused (the client retries).
constexpr size_t kWaitingMax = 100000;
}  // namespace

void PbftEngine::on_request(const ClientRequest& request, Output& out) {
    crypto::Hash d = crypto::sha256(request.payload);
    if (waiting_.count(d)) return;  // a retransmission of a request already held
    if (delivered_digests_.count(d)) return;  // committed, executing now: nothing to wait for
    if (request.payload.size() > config_.batch_bytes_max) {
        detect(config_.id, Misbehaviour::kRequestTooLarge);  // no batch could ever carry it
        return;
    }
    if (waiting_.size() >= kWaitingMax) {
        detect(config_.id, Misbehaviour::kRequestOverload);
        return;
    }
    recent_clients_.heard(request.info.client, now_);  // only clients whose requests wait
    // The view-change timer runs while a request waits; it starts when the first one arrives.
    if (waiting_.empty()) progress_tick_ = now_;
    waiting_.emplace(d, Waiting{request.payload, now_, false});
    arrivals_.emplace(now_, d);
    if (active_ && is_primary()) {
        queue_.push_back(d);
        propose(out);
    } else {
        to_forward_.emplace_back(now_ + forward_delay_ticks(), d);
    }
}

// Clients send to every replica, so the primary normally holds a request before any backup
// would forward it, and nothing is forwarded: only a request the primary has not proposed
// after forward_delay_ticks() (lost on its way, or a client that reached backups alone).
// One Forward per tick, of at most batch_size_max requests.
void PbftEngine::tick_forward(Output& out) {
    if (!active_ || is_primary()) return;
    pb::Forward forward;
    while (!to_forward_.empty() && to_forward_.front().first <= now_ &&
           static_cast<uint32_t>(forward.requests_size()) < config_.batch_size_max) {
        auto w = waiting_.find(to_forward_.front().second);
        to_forward_.pop_front();
        if (w == waiting_.end() || w->second.in_log) continue;
        forward.add_requests(w->second.payload);
    }
    if (forward.requests_size() > 0)
        out.send.push_back(Outgoing{primary_of(view_), seal(crypto::MessageType::kForward, forward)});
}

void PbftEngine::on_forward(ReplicaId from, const crypto::Envelope& env, Output& out) {
    pb::Forward forward;
    if (!decode(env.body, forward)) return detect(from, Misbehaviour::kMalformed);
    // A backup takes only a peer's own request; the rest was sent to an older primary (the
    // sender will retry).
    if (!active_ || !is_primary()) return hold_peer_request(from, forward, out);
    // Per peer and tick, at most two Forwards' worth: a traitor cannot make the primary check
    // signatures faster than an honest backup would make it.
    // (References, not a structured binding: clang before 16 cannot capture one, the ASan build.)
    uint64_t& tick = forwards_taken_[from].first;
    uint32_t& taken = forwards_taken_[from].second;
    if (tick != now_) {
        tick = now_;
        taken = 0;
    }
    const auto take = [&](const std::string& payload) {
        if (taken >= 2 * config_.batch_size_max) {
            detect(from, Misbehaviour::kForwardFlood);
            return false;
        }
        ++taken;
        auto info = authenticator_.authenticate(payload);
        if (!info) {
            detect(from, Misbehaviour::kForgedRequest);
            return false;
        }
        // Not straight into the queue: the node admits it first (Output::forwarded).
        out.forwarded.push_back(ClientRequest{*info, payload});
        return true;
    };
    // Its own request (a recovering peer's) is ordered like any other it forwards.
    if (!forward.own_request().empty() && !take(forward.own_request())) return;
    for (const auto& payload : forward.requests())
        if (!take(payload)) return;
}

// A recovering replica sends its recovery request to every peer (tick_recovery, as
// Forward.own_request). The primary orders it (on_forward); a backup holds it too, as a client's
// request (the node admits it first): its request timer then replaces a primary that never
// orders it — the recovering replica itself, primary of an idle network's view, or a traitor.
// Only a request the sender signed; one per peer while it waits here, and one signature check
// per peer each retransmit_ticks at most.
void PbftEngine::hold_peer_request(ReplicaId from, const pb::Forward& forward, Output& out) {
    const std::string& payload = forward.own_request();
    if (payload.empty()) return;
    const crypto::Hash digest = crypto::sha256(payload);
    if (auto held = peer_requests_.find(from); held != peer_requests_.end()) {
        const PeerRequest& last = held->second;
        if (waiting_.count(last.digest) || now_ - last.tick < config_.retransmit_ticks) return;
    }
    peer_requests_[from] = PeerRequest{digest, now_};
    auto info = authenticator_.authenticate(payload);
    if (!info || info->client != config_.replicas[from]) return;
    out.forwarded.push_back(ClientRequest{*info, payload});
}

// Bounded per sender, by count and bytes: one traitor flooding messages for a later view
// takes only its own share, never an honest replica's. Beyond it, the sender's new messages
// are dropped (its retransmissions bring them again once this replica is in that view).
void PbftEngine::keep_future(ReplicaId from, const crypto::Envelope& env, std::string_view raw) {
    auto& [count, bytes] = future_load_[from];
    if (count >= kFutureMessagesPerSenderMax || bytes + raw.size() > kFutureBytesPerSenderMax) {
        detect(from, Misbehaviour::kFutureOverflow);
        return;
    }
    ++count;
    bytes += raw.size();
    future_.emplace_back(from, env, std::string(raw));
}

// Waiting requests that a batch at seq carries are in the log: the primary proposes them no
// more, backups forward them no more. A batch at a seq already delivered (a view change
// re-proposes what executed) carried them to execution: they wait no more. (Seed 3217840: a
// request forwarded to a primary that had executed it before a restart waited again, was
// marked in the log by a re-proposal of its executed batch, and timed out every view.)
void PbftEngine::mark_in_log(uint64_t seq, const std::vector<std::string>& requests) {
    for (const auto& r : requests) {
        auto w = waiting_.find(crypto::sha256(r));
        if (w == waiting_.end()) continue;
        if (seq <= last_delivered_)
            erase_waiting(w);  // (queue_ may keep its digest: take_batch skips it)
        else
            w->second.in_log = true;
    }
}

std::vector<std::string> PbftEngine::take_batch() {
    std::vector<std::string> batch;
    size_t bytes = 0;
    while (!queue_.empty() && batch.size() < config_.batch_size_max) {
        auto it = waiting_.find(queue_.front());
        if (it != waiting_.end() && !it->second.in_log &&
            bytes + it->second.payload.size() > config_.batch_bytes_max)
            break;  // the next batch takes it
        queue_.pop_front();
        if (it == waiting_.end() || it->second.in_log) continue;  // executed or proposed since
        it->second.in_log = true;
        bytes += it->second.payload.size();
        batch.push_back(it->second.payload);
    }
    return batch;
}

// When may the primary start a batch? Every batch costs each replica the whole protocol's
// signatures, a write, an fsync and a SQLite transaction, and on a CPU-bound machine that is
// what bounds throughput: fewer, fuller batches are faster, as long as no request waits long.
//
// With batches in flight, another is due only once a full batch waits (batch_size_max
// requests); otherwise the requests wait for the next execution (on_executed proposes), which
// frees a slot anyway, and go out together. Alternated on 2 cores (pipeline_depth 1 against 2,
// which is what this rule is below a full batch): 64 clients 2,754-2,924/s against
// 2,546-2,597/s, and a lower p50 at 16 and 64 clients (README, Performance). Earlier rules let
// a batch go once it was as big as the smallest in flight (62, 1, 1, 62 before that): still
// twice the batches. Above a full batch, pipelining keeps the batches full.
//
// With nothing in flight, a batch is due once a request waits from each prompt client heard
// from lately, or the oldest has waited a whole tick (RecentClients, bft/recent_clients.h): 64
// closed-loop clients in two cohorts of 32 go as one batch of 64; one client, and users who
// send now and then (an open loop), wait for nothing. Alternated
// on 2 cores, 6 rounds: 16 clients 1,350 -> 1,900/s, 64 clients 2,780 -> 3,000/s with a wait to
// the next tick boundary, and 2,880 -> 3,370/s with a whole tick instead (4 rounds; README,
// Performance). A client that sends many requests at once only makes batches go sooner. queue_
// may hold stale entries; counting them only proposes sooner. Batches without requests (a view
// change's null requests) and slots this primary did not fill hold nothing back.
bool PbftEngine::batch_is_due() const {
    if (queue_.size() >= config_.batch_size_max) return true;
    for (uint64_t seq = last_executed_ + 1; seq < next_seq_; ++seq) {
        auto it = log_.find(seq);
        if (it != log_.end() && !it->second.requests.empty()) return false;
    }
    auto oldest = waiting_.find(queue_.front());
    if (oldest == waiting_.end() || oldest->second.in_log) return true;
    return !recent_clients_.worth_waiting(queue_.size(), oldest->second.since_tick, now_);
}

// The primary proposes while it has requests, room in the window, fewer than pipeline_depth
// batches in flight, and a batch is due (batch_is_due). A batch forms from what arrived while
// the previous ones were in flight, and waits at most two ticks for the rest.
void PbftEngine::propose(Output& out) {
    while (active_ && is_primary() && may_vote(view_) && missing_batches_.empty() && !queue_.empty() &&
           next_seq_ <= high_water_mark() &&
           next_seq_ - 1 - last_executed_ < config_.pipeline_depth && !fetching_snapshot_ &&
           batch_is_due()) {
        std::vector<std::string> batch = take_batch();
        if (batch.empty()) break;
        uint64_t seq = next_seq_++;
        crypto::Hash d = batch_digest(batch);
        std::string raw = seal_pre_prepare(key_, view_, seq, d, batch);
        accept_pre_prepare(seq, view_, d, std::move(batch), std::move(raw), out);
    }
}

// Rule: a backup accepts PRE-PREPARE(v, s, d) only if it is signed by the primary of v (its
// header is: messages.h), d is
// the batch's digest, every request carries a valid client signature, it is in view v, it has
// not accepted a different digest for (v, s), and h < s <= H.
void PbftEngine::on_pre_prepare(ReplicaId from, const crypto::Envelope& env, std::string_view raw,
                                Output& out) {
    pb::PrePrepare pp;
    if (!decode(env.body, pp)) return detect(from, Misbehaviour::kMalformed);
    if (!valid_header(from, pp)) return detect(from, Misbehaviour::kBadHeader);
    // The header binds the digest, and the digest the batch: checked before anything is kept
    // (keep_future), since the header alone does not say who put this batch around it. So
    // this one detection is not proven to be the primary's doing (a genuine header around
    // another batch, from any replica); past it, the batch is the one the primary signed the
    // digest of, and every detection below is the header's signer's.
    if (!digest_binds(pp)) return detect(from, Misbehaviour::kBadDigest, /*proven=*/false);
    // Stale: a view this replica left (unless it shows, and it rejoins, that view).
    if (pp.view() < view_ && (active_ || !note_lower_view(from, pp.view(), pp.seq(), out) || pp.view() != view_))
        return;
    if (pp.view() > view_ || !active_) {
        return keep_future(from, env, raw);
    }
    if (from != primary_of(pp.view())) return detect(from, Misbehaviour::kNotPrimary);
    if (!in_window(pp.seq())) return;
    crypto::Hash d = hash_from_bytes(pp.digest());
    auto it = log_.find(pp.seq());
    if (it != log_.end() && it->second.accepted && it->second.view == pp.view()) {
        if (it->second.digest != d) detect(from, Misbehaviour::kEquivocation);
        return;
    }
    if (it != log_.end() && it->second.expected && *it->second.expected != d)
        return detect(from, Misbehaviour::kNewViewMismatch);
    if (conflicts_with_decided(pp.seq(), d)) {
        // Another batch where one was decided is a lie; a slot executed without a record of
        // what (restart after a power loss) is simply not this replica's to vote on.
        if (it != log_.end() && it->second.decided) detect(from, Misbehaviour::kConflictsDecided);
        return;
    }
    if (!valid_batch(from, pp)) return;
    accept_pre_prepare(pp.seq(), pp.view(), d, {pp.requests().begin(), pp.requests().end()},
                       std::string(raw), out);
}

// The header a VIEW-CHANGE will carry for this slot, and what authenticates the pre-prepare
// (messages.h): from the same primary, naming the same (view, seq, digest), nothing more. Its
// signature is the one the caller checked (engine.h), so it is not checked again here.
bool PbftEngine::valid_header(ReplicaId from, const pb::PrePrepare& pp) const {
    return header_binds(pp, config_.replicas[from], /*check_signature=*/false);
}

bool PbftEngine::valid_batch(ReplicaId from, const pb::PrePrepare& pp) {
    size_t bytes = 0;
    for (const auto& r : pp.requests()) bytes += r.size();
    if (static_cast<uint32_t>(pp.requests_size()) > config_.batch_size_max || bytes > config_.batch_bytes_max) {
        detect(from, Misbehaviour::kOversizedBatch);
        return false;
    }
    for (const auto& r : pp.requests()) {
        if (!authenticator_.authenticate(r)) {
            detect(from, Misbehaviour::kForgedRequest);
            return false;
        }
    }
    return true;
}

PersistPut PbftEngine::accepted_record(uint64_t seq, uint64_t view, const pb::PreparedProof& record) {
    PersistPut put{slot_key(seq, view, kSlotAccepted), record.SerializeAsString()};
    put.may_wait = true;
    return put;
}

// Logs the pre-prepare, persists what this replica signs for (v, s), and sends the pre-prepare
// itself (primary) or a PREPARE (backup) — unless the restart rule keeps it silent in this
// view. The record is written without fsync: a replica that loses it in a machine crash keeps
// the restart rule instead. Nothing relies on the record, so the message leaves while it is
// written (Output::send_early): the primary's pre-prepare and the backups' prepares are on
// every transfer's critical path, and each used to wait for an SQLite transaction (and, when
// the same turn also prepared a slot, for its fsync). Only a replica's first vote in a view
// waits, for its view record to be synced (as does any vote in an output with a sync pending:
// it may be that record). Since the restart rule covers any restart, the record may also wait
// for the replica's next write (PersistPut::may_wait): with one client a batch's prepared
// certificate comes a round trip later, and the two then share one SQLite transaction.
void PbftEngine::accept_pre_prepare(uint64_t seq, uint64_t view, const crypto::Hash& digest,
                                    std::vector<std::string> requests, std::string raw,
                                    Output& out) {
    Slot& slot = log_[seq];
    slot.accepted = true;
    slot.view = view;
    slot.digest = digest;
    slot.prepared = false;
    slot.committed = slot.decided.has_value();  // a decided slot stays decided in every view
    slot.expected.reset();
    slot.expected_certified = false;
    slot.pre_prepare = raw;
    slot.pre_prepare_recorded = false;
    mark_in_log(seq, requests);
    slot.requests = std::move(requests);
    out.steps.push_back(Step{seq, view, "pre-prepare", {primary_of(view)}});

    if (!may_vote(view)) {
        // Silent (the restart rule): it cannot know whether it prepared something else here
        // before a crash. It may still become prepared from its peers' votes.
        advance(seq, out);
        return;
    }
    const bool early = view_recorded_ && !out.sync;
    if (!view_recorded_) persist_view(out);  // synced before its first vote in this view
    std::vector<Outgoing>& sends = early ? out.send_early : out.send;
    pb::PreparedProof record;
    record.set_pre_prepare(raw);
    slot.pre_prepare_recorded = true;
    if (primary_of(view) == config_.id) {
        out.persist.push_back(accepted_record(seq, view, record));
        sends.push_back(Outgoing{kAllReplicas, std::move(raw)});
    } else {
        pb::Vote vote;
        vote.set_view(view);
        vote.set_seq(seq);
        vote.set_digest(hash_bytes(digest));
        std::string prepare = seal(crypto::MessageType::kPrepare, vote);
        record.add_prepares(prepare);
        out.persist.push_back(accepted_record(seq, view, record));
        slot.prepares[{view, digest}][config_.id] = prepare;
        sends.push_back(Outgoing{kAllReplicas, std::move(prepare)});
    }
    advance(seq, out);
}

void PbftEngine::on_vote(ReplicaId from, const crypto::Envelope& env, std::string_view raw,
                         Output& out) {
    pb::Vote vote;
    if (!decode(env.body, vote)) return detect(from, Misbehaviour::kMalformed);
    if (env.type == crypto::MessageType::kCommit && vote.seq() <= high_water_mark() + config_.watermark_window)
        max_seq_seen_ = std::max(max_seq_seen_, vote.seq());
    if (vote.view() < view_ && (active_ || !note_lower_view(from, vote.view(), vote.seq(), out) || vote.view() != view_))
        return;
    if (vote.view() > view_ || !active_) {
        return keep_future(from, env, raw);
    }
    if (!in_window(vote.seq())) return;
    bool is_prepare = env.type == crypto::MessageType::kPrepare;
    // The primary's pre-prepare is its vote; a prepare from it is a protocol violation.
    if (is_prepare && from == primary_of(vote.view()))
        return detect(from, Misbehaviour::kPrepareFromPrimary);
    Slot& slot = log_[vote.seq()];
    auto& votes = is_prepare ? slot.prepares : slot.commits;
    crypto::Hash d = hash_from_bytes(vote.digest());
    // A peer votes for another digest than the pre-prepare this replica accepted: one of the
    // two pre-prepares it saw is the primary's lie. Show the peer ours; holding both signed
    // pre-prepares, it can prove the primary equivocated.
    if (slot.accepted && slot.view == vote.view() && slot.digest != d &&
        evidence_sent_.emplace(vote.seq(), from).second)
        out.send.push_back(Outgoing{from, slot.pre_prepare});
    for (const auto& [key, senders] : votes) {
        if (key.first == vote.view() && key.second != d && senders.count(from))
            return detect(from, Misbehaviour::kEquivocation);
    }
    votes[{vote.view(), d}].emplace(from, std::string(raw));
    advance(vote.seq(), out);
}

// A vote changes nothing once the certificate it would count toward is made: a PREPARE for a
// slot prepared in this view, a COMMIT for one committed-local, for the digest the slot holds
// (the certificates keep the votes that made them; a later one is neither counted nor kept as
// proof). The node drops such votes before checking their signatures (Engine::worth_unverified):
// with n = 4, each backup needs one other backup's PREPARE and each replica two of the three
// others' COMMITs, so 8 of a batch's 31 signature checks were of votes that came too late to
// count. A vote for another digest, view or slot is checked as ever (equivocation evidence); a
// COMMIT above the highest seq seen committed too (catch-up reads it). A vote of this view at or
// below the stable checkpoint is not (on_vote ignores it: out of the window).
//
// A vote toward a certificate not made yet says how many more distinct replicas' votes it
// lacks, so that the node, holding the other backups' PREPAREs or the others' COMMITs of one
// turn together, checks only as many as can count and keeps the rest until it knows; and a
// vote like one its sender's already counted (a retransmission) is not wanted: it would add
// nothing (a vote of another digest is, as evidence).
PbftEngine::Worth PbftEngine::worth_unverified(crypto::MessageType type, std::string_view body,
                                               std::optional<ReplicaId> from) const {
    const bool is_prepare = type == crypto::MessageType::kPrepare;
    if (!is_prepare && type != crypto::MessageType::kCommit) return {};
    pb::Vote vote;
    if (!decode(body, vote) || !active_ || vote.view() != view_) return {};
    Worth unwanted;
    unwanted.wanted = false;
    if (vote.seq() <= low_) return unwanted;  // below the window: on_vote ignores it
    auto it = log_.find(vote.seq());
    if (it == log_.end()) return {};
    const Slot& slot = it->second;
    if (!slot.accepted || slot.view != view_ || vote.digest() != hash_bytes(slot.digest)) return {};
    if (is_prepare ? slot.prepared : slot.committed) {
        unwanted.wanted = !is_prepare && vote.seq() > max_seq_seen_;
        return unwanted;
    }
    // A PREPARE from the primary counts toward nothing (on_vote refuses it, and detects it).
    if (is_prepare && from && *from == primary_of(view_)) return {};
    const auto& votes = is_prepare ? slot.prepares : slot.commits;
    const auto counted = votes.find(VoteKey{view_, slot.digest});
    const size_t have = counted == votes.end() ? 0 : counted->second.size();
    if (from && have > 0 && counted->second.count(*from)) return unwanted;
    const size_t needed = is_prepare ? quorum_.prepares() : quorum_.quorum();
    // Enough already and still no certificate (a COMMIT quorum before this replica prepared):
    // what another vote is worth is the default's answer.
    if (have >= needed) return {};
    Worth toward;
    toward.toward = std::string(is_prepare ? "prepare " : "commit ") + std::to_string(vote.seq());
    toward.lacking = static_cast<uint32_t>(needed - have);
    return toward;
}

// Moves a slot forward: prepared(v, s, d) needs the pre-prepare and 2f matching prepares from
// distinct backups; committed-local needs prepared and 2f+1 matching commits.
void PbftEngine::advance(uint64_t seq, Output& out) {
    auto it = log_.find(seq);
    if (it == log_.end()) return;
    Slot& slot = it->second;
    if (!slot.accepted || slot.view != view_ || !active_) return;
    VoteKey key{view_, slot.digest};
    if (!slot.prepared) {
        auto p = slot.prepares.find(key);
        if (p == slot.prepares.end() || p->second.size() < quorum_.prepares()) return;
        slot.prepared = true;
        PreparedCert cert{view_, slot.digest, slot.requests, slot.pre_prepare, {}};
        Step step{seq, view_, "prepared", {primary_of(view_)}};
        for (const auto& [sender, envelope] : p->second) {
            if (cert.prepares.size() == quorum_.prepares()) break;
            cert.prepares.push_back(envelope);
            step.votes.push_back(sender);
        }
        std::sort(step.votes.begin(), step.votes.end());
        out.steps.push_back(std::move(step));
        // The certificate survives a crash, even of the machine (synced before the commit
        // leaves), so a later view change can still report it.
        pb::PreparedProof record;
        if (!pre_prepare_recorded(slot, view_, cert.pre_prepare)) record.set_pre_prepare(cert.pre_prepare);
        for (const auto& e : cert.prepares) record.add_prepares(e);
        out.persist.push_back(PersistPut{slot_key(seq, view_, kSlotPrepared), record.SerializeAsString()});
        out.sync = true;
        slot.cert = std::move(cert);

        pb::Vote vote;
        vote.set_view(view_);
        vote.set_seq(seq);
        vote.set_digest(hash_bytes(slot.digest));
        if (may_commit(view_)) {
            std::string commit = seal(crypto::MessageType::kCommit, vote);
            slot.commits[key][config_.id] = commit;
            out.send.push_back(Outgoing{kAllReplicas, std::move(commit)});
        }
    }
    if (!slot.committed) {
        auto c = slot.commits.find(key);
        if (c == slot.commits.end() || c->second.size() < quorum_.quorum()) return;
        Decided decided{view_, slot.digest, slot.requests, slot.pre_prepare, {}};
        Step step{seq, view_, "committed", {}};
        for (const auto& [sender, envelope] : c->second) {
            if (decided.commits.size() == quorum_.quorum()) break;
            decided.commits.push_back(envelope);
            step.votes.push_back(sender);
        }
        out.steps.push_back(std::move(step));
        decide(seq, slot, std::move(decided), out);
        deliver(out);
    }
}

void PbftEngine::decide(uint64_t seq, Slot& slot, Decided decided, Output& out) {
    pb::CommittedProof record;
    if (!pre_prepare_recorded(slot, decided.view, decided.pre_prepare)) record.set_pre_prepare(decided.pre_prepare);
    for (const auto& e : decided.commits) record.add_commits(e);
    out.persist.push_back(PersistPut{slot_key(seq, decided.view, kSlotCommitted), record.SerializeAsString()});
    if (recovering_ && !recovery_view_ && !config_.recovery_request.empty() &&
        std::find(decided.requests.begin(), decided.requests.end(), config_.recovery_request) !=
            decided.requests.end()) {
        recovery_view_ = decided.view;
        recovery_seq_ = seq;
    }
    slot.committed = true;
    slot.decided = std::move(decided);
    maybe_end_recovery(out);
}

// Recovery (engine.h, recovering_): its request goes to every peer, since it cannot tell which
// is the primary (it starts in view 0); the primary of each peer's own view orders it. Again
// each retransmit_ticks until it commits (a peer's on_forward bounds what it takes).
void PbftEngine::tick_recovery(Output& out) {
    if (!recovering_) {
        maybe_stop_withholding(out);
        if (std::exchange(sign_withheld_view_change_, false) && !active_) {
            auto held = view_changes_.find(view_);
            if (held == view_changes_.end() || !held->second.count(config_.id)) start_view_change(view_, out);
        }
        return;
    }
    maybe_end_recovery(out);  // (also after the rejoin rule took it back to a view >= V)
    if (recovery_view_ || config_.recovery_request.empty()) return;
    if (recovery_asked_tick_ != 0 && now_ - recovery_asked_tick_ < config_.retransmit_ticks) return;
    recovery_asked_tick_ = now_;
    pb::Forward forward;
    forward.set_own_request(config_.recovery_request);
    out.send.push_back(Outgoing{kAllReplicas, seal(crypto::MessageType::kForward, forward)});
}

void PbftEngine::maybe_end_recovery(Output& out) {
    if (!recovering_ || !recovery_view_ || !active_ || view_ < *recovery_view_) return;
    recovering_ = false;
    silent_through_view_ = view_;
    forgot_through_ = recovery_seq_ + config_.watermark_window;
    out.persist.push_back(PersistPut{std::string(kKeyForgot), be64(*forgot_through_)});
    persist_view(out);  // (synced)
    maybe_stop_withholding(out);
}

// The prepared certificates it forgot (engine.h, forgot_through_) are all at or below its
// stable checkpoint now: no NEW-VIEW needs them, and its VIEW-CHANGEs are whole again.
void PbftEngine::maybe_stop_withholding(Output& out) {
    if (!forgot_through_ || low_ < *forgot_through_) return;
    forgot_through_.reset();
    sign_withheld_view_change_ = true;
    out.persist.push_back(PersistErase{std::string(kKeyForgot), std::string(kKeyForgot) + '\0'});
}

bool PbftEngine::conflicts_with_decided(uint64_t seq, const crypto::Hash& digest) const {
    auto it = log_.find(seq);
    if (it != log_.end() && it->second.decided) return it->second.decided->digest != digest;
    if (seq > last_delivered_) return false;
    // Executed before a restart that lost the record of which batch (a power loss: the proof
    // is written unsynced). It accepts only what a checked NEW-VIEW re-proposes there from a
    // prepared certificate: V holds the certificate of an honest replica that prepared the
    // decided batch, and O takes the highest view's, which is that batch — a null batch too,
    // when a certificate holds one (seed 3328: a null batch decided in view 1 was refused in
    // every later view by the one replica that had executed it, and with a traitor silent the
    // others never committed it). A null fill (no certificate in V) it cannot tell from a lie,
    // nor any other proposal.
    const bool from_certificate =
        it != log_.end() && it->second.expected && *it->second.expected == digest && it->second.expected_certified;
    return !from_certificate;
}

// Hands committed batches to the caller strictly in sequence order.
void PbftEngine::deliver(Output& out) {
    while (!fetching_snapshot_) {
        auto it = log_.find(last_delivered_ + 1);
        if (it == log_.end() || !it->second.decided) break;
        const Decided& decided = *it->second.decided;
        ++last_delivered_;
        auto& delivered = delivered_requests_[it->first];
        for (const auto& r : decided.requests) {
            crypto::Hash d = crypto::sha256(r);
            if (auto w = waiting_.find(d); w != waiting_.end()) erase_waiting(w);
            delivered_digests_.insert(d);
            delivered.push_back(d);
        }
        // A request executes in the current view: the view works, the back-off ends.
        if (active_ && decided.view == view_ && !decided.requests.empty())
            view_change_timeout_ticks_ = config_.view_change_timeout_ticks;
        out.commit.push_back(Committed{it->first, decided.view, decided.requests});
    }
    // A primary never proposes where a batch was decided: one learned by catch-up (seed
    // 3196750: a restarted primary of view 0 executed seqs 1..6 of view 1, then signed
    // another batch for seq 2).
    next_seq_ = std::max(next_seq_, last_delivered_ + 1);
}

}  // namespace tally::bft::pbft
