// The Raft engine. Rules are named after the paper (Figure 2, section 5.x) and the thesis
// (chapter 9: pre-vote, check-quorum; chapter 10: batching, pipelining).
//
// Deterministic: ordered containers only; time is the tick count; the election timeout comes
// from splitmix64 over (Config::seed, id, term, draw). Untrusted input is checked cheaply
// (sender, size, type, term) before anything else, and a bad message is dropped and reported
// through take_detected(), never asserted on.
//
// Durability: every write (term/vote, log entries, truncations) goes out with Output::sync,
// so it is on disk before any message that depends on it leaves: a vote after its vote is
// stored, an acknowledgement after its entries are. The leader's own entries are synced in
// the same Output that sends them, so it counts itself in every majority at once (the thesis
// lets a leader write in parallel with sending; that needs an on_persisted input the engine
// interface does not have, see NOTES-raft.md).
#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bft/raft/raft.h"

#include "bft/raft/block_record.h"
#include "bft/raft/raft.pb.h"
#include "bft/recent_clients.h"
#include "crypto/envelope.h"
#include "crypto/hash.h"

namespace tally::bft::raft {

namespace {

using crypto::MessageType;

constexpr std::string_view kKeyHard = "h";
constexpr std::string_view kKeySnapshot = "s";
constexpr char kEntryPrefix = 'e';
constexpr size_t kMaxDetected = 1024;
constexpr size_t kMaxFetchTargets = 4;
constexpr size_t kMessageSlack = 64u << 10;  // envelope and framing beyond the entries' bytes
constexpr size_t kMaxLeaseRounds = 1024;    // rounds a lease-reads leader keeps unanswered

std::string be64(uint64_t v) {
    std::string out(8, '\0');
    for (int i = 7; i >= 0; --i, v >>= 8) out[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
    return out;
}
uint64_t read_be64(std::string_view bytes) {
    uint64_t v = 0;
    for (size_t i = 0; i < 8 && i < bytes.size(); ++i) v = (v << 8) | static_cast<uint8_t>(bytes[i]);
    return v;
}
std::string entry_key(uint64_t index) { return std::string(1, kEntryPrefix) + be64(index); }
std::string entry_key_end() { return std::string(1, static_cast<char>(kEntryPrefix + 1)); }

// Canonical bytes only (as bft/pbft): what re-encodes to other bytes than it came in is refused.
template <typename M>
bool parse(std::string_view body, M& out) {
    if (!out.ParseFromArray(body.data(), static_cast<int>(body.size()))) return false;
    out.DiscardUnknownFields();
    return out.ByteSizeLong() == body.size();
}

uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

enum class Role { kFollower, kPreCandidate, kCandidate, kLeader };

struct Entry {
    uint64_t term = 0;
    std::vector<std::string> requests;
    size_t bytes = 0;
};

size_t request_bytes(const std::vector<std::string>& requests) {
    size_t b = 0;
    for (const auto& r : requests) b += r.size();
    return b;
}

// The leader's view of one follower (etcd's Progress). In probe, one append at a time until
// one succeeds; in replicate, up to max_inflight appends ahead of the last acknowledgement.
struct Progress {
    uint64_t match = 0;
    uint64_t next = 1;
    bool probe = true;
    bool paused = false;               // probe: an append is out, wait for its reply or a heartbeat
    std::deque<uint64_t> inflight;     // replicate: last index of each append not yet acknowledged
    bool active = false;               // heard from since the last check-quorum
    uint64_t read_ack = 0;             // newest read round it answered
    uint64_t last_progress_tick = 0;   // when match last advanced (or replication (re)started)
    uint64_t recovery_echo = 0;        // the follower's last recovery nonce (Config::recovering)
};

// The one RaftEngine (raft.h): etcd names its core `raft` too. (Not `Replica`: that is the
// node, node/replica.h, which runs an engine.)
class Raft final : public RaftEngine {
public:
    Raft(const Config& config, const crypto::KeyPair& key)
        : config_(config),
          key_(key),
          pairwise_(crypto::pairwise_keys(key, config.replicas)),
          n_(static_cast<uint32_t>(config.replicas.size())),
          majority_(n_ / 2 + 1) {
        config_.election_timeout_ticks = std::max<uint64_t>(config_.election_timeout_ticks, 2);
        config_.heartbeat_ticks = std::max<uint64_t>(config_.heartbeat_ticks, 1);
        config_.batch_size_max = std::max<uint32_t>(config_.batch_size_max, 1);
        config_.pipeline_depth = std::max<uint32_t>(config_.pipeline_depth, 1);
        config_.max_inflight = std::max<uint32_t>(config_.max_inflight, 1);
        config_.max_entries_per_append = std::max<uint32_t>(config_.max_entries_per_append, 1);
        progress_.resize(n_);
    }

    // Raft's own log is what it decided: the ledger's certificates are not read.
    Output on_start(const std::vector<std::pair<std::string, std::string>>& records, uint64_t executed_seq,
                    const crypto::Hash& digest, const CertificateOf&) override {
        Output out;
        DurableState durable;
        if (!read_durable(records, durable)) detect(config_.id, Misbehaviour::kBadRecord);
        term_ = durable.term;
        voted_for_ = durable.voted_for;
        snap_index_ = durable.snapshot_index;
        snap_term_ = durable.snapshot_term;
        snap_digest_ = durable.snapshot_digest;
        for (auto& e : durable.log) {
            // read_durable keeps only a contiguous log after the snapshot.
            size_t bytes = request_bytes(e.requests);
            log_.push_back(Entry{e.term, std::move(e.requests), bytes});
        }
        // Restart: what the ledger executed was committed. The log holds everything after the
        // snapshot (entries are synced before they are acknowledged, so before they commit;
        // the ledger is synced before the log below it is erased).
        if (executed_seq > last_index()) detect(config_.id, Misbehaviour::kLogBehindLedger);
        executed_ = delivered_ = executed_seq;
        commit_ = std::max(snap_index_, std::min(executed_seq, last_index()));
        recent_digests_.emplace_back(executed_seq, digest);
        role_ = Role::kFollower;
        leader_.reset();
        reset_election_timer();
        // Lease reads: this replica may have answered a leader just before it stopped, and
        // forgot when: it votes for no one until an election timeout after its start.
        leader_contact_ = now_;
        if (config_.recovering) {
            recovering_ = true;
            // This start's nonce (Config::recovering), never 0 (an echo of nothing).
            recovery_nonce_ = splitmix64(config_.seed ^ 0x7265636f76657279ULL ^ splitmix64(config_.id + 1)) | 1;
            peer_terms_.assign(n_, std::nullopt);
            ask_peer_terms(out);
            end_recovery_if_safe(out);  // at once with no peers
        }
        if (executed_seq < snap_index_) {
            // The ledger lost what the compacted log held (it was synced before compaction, so
            // only a damaged ledger gets here): fetch the snapshot's state from any peer.
            detect(config_.id, Misbehaviour::kLedgerBehindSnapshot);
            request_state(Fetching{std::nullopt, snap_index_, snap_term_, snap_digest_}, peers(), out);
        }
        return out;
    }

    Output on_tick() override {
        Output out;
        ++now_;
        ++election_elapsed_;
        recent_clients_.forget_quiet(now_);
        if (role_ == Role::kLeader) {
            // Check-quorum (thesis 6.2): a leader that heard from no majority within an
            // election timeout steps down, so a partitioned leader stops serving.
            if (election_elapsed_ >= config_.election_timeout_ticks) {
                election_elapsed_ = 0;
                if (config_.check_quorum) {
                    uint32_t active = 1;
                    for (ReplicaId p = 0; p < n_; ++p)
                        if (p != config_.id && progress_[p].active) ++active;
                    for (auto& p : progress_) p.active = false;
                    if (active < majority_) {
                        become_follower(term_, std::nullopt, out);
                        return out;
                    }
                }
            }
            if (transferee_ && ++transfer_elapsed_ >= config_.election_timeout_ticks) transferee_.reset();
            if (++heartbeat_elapsed_ >= config_.heartbeat_ticks) {
                heartbeat_elapsed_ = 0;
                heartbeat(out);
            }
            propose(out);
            return out;
        }
        if (recovering_) {
            // Never a candidate while recovering; the peers that have not told their term yet
            // are asked again every election timeout (a request or its answer may be lost).
            if (++term_query_elapsed_ >= config_.election_timeout_ticks) ask_peer_terms(out);
            return out;
        }
        if (election_elapsed_ >= election_deadline_) campaign(config_.pre_vote, out);
        return out;
    }

    Output on_message(ReplicaId from, const crypto::Envelope& envelope, std::string_view raw) override {
        Output out;
        // Cheap checks first: who, how big, what type; then decode; then the term.
        if (from >= n_ || from == config_.id || envelope.sender != config_.replicas[from]) {
            detect(from, Misbehaviour::kBadSender);
            return out;
        }
        if (raw.size() > config_.max_append_bytes + kMessageSlack) {
            detect(from, Misbehaviour::kOversized);
            return out;
        }
        switch (envelope.type) {
        case MessageType::kRaftVote: {
            pb::Vote m;
            if (!parse(envelope.body, m)) return malformed(from);
            if (!step_term(from, m.term(), Kind::kVote, m.pre_vote(), false, out, m.transfer(), m.recovery_nonce()))
                return out;
            on_vote(from, m, out);
            break;
        }
        case MessageType::kRaftVoteReply: {
            pb::VoteReply m;
            if (!parse(envelope.body, m)) return malformed(from);
            // Config::recovering: a peer's term counts only from its answer to this start's
            // query (it echoes the nonce). An answer to a pre-vote sent before the loss may
            // still arrive: a refusal then carries the peer's term of that time, which may be
            // below a term this replica voted in since (M too low), and a grant the term its
            // pre-vote proposed, which nobody may ever have been in (M too high: the recovery
            // waited for a leader of it, `scripts/simulate --raft` seed 7687771407).
            if (recovering_ && m.pre_vote() && m.recovery_echo() == recovery_nonce_)
                note_peer_term(from, m.term());
            if (!step_term(from, m.term(), Kind::kVoteReply, m.pre_vote(), m.granted(), out)) return out;
            on_vote_reply(from, m, out);
            end_recovery_if_safe(out);
            break;
        }
        case MessageType::kRaftAppend: {
            pb::Append m;
            if (!parse(envelope.body, m)) return malformed(from);
            if (!entries_within_bounds(m)) {
                detect(from, Misbehaviour::kBadEntry);
                return out;
            }
            if (!step_term(from, m.term(), Kind::kAppend, false, false, out)) return out;
            on_append(from, m, out);
            break;
        }
        case MessageType::kRaftAppendReply: {
            pb::AppendReply m;
            if (!parse(envelope.body, m)) return malformed(from);
            if (!step_term(from, m.term(), Kind::kAppendReply, false, false, out)) return out;
            on_append_reply(from, m, out);
            break;
        }
        case MessageType::kRaftSnapshot: {
            pb::Snapshot m;
            if (!parse(envelope.body, m) || m.digest().size() != 32) return malformed(from);
            if (!step_term(from, m.term(), Kind::kAppend, false, false, out)) return out;
            on_snapshot(from, m, out);
            end_recovery_if_safe(out);
            break;
        }
        case MessageType::kRaftSnapshotReply:
            detect(
                from,
                Misbehaviour::kUnsupported);  // InstallSnapshot is acknowledged by an AppendReply
            break;
        default:
            detect(from, Misbehaviour::kWrongType);
            break;
        }
        return out;
    }

    Output on_client_request(const ClientRequest& request) override {
        Output out;
        // Only the leader orders requests; another replica redirects the client to the leader
        // it believes in (none during an election: the client retries). A leader handing over
        // redirects to nobody: the transferee leads a moment later.
        if (!takes_client_requests()) {
            out.redirects.push_back(
                Redirect{request.payload, role_ == Role::kLeader ? std::nullopt : leader_, term_});
            return out;
        }
        crypto::Hash digest = crypto::sha256(request.payload);
        if (pending_.count(digest)) return out;  // a retry of a request already queued or in the log
        if (queue_.size() >= config_.max_queued_requests ||
            queue_bytes_ + request.payload.size() > config_.max_queued_bytes)
            return out;  // full: the client retries
        queue_.push_back(Queued{request.payload, now_});
        queue_bytes_ += request.payload.size();
        pending_.insert(digest);
        recent_clients_.heard(request.info.client, now_);
        propose(out);
        return out;
    }

    Output on_executed(uint64_t seq, const crypto::Hash& digest) override {
        Output out;
        if (seq != executed_ + 1 || seq > delivered_) return out;
        executed_ = seq;
        // Its requests stop being pending only now, not at delivery: until the node has
        // executed them, its reply cache cannot answer a retry (a nonce_too_high execution
        // leaves none there), and a retry let in here would be ordered a second time.
        if (role_ == Role::kLeader && seq > snap_index_)
            for (const auto& r : entry(seq).requests) pending_.erase(crypto::sha256(r));
        recent_digests_.emplace_back(seq, digest);
        while (recent_digests_.size() > config_.snapshot_trailing + 1) recent_digests_.pop_front();
        release_reads();
        maybe_compact(out);
        return out;
    }

    // InstallSnapshot, second half: the node brought the ledger to the snapshot's index. The
    // log is replaced by the snapshot and the leader told where this replica now matches.
    Output on_state_restored(uint64_t seq, const crypto::Hash& digest) override {
        Output out;
        // Any state at or past a target asked for will do (the node may only be able to fetch
        // a peer's current state): it was executed by a peer, so committed. The term of its
        // last entry is known only at a target's exact index; otherwise it is left 0 (unknown),
        // which only makes this replica's empty log look old in elections until it appends.
        if (fetching_.empty() || seq < fetching_.begin()->first || seq <= executed_) return out;
        auto it = fetching_.find(seq);
        Fetching f = it != fetching_.end() ? it->second : fetching_.rbegin()->second;
        if (it == fetching_.end()) f.term = 0;
        fetching_.clear();
        snap_index_ = seq;
        snap_term_ = f.term;
        snap_digest_ = digest;
        log_.clear();
        commit_ = delivered_ = executed_ = seq;
        recent_digests_.clear();
        recent_digests_.emplace_back(seq, digest);
        out.ledger_sync_through = seq;
        out.persist.push_back(PersistErase{entry_key(0), entry_key_end()});
        persist_snapshot_meta(out);
        if (f.from) {
            pb::AppendReply r;
            r.set_term(term_);
            r.set_success(true);
            r.set_match_index(seq);
            send(*f.from, MessageType::kRaftAppendReply, r, out);
        }
        end_recovery_if_safe(out);
        return out;
    }

    EngineStatus status() const override {
        EngineStatus s;
        s.protocol = "raft";
        switch (role_) {
        case Role::kFollower: s.role = "follower"; break;
        case Role::kPreCandidate: s.role = "pre-candidate"; break;
        case Role::kCandidate: s.role = "candidate"; break;
        case Role::kLeader: s.role = "leader"; break;
        }
        s.view = term_;
        s.last_executed = executed_;
        s.commit_index = commit_;
        s.last_log_index = last_index();
        s.low_water_mark = snap_index_;
        s.recovering = recovering_ || !fetching_.empty();
        s.leader = leader_;
        return s;
    }

    std::vector<Detected> take_detected() override { return std::exchange(detected_, {}); }

    bool takes_client_requests() const override { return role_ == Role::kLeader && !transferee_; }
    bool offers_read_index() const override { return true; }

    Output read_index(uint64_t read_id) override {
        Output out;
        if (role_ != Role::kLeader || reads_.size() >= config_.max_pending_reads) {
            reads_done_.push_back(ReadResult{read_id, false, 0, leader_});
            return out;
        }
        if (lease_valid() && term_at(commit_) == term_) {
            // Lease read: no other leader can exist yet, so our commit index is the newest.
            reads_.push_back(PendingRead{read_id, commit_, read_ctx_, true});
            release_reads();
            return out;
        }
        reads_.push_back(PendingRead{read_id, 0, 0, false});
        start_read_round(out);
        return out;
    }

    std::vector<ReadResult> take_reads() override { return std::exchange(reads_done_, {}); }

    // A clean stop of the leader: hand over to the follower that holds the most of our log
    // (the lowest id among equals), so it is soonest up to date and the others vote for it.
    std::optional<Output> hand_over() override {
        if (role_ != Role::kLeader || n_ < 2) return std::nullopt;
        std::optional<ReplicaId> best;
        for (ReplicaId p : peers())
            if (!best || progress_[p].match > progress_[*best].match) best = p;
        return transfer_leadership(*best);
    }

    Output transfer_leadership(ReplicaId target) override {
        Output out;
        if (role_ != Role::kLeader || target >= n_ || target == config_.id) return out;
        // TimeoutNow lets the transferee win votes at once, from replicas that heard from us a
        // moment ago: no lease for the rest of this term (a TimeoutNow may still be in flight
        // after the transfer is abandoned). Reads take ReadIndex's round meanwhile.
        lease_forfeited_ = true;
        transferee_ = target;
        transfer_elapsed_ = 0;
        maybe_timeout_now(out);
        if (transferee_) send_append(target, out);
        return out;
    }

private:
    enum class Kind { kVote, kVoteReply, kAppend, kAppendReply };
    struct Fetching {
        std::optional<ReplicaId> from;  // whom to acknowledge (the leader that sent it)
        uint64_t index = 0;
        uint64_t term = 0;
        crypto::Hash digest{};
    };

    // The log holds indexes (snap_index_, last_index()]; below, the snapshot (the ledger).
    uint64_t last_index() const { return snap_index_ + log_.size(); }
    uint64_t term_at(uint64_t index) const {
        if (index == snap_index_) return snap_term_;
        return index < snap_index_ || index > last_index() ? 0 : entry(index).term;
    }
    const Entry& entry(uint64_t index) const { return log_[index - snap_index_ - 1]; }
    uint64_t last_term() const { return term_at(last_index()); }

    void detect(ReplicaId from, Misbehaviour kind) {
        if (detected_.size() < kMaxDetected) detected_.push_back(Detected{from, kind});
    }
    Output malformed(ReplicaId from) {
        detect(from, Misbehaviour::kMalformed);
        return {};
    }

    // What a peer receives is authenticated for it alone, by a MAC under the key the two share
    // (crypto/keys.h, PairwiseKey): nothing Raft sends a peer is ever shown to a third party.
    // A signature only where no key derives (a peer key that is no valid point: the peer then
    // cannot have made one either). To kAllReplicas: one message per peer.
    void seal_to(ReplicaId to, MessageType type, const std::string& body, Output& out) const {
        if (to == kAllReplicas) {
            for (ReplicaId peer : peers()) seal_to(peer, type, body, out);
            return;
        }
        out.send.push_back(Outgoing{to, seal_for(to, type, body)});
    }

public:
    std::string seal_for(ReplicaId to, MessageType type, const std::string& body) const override {
        if (to < pairwise_.size() && pairwise_[to]) return crypto::seal_for_peer(key_, *pairwise_[to], type, body);
        return crypto::seal(key_, type, body);
    }

private:
    template <typename M>
    void send(ReplicaId to, MessageType type, const M& m, Output& out) const {
        seal_to(to, type, m.SerializeAsString(), out);
    }
    // Config::recovering's nonce: a recovering replica's answers carry it, and a leader's
    // appends echo the last one the follower sent.
    void send(ReplicaId to, MessageType type, pb::Append a, Output& out) const {
        if (to < n_) a.set_recovery_echo(progress_[to].recovery_echo);
        a.set_leader_commit(commit_);
        seal_to(to, type, a.SerializeAsString(), out);
    }
    void send(ReplicaId to, MessageType type, pb::AppendReply r, Output& out) const {
        if (recovering_) r.set_recovery_nonce(recovery_nonce_);
        seal_to(to, type, r.SerializeAsString(), out);
    }

    std::vector<ReplicaId> peers() const {
        std::vector<ReplicaId> v;
        for (ReplicaId id = 0; id < n_; ++id)
            if (id != config_.id) v.push_back(id);
        return v;
    }

    void persist_snapshot_meta(Output& out) {
        pb::SnapshotMeta m;
        m.set_index(snap_index_);
        m.set_term(snap_term_);
        m.set_digest(std::string(crypto::as_bytes(snap_digest_)));
        out.persist.push_back(PersistPut{std::string(kKeySnapshot), m.SerializeAsString()});
        out.sync = true;
    }

    // Log compaction (7): the ledger is the state machine's snapshot. Erase the log up to the
    // oldest executed index still remembered (executed - snapshot_trailing), once that is
    // snapshot_interval beyond the last snapshot; the ledger is made durable through what it
    // executed first (Output::ledger_sync_through), so the erased entries are never needed.
    void maybe_compact(Output& out) {
        if (config_.snapshot_interval == 0 || recent_digests_.empty()) return;
        // The oldest remembered index a peer could fetch the ledger at (Config::snapshot_every).
        auto oldest = std::find_if(recent_digests_.begin(), recent_digests_.end(),
                                   [&](const auto& d) { return fetchable(d.first); });
        if (oldest == recent_digests_.end()) return;
        auto [x, digest] = *oldest;
        if (x < snap_index_ + config_.snapshot_interval || x > last_index() || x > commit_) return;
        uint64_t term = term_at(x);
        log_.erase(log_.begin(), log_.begin() + static_cast<std::ptrdiff_t>(x - snap_index_));
        snap_index_ = x;
        snap_term_ = term;
        snap_digest_ = digest;
        out.ledger_sync_through = std::max(out.ledger_sync_through, executed_);
        persist_snapshot_meta(out);
        out.persist.push_back(PersistErase{entry_key(0), entry_key(x + 1)});
    }

    bool fetchable(uint64_t index) const {
        return config_.snapshot_every <= 1 || index % config_.snapshot_every == 0;
    }

    // The snapshot a follower behind the compacted log is offered: the newest executed index a
    // peer can fetch the ledger at (the node serves only its newest few), else the compaction's.
    pb::Snapshot snapshot_offer() const {
        uint64_t index = snap_index_;
        uint64_t term = snap_term_;
        crypto::Hash digest = snap_digest_;
        for (auto it = recent_digests_.rbegin(); it != recent_digests_.rend(); ++it) {
            if (it->first <= snap_index_) break;
            if (!fetchable(it->first) || it->first > commit_ || it->first > last_index()) continue;
            index = it->first;
            term = term_at(index);
            digest = it->second;
            break;
        }
        pb::Snapshot m;
        m.set_term(term_);
        m.set_index(index);
        m.set_snap_term(term);
        m.set_digest(std::string(crypto::as_bytes(digest)));
        return m;
    }

    // InstallSnapshot, first half (7): the leader compacted what this replica lacks.
    void on_snapshot(ReplicaId from, const pb::Snapshot& m, Output& out) {
        if (role_ == Role::kLeader) {
            detect(from, Misbehaviour::kTwoLeaders);
            return;
        }
        if (role_ != Role::kFollower || leader_ != from) become_follower(term_, from, out);
        election_elapsed_ = 0;
        leader_contact_ = now_;
        pb::AppendReply r;
        r.set_term(term_);
        r.set_success(true);
        if (m.index() <= commit_) {
            r.set_match_index(commit_);
            send(from, MessageType::kRaftAppendReply, r, out);
            return;
        }
        if (m.index() <= last_index() && term_at(m.index()) == m.snap_term()) {
            // We hold the snapshot's last entry: our log matches through it, and it committed.
            commit_ = m.index();
            deliver(out);
            r.set_match_index(m.index());
            send(from, MessageType::kRaftAppendReply, r, out);
            return;
        }
        // Already fetching: a newer offer is asked for at once (the node takes it if the state it fetches is no
        // longer served: a busy leader keeps only its newest few); the same one again only
        // after a while (the node may be unable to fetch it at all).
        if (!fetching_.empty() && fetching_.rbegin()->first >= m.index() &&
            now_ - fetch_tick_ < 10 * config_.election_timeout_ticks)
            return;
        crypto::Hash digest{};
        std::copy(m.digest().begin(), m.digest().end(), digest.begin());
        request_state(Fetching{from, m.index(), m.snap_term(), digest}, {from}, out);
    }

    void request_state(const Fetching& f, std::vector<ReplicaId> from, Output& out) {
        fetching_[f.index] = f;
        while (fetching_.size() > kMaxFetchTargets) fetching_.erase(fetching_.begin());
        fetch_tick_ = now_;
        out.fetch_snapshot = SnapshotTarget{f.index, f.digest, std::move(from)};
    }

    void persist_hard_state(Output& out) {
        pb::HardState h;
        h.set_term(term_);
        if (voted_for_) {
            h.set_has_vote(true);
            h.set_voted_for(*voted_for_);
        }
        out.persist.push_back(PersistPut{std::string(kKeyHard), h.SerializeAsString()});
        out.sync = true;
    }

    void reset_election_timer() {
        election_elapsed_ = 0;
        // Randomised in [T, 2T): splitmix64 of (seed, id, term, draw), so a seed replays.
        uint64_t r = splitmix64(config_.seed ^ splitmix64(config_.id + 1) ^ splitmix64(term_ << 20 | draws_++));
        election_deadline_ = config_.election_timeout_ticks + r % config_.election_timeout_ticks;
    }

    // A message's term against ours (Figure 2, "all servers"; thesis 9.6 for pre-vote and the
    // leader lease). False: the message is answered here or dropped.
    // `recovery_nonce`: a vote request's (a recovering peer's term query), echoed in the answer.
    bool step_term(ReplicaId from, uint64_t msg_term, Kind kind, bool pre_vote, bool granted, Output& out,
                   bool transfer = false, uint64_t recovery_nonce = 0) {
        if (msg_term > term_) {
            if (kind == Kind::kVote) {
                // A replica that heard from a leader within the election timeout ignores a
                // vote request (pre-vote or real): a rejoining node cannot depose a live leader.
                bool in_lease = (config_.check_quorum && leader_ &&
                                 election_elapsed_ < config_.election_timeout_ticks) ||
                                heard_from_leader_recently();
                if (in_lease && !transfer) return false;  // a leader's own hand-over may
                if (pre_vote) return true;  // a pre-vote changes no term
            }
            if (kind == Kind::kVoteReply && pre_vote && granted) return true;  // our term + 1
            become_follower(msg_term, kind == Kind::kAppend ? std::optional<ReplicaId>(from) : std::nullopt, out);
            return true;
        }
        if (msg_term < term_) {
            if (kind == Kind::kAppend) {
                // A stale leader: tell it the term so it steps down.
                pb::AppendReply r;
                r.set_term(term_);
                send(from, MessageType::kRaftAppendReply, r, out);
            } else if (kind == Kind::kVote && pre_vote) {
                pb::VoteReply r;
                r.set_term(term_);
                r.set_pre_vote(true);
                r.set_recovery_echo(recovery_nonce);
                send(from, MessageType::kRaftVoteReply, r, out);
            }
            return false;
        }
        return true;
    }

    // Config::recovering: a pre-vote of term 0 to each peer whose term is not known yet. No
    // replica grants it (a pre-vote is granted only for a term ahead of the voter's); each
    // answers with its term.
    void ask_peer_terms(Output& out) {
        term_query_elapsed_ = 0;
        pb::Vote v;
        v.set_term(0);
        v.set_pre_vote(true);
        v.set_recovery_nonce(recovery_nonce_);
        for (ReplicaId p : peers())
            if (!peer_terms_[p]) send(p, MessageType::kRaftVote, v, out);
    }

    void note_peer_term(ReplicaId from, uint64_t term) {
        peer_terms_[from] = std::max(peer_terms_[from].value_or(0), term);
    }

    // Config::recovering's two conditions; then this replica votes again, in later terms only.
    void end_recovery_if_safe(Output& out) {
        if (!recovering_) return;
        uint64_t highest = 0;
        for (ReplicaId p : peers()) {
            if (!peer_terms_[p]) return;
            highest = std::max(highest, *peer_terms_[p]);
        }
        if (n_ > 1 && (caught_up_in_term_ == 0 || caught_up_in_term_ < highest)) return;
        recovering_ = false;
        voted_for_ = leader_.value_or(config_.id);
        persist_hard_state(out);
        reset_election_timer();
    }

    void become_follower(uint64_t term, std::optional<ReplicaId> leader, Output& out) {
        refuse_reads(leader);
        const bool new_term = term > term_;
        if (new_term) {
            term_ = term;
            voted_for_.reset();
            persist_hard_state(out);
        }
        // A follower's view of an election: the leader it follows from now on (the candidate
        // records "election", the winner "leader").
        if (leader && (new_term || leader_ != leader)) out.steps.push_back(Step{0, term_, "follows", {*leader}});
        role_ = Role::kFollower;
        leader_ = leader;
        transferee_.reset();
        drop_queue();
        reset_election_timer();
    }

    void drop_queue() {
        queue_.clear();
        queue_bytes_ = 0;
        pending_.clear();
    }

    // Election (5.2), preceded by a pre-vote round (9.6) when configured.
    void campaign(bool pre, Output& out, bool transfer = false) {
        granted_.clear();
        refused_.clear();
        granted_.insert(config_.id);
        leader_.reset();
        uint64_t term = term_ + 1;
        if (pre) {
            role_ = Role::kPreCandidate;
        } else {
            role_ = Role::kCandidate;
            term_ = term;
            voted_for_ = config_.id;
            persist_hard_state(out);  // synced before the requests leave
            out.steps.push_back(Step{0, term_, "election", {config_.id}});
        }
        drop_queue();
        reset_election_timer();
        if (granted_.size() >= majority_) {
            if (pre) campaign(false, out);
            else become_leader(out);
            return;
        }
        pb::Vote v;
        v.set_term(term);
        v.set_last_log_index(last_index());
        v.set_last_log_term(last_term());
        v.set_pre_vote(pre);
        v.set_transfer(transfer);
        send(kAllReplicas, MessageType::kRaftVote, v, out);
    }

    void on_vote(ReplicaId from, const pb::Vote& m, Output& out) {
        // Election restriction (5.4.1): grant only to a candidate whose log is at least as
        // up-to-date as ours.
        bool up_to_date = m.last_log_term() > last_term() ||
                          (m.last_log_term() == last_term() && m.last_log_index() >= last_index());
        pb::VoteReply r;
        r.set_pre_vote(m.pre_vote());
        r.set_recovery_echo(m.recovery_nonce());
        if (recovering_) {
            // Config::recovering: no vote at all; our term answers a peer's term query too.
            r.set_term(term_);
            r.set_granted(false);
        } else if (m.pre_vote()) {
            // Would we vote in term m.term? Not while we have a live leader (step_term dropped
            // it then, for a higher term), not for a term that is not ahead of ours.
            bool grant = m.term() > term_ && up_to_date;
            r.set_term(grant ? m.term() : term_);
            r.set_granted(grant);
        } else {
            // m.term == term_ here. One vote per term (Election Safety), durable before it leaves.
            // A new vote waits out the lease of a leader we heard from (Config::lease_reads),
            // though our term moved on since (a stale answer of a higher term can do that).
            bool can = (voted_for_ && *voted_for_ == from) ||
                       (!voted_for_ && !leader_ && (m.transfer() || !heard_from_leader_recently()));
            bool grant = can && up_to_date;
            if (grant && !voted_for_) {
                voted_for_ = from;
                persist_hard_state(out);
            }
            if (grant) reset_election_timer();
            r.set_term(term_);
            r.set_granted(grant);
        }
        send(from, MessageType::kRaftVoteReply, r, out);
    }

    void on_vote_reply(ReplicaId from, const pb::VoteReply& m, Output& out) {
        if (m.pre_vote()) {
            if (role_ != Role::kPreCandidate) return;
            if (m.granted() && m.term() == term_ + 1) granted_.insert(from);
            else if (!m.granted()) refused_.insert(from);
            else return;
            if (granted_.size() >= majority_) campaign(false, out);
            else if (refused_.size() >= majority_) become_follower(term_, std::nullopt, out);
            return;
        }
        if (role_ != Role::kCandidate || m.term() != term_) return;
        if (m.granted()) granted_.insert(from);
        else refused_.insert(from);
        if (granted_.size() >= majority_) become_leader(out);
        else if (refused_.size() >= majority_) become_follower(term_, std::nullopt, out);
    }

    void become_leader(Output& out) {
        role_ = Role::kLeader;
        leader_ = config_.id;
        out.steps.push_back(Step{0, term_, "leader", std::vector<ReplicaId>(granted_.begin(), granted_.end())});
        election_elapsed_ = 0;
        heartbeat_elapsed_ = 0;
        Progress fresh;
        fresh.next = last_index() + 1;
        fresh.last_progress_tick = now_;
        for (auto& p : progress_) p = fresh;
        lease_until_ = 0;
        lease_forfeited_ = false;
        round_ticks_.clear();
        if (config_.lease_reads) new_round();  // the first appends start the lease
        // A no-op of the new term (thesis 6.4): committing it commits everything before it,
        // since a leader commits only entries of its own term (5.4.2).
        append_own_entry({}, out);
        for (ReplicaId p = 0; p < n_; ++p)
            if (p != config_.id) send_append(p, out);
        maybe_commit(out);
    }

    void append_own_entry(std::vector<std::string> requests, Output& out) {
        size_t bytes = request_bytes(requests);
        pb::Entry e;
        e.set_term(term_);
        for (const auto& r : requests) e.add_requests(r);
        log_.push_back(Entry{term_, std::move(requests), bytes});
        out.persist.push_back(PersistPut{entry_key(last_index()), e.SerializeAsString()});
        out.sync = true;
        out.steps.push_back(Step{last_index(), term_, "appended", {config_.id}});
    }

    // Batching: while fewer than pipeline_depth entries wait to commit, cut the queue into an
    // entry of at most batch_size_max requests and batch_bytes_max bytes; the rest waits.
    void propose(Output& out) {
        if (role_ != Role::kLeader || queue_.empty() || transferee_) return;
        bool appended = false;
        while (!queue_.empty() && last_index() - commit_ < config_.pipeline_depth && !worth_waiting()) {
            std::vector<std::string> batch;
            size_t bytes = 0;
            while (!queue_.empty() && batch.size() < config_.batch_size_max &&
                   (batch.empty() || bytes + queue_.front().payload.size() <= config_.batch_bytes_max)) {
                bytes += queue_.front().payload.size();
                queue_bytes_ -= queue_.front().payload.size();
                batch.push_back(std::move(queue_.front().payload));
                queue_.pop_front();
            }
            append_own_entry(std::move(batch), out);
            appended = true;
        }
        if (!appended) return;
        // The appends leave while the leader writes its new entries (thesis 10.2.1): the
        // followers' fsyncs overlap the leader's. The leader counts its own entries toward a
        // commit only when a follower's answer arrives, which the node reads after its write
        // is synced (engine.h, send_early); a leader that crashes before syncing restarts as
        // a follower of this term and never writes another entry at these indexes in it.
        const auto first = static_cast<std::ptrdiff_t>(out.send.size());
        for (ReplicaId p = 0; p < n_; ++p)
            if (p != config_.id) send_append(p, out);
        std::move(out.send.begin() + first, out.send.end(), std::back_inserter(out.send_early));
        out.send.erase(out.send.begin() + first, out.send.end());
        maybe_commit(out);
    }

    // With entries in flight, a new one waits until a full batch (batch_size_max requests or
    // batch_bytes_max bytes) waits, then goes out with every request queued behind the ones in
    // flight: every entry costs each replica a write, an fsync, a SQLite transaction and its
    // messages, and on a CPU-bound machine that bounds throughput (pipeline_depth 1 against 2,
    // alternated on 2 cores: 5,549-5,679/s against 5,291-5,424/s at 64 clients and a lower p50
    // at 4, 16 and 64; README, Performance). With nothing in flight (or only entries without
    // requests, the no-op) the leader waits until a request is queued from each prompt client it
    // heard from lately, or the oldest has waited a whole tick (RecentClients): cohorts of
    // closed-loop clients merge into one entry; one client, and users who send now and then,
    // wait for nothing. Above a full batch, pipelining
    // keeps the entries full. (PBFT's primary does the same, bft/pbft.) Requires a queued request.
    bool worth_waiting() const {
        if (queue_.size() >= config_.batch_size_max || queue_bytes_ >= config_.batch_bytes_max)
            return false;
        for (uint64_t i = std::max(commit_, snap_index_) + 1; i <= last_index(); ++i)
            if (!entry(i).requests.empty()) return true;
        return recent_clients_.worth_waiting(queue_.size(), queue_.front().since, now_);
    }

    pb::Append make_append(uint64_t next, uint64_t& last_sent) const {
        pb::Append a;
        a.set_term(term_);
        a.set_prev_index(next - 1);
        a.set_prev_term(term_at(next - 1));
        a.set_commit(commit_);
        a.set_read_ctx(read_ctx_);
        uint64_t bytes = 0;
        last_sent = next - 1;
        for (uint64_t i = next; i <= last_index() && a.entries_size() < static_cast<int>(config_.max_entries_per_append);
             ++i) {
            const Entry& e = entry(i);
            if (a.entries_size() > 0 && bytes + e.bytes > config_.max_append_bytes) break;
            bytes += e.bytes;
            pb::Entry* pe = a.add_entries();
            pe->set_term(e.term);
            for (const auto& r : e.requests) pe->add_requests(r);
            last_sent = i;
        }
        return a;
    }

    // Pipelining with a window (thesis 10.2.1, etcd's inflights).
    void send_append(ReplicaId to, Output& out) {
        Progress& p = progress_[to];
        if (p.next <= snap_index_) {
            // InstallSnapshot: what it lacks is compacted. One at a time, like a probe.
            if (!p.probe) to_probe(p, p.next);
            if (p.paused) return;
            send(to, MessageType::kRaftSnapshot, snapshot_offer(), out);
            p.paused = true;
            return;
        }
        if (p.probe) {
            if (p.paused) return;
            uint64_t last = 0;
            send(to, MessageType::kRaftAppend, make_append(p.next, last), out);
            p.paused = true;
            return;
        }
        while (p.inflight.size() < config_.max_inflight && p.next <= last_index()) {
            uint64_t last = 0;
            send(to, MessageType::kRaftAppend, make_append(p.next, last), out);
            p.inflight.push_back(last);
            p.next = last + 1;
        }
    }

    void heartbeat(Output& out) {
        if (config_.lease_reads) new_round();  // each heartbeat round can renew the lease
        for (ReplicaId id = 0; id < n_; ++id) {
            if (id == config_.id) continue;
            Progress& p = progress_[id];
            if (p.probe) {
                p.paused = false;  // resend the probe (it or its reply may be lost)
                send_append(id, out);
                continue;
            }
            if (!p.inflight.empty() && now_ - p.last_progress_tick >= config_.election_timeout_ticks / 2) {
                // Appends in flight and no acknowledgement for a while: some were lost.
                // Back to probing from the last known match.
                to_probe(p, p.match + 1);
                send_append(id, out);
                continue;
            }
            pb::Append a;  // a heartbeat: nothing to check beyond the known match
            a.set_term(term_);
            a.set_prev_index(heartbeat_prev(p));
            a.set_prev_term(term_at(heartbeat_prev(p)));
            a.set_commit(std::min(commit_, p.match));
            a.set_read_ctx(read_ctx_);
            send(id, MessageType::kRaftAppend, a, out);
            send_append(id, out);
        }
    }

    // A heartbeat checks the follower's known match, unless that is compacted here: then it
    // checks nothing (prev 0 always matches), and only carries the term and the commit index.
    uint64_t heartbeat_prev(const Progress& p) const { return p.match >= snap_index_ ? p.match : 0; }

    void to_probe(Progress& p, uint64_t next) {
        p.probe = true;
        p.paused = false;
        p.inflight.clear();
        p.next = std::max<uint64_t>(next, p.match + 1);
    }

    // Bounds on what a leader can make this replica hold, checked before anything changes:
    // each entry no bigger than a batch may be, of no term above the append's. (Entries
    // beyond the commit index are bounded in on_append.)
    bool entries_within_bounds(const pb::Append& m) const {
        for (const auto& e : m.entries()) {
            size_t bytes = 0;
            for (const auto& r : e.requests()) bytes += r.size();
            if (static_cast<uint32_t>(e.requests_size()) > config_.batch_size_max ||
                bytes > config_.batch_bytes_max || e.term() > m.term())
                return false;
        }
        return true;
    }

    void on_append(ReplicaId from, const pb::Append& m, Output& out) {
        // m.term == term_.
        if (role_ == Role::kLeader) {
            detect(from, Misbehaviour::kTwoLeaders);  // Election Safety broken: not an honest peer
            return;
        }
        if (role_ != Role::kFollower || leader_ != from) become_follower(term_, from, out);
        election_elapsed_ = 0;
        leader_contact_ = now_;
        pb::AppendReply r;
        r.set_term(term_);
        r.set_read_ctx(m.read_ctx());
        // Consistency check (Figure 2, AppendEntries 2). At or below our commit index there is
        // nothing to check: what committed is in every later leader's log (Leader Completeness)
        // — and after InstallSnapshot the term of the snapshot's last entry may be unknown.
        if (m.prev_index() > commit_ &&
            (m.prev_index() > last_index() || term_at(m.prev_index()) != m.prev_term())) {
            // Fast back-tracking: our largest index <= prev_index whose term <= prev_term.
            uint64_t hint = std::min(m.prev_index(), last_index());
            while (hint > 0 && term_at(hint) > m.prev_term()) --hint;
            r.set_success(false);
            r.set_reject_index(m.prev_index());
            r.set_lost_store(recovering_);
            r.set_hint_index(hint);
            r.set_hint_term(term_at(hint));
            send(from, MessageType::kRaftAppendReply, r, out);
            return;
        }
        // Append, truncating at the first conflict (AppendEntries 3, 4). Never below commit.
        uint64_t index = m.prev_index();
        uint64_t uncommitted_bytes = 0;
        for (uint64_t i = commit_ + 1; i <= index; ++i) uncommitted_bytes += entry(i).bytes;
        for (const auto& e : m.entries()) {
            uint64_t i = index + 1;
            if (i <= commit_) {  // committed: the same entry in every leader's log
                index = i;
                continue;
            }
            if (i <= last_index()) {
                if (term_at(i) == e.term()) {
                    if (i > commit_) uncommitted_bytes += entry(i).bytes;
                    index = i;
                    continue;
                }
                log_.resize(i - snap_index_ - 1);  // i > commit_: never a committed entry
                out.persist.push_back(PersistErase{entry_key(i), entry_key_end()});
            }
            std::vector<std::string> requests(e.requests().begin(), e.requests().end());
            size_t bytes = request_bytes(requests);
            if (i > commit_ + config_.max_uncommitted_entries ||
                uncommitted_bytes + bytes > config_.max_uncommitted_bytes)
                break;  // the rest waits until more commits
            uncommitted_bytes += bytes;
            out.persist.push_back(PersistPut{entry_key(i), e.SerializeAsString()});
            log_.push_back(Entry{e.term(), std::move(requests), bytes});
            out.steps.push_back(Step{i, e.term(), "appended", {from}});
            index = i;
        }
        if (!out.persist.empty()) out.sync = true;  // durable before the acknowledgement
        // AppendEntries 5: commit what the leader committed, as far as this append matched.
        const uint64_t committed_before = commit_;
        commit_ = std::max(commit_, std::min<uint64_t>(m.commit(), index));
        for (uint64_t i = committed_before + 1; i <= commit_; ++i)
            out.steps.push_back(Step{i, term_at(i), "committed", {from}});
        deliver(out);
        r.set_success(true);
        r.set_match_index(std::max(index, commit_));
        send(from, MessageType::kRaftAppendReply, r, out);
        // TimeoutNow: the leader hands over to us, and our log matches its own.
        if (m.timeout_now() && !recovering_) campaign(false, out, true);
        // Config::recovering (2): in an append made after this start (it echoes our nonce), our
        // log holds the leader's own commit index (not `commit`, which a heartbeat caps at what
        // we are known to hold), and the entry there is of the leader's own term.
        if (recovering_ && m.recovery_echo() == recovery_nonce_ && m.leader_commit() > 0 &&
            index >= m.leader_commit() && term_at(m.leader_commit()) == term_)
            caught_up_in_term_ = std::max(caught_up_in_term_, term_);
        end_recovery_if_safe(out);
    }

    // Leader transfer: once the transferee's log matches ours, tell it to campaign.
    void maybe_timeout_now(Output& out) {
        if (!transferee_ || progress_[*transferee_].match != last_index()) return;
        ReplicaId to = *transferee_;
        const Progress& p = progress_[to];
        pb::Append a;
        a.set_term(term_);
        a.set_prev_index(heartbeat_prev(p));
        a.set_prev_term(term_at(heartbeat_prev(p)));
        a.set_commit(std::min(commit_, p.match));
        a.set_read_ctx(read_ctx_);
        a.set_timeout_now(true);
        send(to, MessageType::kRaftAppend, a, out);
    }

    void on_append_reply(ReplicaId from, const pb::AppendReply& m, Output& out) {
        if (role_ != Role::kLeader) return;
        Progress& p = progress_[from];
        p.active = true;
        if (m.recovery_nonce() != 0) p.recovery_echo = m.recovery_nonce();
        if (m.read_ctx() > p.read_ack && m.read_ctx() <= read_ctx_) {
            p.read_ack = m.read_ctx();
            extend_lease();
            confirm_reads();
        }
        if (m.success()) {
            if (m.match_index() > last_index()) {
                detect(from, Misbehaviour::kBadMatch);
                return;
            }
            if (m.match_index() > p.match) {
                p.match = m.match_index();
                p.last_progress_tick = now_;
            }
            while (!p.inflight.empty() && p.inflight.front() <= m.match_index()) p.inflight.pop_front();
            if (p.probe) {
                p.probe = false;
                p.paused = false;
                p.inflight.clear();
                p.next = p.match + 1;
                p.last_progress_tick = now_;
            } else {
                p.next = std::max(p.next, p.match + 1);
            }
            maybe_commit(out);
            propose(out);
            send_append(from, out);
            if (transferee_ == from) maybe_timeout_now(out);
            return;
        }
        if (m.reject_index() == 0) return;  // prev 0 always matches: nothing to back-track
        // A replica that lost its store refuses what it once acknowledged: not a stale refusal.
        // Lowering its match un-commits nothing; it only stops counting it until it has them.
        if (m.lost_store() && m.reject_index() <= p.match) {
            p.match = 0;
            to_probe(p, m.reject_index() + 1);  // as if that refusal answered a probe: back-track
        }
        // A refusal: stale unless it answers the probe out, or an append beyond the match.
        if (p.probe ? m.reject_index() != p.next - 1 : m.reject_index() <= p.match) return;
        // Fast back-tracking: skip to our largest index <= hint whose term <= the hint's term.
        uint64_t j = std::min(m.hint_index(), last_index());
        while (j > 0 && term_at(j) > m.hint_term()) --j;
        to_probe(p, std::min(j + 1, std::max<uint64_t>(m.reject_index(), 1)));
        send_append(from, out);
    }

    // Commit (5.3, 5.4.2): the largest index a majority stores, if its entry is of this term.
    // An entry of an earlier term is never committed by counting replicas (Figure 8); it
    // commits with the first entry of this term above it.
    void maybe_commit(Output& out) {
        std::vector<uint64_t> matches;
        for (ReplicaId id = 0; id < n_; ++id) matches.push_back(id == config_.id ? last_index() : progress_[id].match);
        std::sort(matches.begin(), matches.end(), std::greater<>());
        uint64_t n = matches[majority_ - 1];
        if (n > commit_ && term_at(n) == term_) {
            for (uint64_t i = commit_ + 1; i <= n; ++i) {
                Step step{i, term_at(i), "committed", {}};
                for (ReplicaId id = 0; id < n_; ++id)
                    if ((id == config_.id ? last_index() : progress_[id].match) >= i) step.votes.push_back(id);
                out.steps.push_back(std::move(step));
            }
            commit_ = n;
            deliver(out);
            start_read_round(out);  // reads waiting for this term's first commit
        }
    }

    // ReadIndex (thesis 6.4). A read waits until an entry of this term has committed (before,
    // the leader's commit index may be behind what earlier leaders committed); then it takes
    // the commit index and a new read round; a majority answering an append of that round
    // (or a later one) confirms this replica still led when the read arrived.
    void start_read_round(Output& out) {
        if (role_ != Role::kLeader || term_at(commit_) != term_) return;
        bool any = false;
        for (auto& r : reads_)
            if (r.ctx == 0) {
                r.ctx = read_ctx_ + 1;
                r.index = commit_;
                any = true;
            }
        if (!any) return;
        new_round();
        for (ReplicaId id = 0; id < n_; ++id) {
            if (id == config_.id) continue;
            Progress& p = progress_[id];
            pb::Append a;  // a heartbeat carrying the round
            a.set_term(term_);
            a.set_prev_index(heartbeat_prev(p));
            a.set_prev_term(term_at(heartbeat_prev(p)));
            a.set_commit(std::min(commit_, p.match));
            a.set_read_ctx(read_ctx_);
            send(id, MessageType::kRaftAppend, a, out);
        }
        confirm_reads();
    }

    void confirm_reads() {
        for (auto& r : reads_) {
            if (r.ctx == 0 || r.confirmed) continue;
            uint32_t acks = 1;
            for (ReplicaId id = 0; id < n_; ++id)
                if (id != config_.id && progress_[id].read_ack >= r.ctx) ++acks;
            r.confirmed = acks >= majority_;
        }
        release_reads();
    }

    // Confirmed reads whose index the ledger has executed are answered, in arrival order.
    void release_reads() {
        while (!reads_.empty() && reads_.front().confirmed && reads_.front().index <= executed_) {
            reads_done_.push_back(ReadResult{reads_.front().id, true, reads_.front().index, leader_});
            reads_.pop_front();
        }
    }

    // A new round (read_ctx_): every append and heartbeat the leader sends from now on carries
    // it, and a follower's answer echoes it. With lease reads, the tick it began is kept until
    // a majority answered it or a later round, so an answer proves its sender heard from us at
    // that tick or later.
    void new_round() {
        ++read_ctx_;
        if (!config_.lease_reads) return;
        round_ticks_.emplace_back(read_ctx_, now_);
        // Bounded (no majority answering for long): dropping the oldest only ever makes the
        // lease start earlier (extend_lease takes the newest kept round at or below).
        while (round_ticks_.size() > kMaxLeaseRounds) round_ticks_.pop_front();
    }

    // Lease reads (thesis 6.4.1). The newest round a majority (ourselves included) answered
    // began at tick t: each of them heard from us at t or later by its own clock, and from then
    // refuses every vote (but a transfer's) for election_timeout_ticks of its own ticks
    // (heard_from_leader_recently). So no other leader can be elected before t + T; we serve
    // lease reads until t + T - margin, margin = T/8 (at least 1 tick): one tick because ticks
    // are whole (a message received just before a follower's tick counts from that tick), the
    // rest for clocks that drift apart (with T = 20 ticks, up to about 5% over one lease).
    //
    // The clock assumption, which ReadIndex does without: the replicas' tick rates (each from its
    // own monotonic clock) differ by less than the margin over an election timeout, and no
    // replica pauses longer than the margin without noticing (a GC pause, a VM stall: a leader
    // that stalls keeps serving from a lease that expired while it stood still). A restart is
    // noticed: a replica waits an election timeout after it starts before it votes.
    void extend_lease() {
        if (!config_.lease_reads || round_ticks_.empty()) return;
        std::vector<uint64_t> acks{read_ctx_};
        for (ReplicaId id = 0; id < n_; ++id)
            if (id != config_.id) acks.push_back(progress_[id].read_ack);
        std::sort(acks.begin(), acks.end(), std::greater<>());
        const uint64_t answered = acks[majority_ - 1];
        // The newest kept round at or below it (its tick is no later than that round's).
        auto it = std::upper_bound(round_ticks_.begin(), round_ticks_.end(), answered,
                                   [](uint64_t ctx, const auto& r) { return ctx < r.first; });
        if (it == round_ticks_.begin()) return;
        --it;
        const uint64_t margin = std::max<uint64_t>(config_.election_timeout_ticks / 8, 1);
        lease_until_ = std::max(lease_until_, it->second + config_.election_timeout_ticks - margin);
        round_ticks_.erase(round_ticks_.begin(), it);  // older rounds can only give less
    }

    // Never during or after a leader transfer in this term (transfer_leadership).
    bool lease_valid() const {
        return config_.lease_reads && role_ == Role::kLeader && !lease_forfeited_ && !transferee_ &&
               now_ < lease_until_;
    }

    // A follower's half of the lease: it heard from a leader (or started) less than an
    // election timeout ago, by its own ticks. Such a replica votes for no one, whatever term
    // it has moved to since, except in a transfer's election (TimeoutNow).
    bool heard_from_leader_recently() const {
        return config_.lease_reads && now_ - leader_contact_ < config_.election_timeout_ticks;
    }

    void refuse_reads(std::optional<ReplicaId> leader) {
        for (const auto& r : reads_) reads_done_.push_back(ReadResult{r.id, false, 0, leader});
        reads_.clear();
    }

    // Committed entries leave in index order, each exactly once per run.
    void deliver(Output& out) {
        while (delivered_ < commit_ && delivered_ >= snap_index_) {
            uint64_t i = ++delivered_;
            const Entry& e = entry(i);
            out.commit.push_back(Committed{i, e.term, e.requests, encode_block_record(i, e.term, e.requests)});
        }
    }

    Config config_;
    crypto::KeyPair key_;
    std::vector<std::optional<crypto::PairwiseKey>> pairwise_;  // by replica id; none for self
    uint32_t n_;
    uint32_t majority_;

    // Durable (hard) state.
    uint64_t term_ = 0;
    std::optional<ReplicaId> voted_for_;
    std::deque<Entry> log_;  // index i is log_[i - snap_index_ - 1]
    uint64_t snap_index_ = 0;  // the log's entries up to here are compacted into the ledger
    uint64_t snap_term_ = 0;
    crypto::Hash snap_digest_{};
    std::deque<std::pair<uint64_t, crypto::Hash>> recent_digests_;  // (seq, ledger digest) executed
    // InstallSnapshot in progress: the ledger states asked for (by seq), newest last.
    std::map<uint64_t, Fetching> fetching_;
    uint64_t fetch_tick_ = 0;

    // Volatile state.
    Role role_ = Role::kFollower;
    std::optional<ReplicaId> leader_;
    uint64_t commit_ = 0;
    uint64_t delivered_ = 0;  // handed out in Output::commit
    uint64_t executed_ = 0;   // reported by on_executed
    uint64_t now_ = 0;
    uint64_t election_elapsed_ = 0;
    uint64_t election_deadline_ = 0;
    uint64_t heartbeat_elapsed_ = 0;
    uint64_t draws_ = 0;
    std::set<ReplicaId> granted_;
    std::set<ReplicaId> refused_;
    std::vector<Progress> progress_;  // leader only
    struct Queued {
        std::string payload;
        uint64_t since = 0;  // the tick it arrived
    };
    std::deque<Queued> queue_;        // leader only: requests not yet in the log
    // Leader only: clients it got requests from lately (worth_waiting). At most batch_size_max:
    // once that many requests wait, an entry goes anyway.
    RecentClients recent_clients_{config_.batch_size_max};
    size_t queue_bytes_ = 0;
    std::set<crypto::Hash> pending_;  // leader only: digests queued or in entries not yet executed
    std::vector<Detected> detected_;
    struct PendingRead {
        uint64_t id = 0;
        uint64_t index = 0;  // the commit index when its round began
        uint64_t ctx = 0;    // its read round (0: waiting for this term's first commit)
        bool confirmed = false;
    };
    std::deque<PendingRead> reads_;  // leader only, in arrival order
    std::vector<ReadResult> reads_done_;
    uint64_t read_ctx_ = 0;          // the newest read round (never reset: rounds only grow)
    // Lease reads (Config::lease_reads): rounds not yet answered by a majority, with the tick
    // each began; the tick the lease ends; whether a transfer in this term ruled it out.
    std::deque<std::pair<uint64_t, uint64_t>> round_ticks_;
    uint64_t lease_until_ = 0;
    bool lease_forfeited_ = false;
    uint64_t leader_contact_ = 0;  // follower: the tick it last heard from a leader (or started)
    std::optional<ReplicaId> transferee_;  // leader only: handing over to it
    // Config::recovering: each peer's term once it answered; the highest bounds our old votes.
    bool recovering_ = false;
    std::vector<std::optional<uint64_t>> peer_terms_;
    uint64_t caught_up_in_term_ = 0;  // the highest term whose leader's commit index our log holds
    uint64_t recovery_nonce_ = 0;  // Config::recovering: this start's, from Config::seed
    uint64_t term_query_elapsed_ = 0;
    uint64_t transfer_elapsed_ = 0;
};

}  // namespace

bool read_durable(const std::vector<std::pair<std::string, std::string>>& records, DurableState& out) {
    out = DurableState{};
    bool ok = true;
    // The snapshot's record ("s") sorts after the entries ("e..."): find it first.
    for (const auto& [key, value] : records) {
        if (key == kKeySnapshot) {
            pb::SnapshotMeta m;
            if (!parse(value, m) || m.digest().size() != 32) {
                ok = false;
                continue;
            }
            out.snapshot_index = m.index();
            out.snapshot_term = m.term();
            std::copy(m.digest().begin(), m.digest().end(), out.snapshot_digest.begin());
        }
    }
    for (const auto& [key, value] : records) {
        if (key == kKeySnapshot) continue;
        if (key == kKeyHard) {
            pb::HardState h;
            if (!parse(value, h)) {
                ok = false;
                continue;
            }
            out.term = h.term();
            if (h.has_vote()) out.voted_for = h.voted_for();
        } else if (key.size() == 9 && key[0] == kEntryPrefix) {
            uint64_t index = read_be64(std::string_view(key).substr(1));
            pb::Entry e;
            // Only a contiguous log after the snapshot counts; a gap ends it.
            if (index != out.snapshot_index + out.log.size() + 1 || !parse(value, e)) {
                ok = false;
                continue;
            }
            out.log.push_back(LogEntry{index, e.term(), {e.requests().begin(), e.requests().end()}});
        } else {
            ok = false;
        }
    }
    return ok;
}

std::unique_ptr<Engine> make_engine(const Config& config, const crypto::KeyPair& key, RequestAuthenticator&) {
    return std::make_unique<Raft>(config, key);
}

std::unique_ptr<RaftEngine> make_raft_engine(const Config& config, const crypto::KeyPair& key) {
    return std::make_unique<Raft>(config, key);
}

}  // namespace tally::bft::raft
