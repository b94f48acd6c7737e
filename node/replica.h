// Replica: one tallyd — the event loop that turns sockets, timers and worker results into
// engine inputs, and engine outputs into fsyncs, sends, ledger blocks and client replies.
//
// Threads:
//   - the consensus thread (whoever calls run()) owns the engine, the ledger (SQLite), the
//     consensus store (SQLite) and the ZeroMQ sockets. It polls the ROUTER socket and the
//     worker pool's wake-up fd with a timeout of the time left to the next tick;
//   - the WorkerPool's threads open and verify every incoming frame and sign every client
//     reply; they never touch the engine, the ledger or a socket.
//
// One loop turn: receive every waiting frame (hand them to the workers), take the verified
// events, feed each to the engine (plus on_tick when a tick is due), and accumulate their
// outputs; then drain the outputs in the contract's order (bft/engine.h): persist all in one
// durable transaction -> send -> execute each committed batch on the ledger, reply to clients
// whose routes are known, report on_executed (whose output is drained the same way).
// Accumulating a turn's outputs before persisting makes one fsync serve many messages.
//
// Failures: a store or ledger write that fails stops the loop with an Error (the caller exits
// non-zero): the replica must not continue on state it cannot trust. Everything received is
// untrusted and is dropped and counted (Rejections) when it does not check out.
#pragma once

#include <atomic>
#include <cstdint>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "bft/engine.h"
#include "crypto/keys.h"
#include "crypto/result.h"
#include "ledger/state.h"
#include "node/admission.h"
#include "node/answers.h"
#include "node/authenticator.h"
#include "node/client_routes.h"
#include "node/api/network_config.h"
#include "node/events.h"
#include "node/host.h"
#include "node/metrics.h"
#include "node/rejections.h"
#include "node/store.h"
#include "node/store_binding.h"
#include "node/traces.h"
#include "node/transport.h"
#include "node/worker_pool.h"

namespace tally::node {

namespace pb {
class BlocksReply;  // node/node.proto
}

// The largest snapshot piece a replica serves, whatever it is asked for (network.json's
// snapshot_chunk_bytes is at most this): well under a message's limit.
constexpr uint32_t kSnapshotChunkBytesMax = 1u << 20;

struct ReplicaOptions {
    WorkerPoolOptions workers;
    TransportOptions transport;
    ClientRoutesLimits client_routes;  // pending client requests (node/client_routes.h)
    AdmissionLimits admission;         // what a sender or a connection may have pending
    PeerFaultLimits peer_faults;       // what a replica's bad signatures may cost
    size_t authenticator_cache_max = TxAuthenticator::kDefaultCacheEntries;
    size_t frames_per_turn_max = 4096;  // frames read from the ROUTER per loop turn
    // Back-pressure on clients: while this many frames wait for a worker's signature check,
    // the clients' socket is not read (the peers' still is). A client connection then queues
    // in ZeroMQ (client_receive_hwm frames, then TCP pushes back on its sender), and when
    // reading resumes ZeroMQ takes one frame from each connection in turn: a flooding
    // connection gets its share of the checks, not a queue of thousands in front of everyone
    // else's (README, Security: the flood measurement). Only with a client port.
    size_t client_verify_backlog_max = 256;
    // When a loop turn received at most this many frames and no job waits for a worker, the
    // consensus thread checks them itself; likewise it signs up to inline_sign_max replies per
    // turn while the workers are idle. Handing work to another thread costs two context
    // switches, which on a small, shared machine cost more than a signature check; under load
    // (many frames per turn, busy workers) the work goes to the workers, in parallel. 0 = never.
    // 64, not 4: with 4 replicas on 2 cores, 64 took 10-20% less replica CPU per transfer
    // under the 64-client benchmark (README, Performance).
    size_t inline_verify_frames_max = 64;
    size_t inline_sign_max = 64;
    // Wraps the honest engine (node/traitor.h) for fault-injection tests; empty = honest.
    std::vector<std::string> traitor;
    uint64_t traitor_seed = 1;
    // `tallyd --recover`: set the consensus store aside and rejoin as a fresh replica, silent
    // until caught up (node/store_binding.h).
    bool recover = false;
    // Testing only (tallyd --test-ledger-sync-copies): a folder where, each time the ledger
    // becomes durable, a copy of ledger.db and its WAL is kept — what a power loss would leave
    // of the ledger at worst. Empty: none.
    std::string ledger_sync_copies_dir;
};

// What a replica runs on (node/host.h): open() makes the daemon's — ledger.db and
// consensus.db in its data_dir, ZeroMQ, the system clock — and the simulator hands its own to
// open_with().
struct ReplicaParts {
    std::unique_ptr<ledger::State> ledger;  // opened (seeded from genesis when new)
    bool ledger_created = false;            // the ledger was made by this start
    // Opens the consensus store bound to that ledger (node/store_binding.h decides which
    // store a replica may run on).
    std::function<Result<BoundStore>(const LedgerIdentity&)> open_store;
    std::unique_ptr<Network> network;
    std::shared_ptr<const Clock> clock;
    uint64_t seed = 0;  // the engine's randomness, new at each start (Raft's election timeouts, PBFT's recovery request)
    // The simulator's own traitors (message mutation, twins: tests/sim/byzantine.h) wrap the
    // engine, as tallyd's do (node/engine_factory.h). Empty: the engine as made.
    std::function<std::unique_ptr<bft::Engine>(std::unique_ptr<bft::Engine>)> wrap_engine;
};

// Serves snapshot pieces to its Answers too (node/answers.h: a lying-snapshot traitor's races).
class Replica final : private SnapshotServer {
public:
    // Opens what replica `id` runs on: its ledger (DATA_DIR/ledger.db, seeded from genesis),
    // its consensus store (DATA_DIR/consensus.db), the engine, the worker threads and the
    // sockets (bound when this returns). `key` must be replica `id`'s key.
    // Errors: "unsupported" (protocol), "key_mismatch", "ledger", "store", "store_refused"
    // (the store may have forgotten votes: the message says to start with --recover), "bind",
    // "network".
    static Result<std::unique_ptr<Replica>> open(const api::NetworkConfig& config, bft::ReplicaId id,
                                                 const crypto::KeyPair& key,
                                                 const ReplicaOptions& options = {});
    // The same, on the parts given (`options.transport` and `ledger_sync_copies_dir` are
    // the daemon's and are not used). Errors as open()'s.
    static Result<std::unique_ptr<Replica>> open_with(const api::NetworkConfig& config, bft::ReplicaId id,
                                                      const crypto::KeyPair& key,
                                                      const ReplicaOptions& options, ReplicaParts parts);
    ~Replica();
    Replica(const Replica&) = delete;
    Replica& operator=(const Replica&) = delete;

    const std::string& endpoint() const { return network_->endpoint(); }

    // start(), then turns, waiting on the network between them, until `stop` is set (checked
    // at least once per tick; a leader hands over first) or a fatal error, which it returns.
    Status run(const std::atomic<bool>& stop);

    // What run() is made of, for a caller that drives the replica itself (the simulator).
    // start(): restores the engine from the store (on_start). Once, before any turn.
    Status start();
    // One turn of the loop, without waiting: receive what the network holds, feed it (and a
    // tick, when one is due by the clock) to the engine, and drain the outputs. Returns
    // how long the replica may wait before its next turn, unless a message arrives first.
    Result<std::chrono::milliseconds> turn();

    // For the simulator: the replica's engine, ledger and consensus store, read only (a
    // process crash keeps the ledger's and the store's images).
    const bft::Engine& engine() const { return *engine_; }
    const ledger::State& ledger() const { return *ledger_; }
    const Store& store() const { return *store_; }
    // Records held for the next write (may_all_wait): what a process crash now would lose.
    size_t held_writes() const { return held_writes_.size(); }
    uint64_t state_transfers() const { return state_transfers_; }  // ledger snapshots installed
    // The client requests admitted here and not answered yet.
    const ClientRoutes& routes() const { return routes_; }
    // A state transfer is under way (replaying certified blocks is part of one): this replica
    // knows its ledger is behind a stable checkpoint (a Raft snapshot), and admits no new
    // request from a client until it has installed it (on_request).
    bool catching_up() const { return fetching_.has_value(); }
    const Rejections& rejections() const { return rejections_; }
    // Peers' frames dropped unchecked: votes that came after the certificate they would count
    // toward, or like one their sender's already counted (receive_frames).
    uint64_t unchecked_votes() const { return unchecked_votes_; }
    // Peers' votes held back a turn because the votes checked beside them were enough
    // (receive_frames), and of those, the ones still wanted a turn later and checked then
    // (one checked beside them failed, or the workers had not yet checked them).
    struct HeldVotes {
        uint64_t held = 0;
        uint64_t checked_later = 0;
    };
    HeldVotes held_votes() const { return held_votes_count_; }
    // Misbehaviour this replica detected in its peers, by kind.
    const std::map<bft::Misbehaviour, uint64_t>& detected() const { return detected_; }

private:
    Replica(const api::NetworkConfig& config, bft::ReplicaId id, const crypto::KeyPair& key,
            const ReplicaOptions& options);

    // --- replica.cc: the loop and the outputs
    // How many frames the clients' socket may be read for now (0: not at all): back-pressure.
    size_t client_frames_max() const;
    // Reads what waits on the sockets, at most `client_frames_max` frames from the clients'.
    // A peer's frame that the engine says could change nothing (bft::Engine::worth_unverified)
    // is dropped there, before its signature is checked, and counted in unchecked_votes_; a
    // vote beyond what its certificate lacks is held for the next turn (admit_peer_frame).
    void receive_frames(size_t client_frames_max);
    // The distinct senders of the votes checked this turn, by the certificate they count toward.
    using TurnVotes = std::map<std::string, std::vector<bft::ReplicaId>>;
    void admit_peer_frame(VerifyJob job, TurnVotes& counted, bool may_hold);
    void handle_events(bft::Output& out);
    Status drain(bft::Output out);
    // Records that may wait for the next write (bft::PersistPut::may_wait): an output whose
    // writes all may, and that asks no sync, leaves them held; any other write takes every held
    // one first, and a record held a few ticks is written on its own (turn), as at a clean stop.
    static bool may_all_wait(const bft::Output& out);
    void hold_writes(std::vector<bft::PersistOp> ops);
    Status flush_held_writes();
    // One consensus-store transaction (synced when `sync`); a failure stops the replica.
    Status write_store(const std::vector<bft::PersistOp>& ops, bool sync);
    Status execute(const bft::Committed& batch, bft::Output& next);
    void send(const bft::Outgoing& message);
    void collect_detected();
    // After --recover: clears the store's `recovering` mark (synced) once the engine votes
    // again, and logs that, and when it sends VIEW-CHANGEs again (bft/engine.h, EngineStatus).
    Status note_recovery_progress();
    // The store's binding: raises ledger_seq_max (synced) before the ledger may pass it.
    Status allow_ledger_through(uint64_t seq);
    void log_stats();

    // --- replica_state.cc: state transfer (the engine's SnapshotTarget), both sides
    void start_state_transfer(const bft::SnapshotTarget& target);
    void retry_state_transfer();
    void on_snapshot_request(bft::ReplicaId from, const crypto::Envelope& envelope);
    void on_snapshot(bft::ReplicaId from, const crypto::Envelope& envelope, bft::Output& out);
    void keep_snapshot(uint64_t seq);  // after executing seq
    void request_piece();
    void begin_import(const bft::SnapshotTarget& target);
    void finish_state_transfer(bft::Output& out);
    // Answers (and forgets) the pending requests its ledger now holds an outcome for.
    void answer_settled_routes();
    // SnapshotServer, for answers_.
    bool serves(uint64_t seq) const override;
    std::optional<std::string> snapshot_piece(uint64_t seq, const std::string& cursor) override;
    void send_snapshot_piece(bft::ReplicaId to, uint64_t seq, const std::string& cursor,
                             std::string chunk) override;

    // --- replica_backfill.cc: the blocks below a snapshot, with their certificates, both sides
    void start_backfill();  // the ledger may lack blocks below its last one: look, and fetch
    void backfill();        // once per loop turn: asks for the next blocks when due
    void next_backfill_peer(std::chrono::milliseconds wait);
    void on_blocks_request(bft::ReplicaId from, const crypto::Envelope& envelope);
    void on_blocks(bft::ReplicaId from, const crypto::Envelope& envelope, bft::Output& out);
    // Catching up by certified blocks (node/certified_replay.h): the state transfer's way when
    // the peer asked holds no snapshot at the checkpoint.
    void request_blocks_to_checkpoint();
    void on_blocks_to_checkpoint(bft::ReplicaId from, const pb::BlocksReply& reply, bft::Output& out);
    void next_state_peer();  // the current peer cannot help: ask the next for the snapshot

    // --- replica_clients.cc: answering clients
    void on_request(RequestIn& in, bft::Output& out);
    // Admission's verdict on a request not executed yet (node/admission.h).
    // With `forwarded`, only the rules of the ledger's state (a peer's request has no client
    // and no connection here, and an honest backup's must not wait on this replica's load).
    Refusal admission_of(const RequestIn& in, bool forwarded = false) const;
    void on_forwarded(bft::ClientRequest request, bft::Output& out);
    // Answers a refused request at once (seq 0: never ordered) and counts the refusal.
    void refuse(const RequestIn& in, Refusal refusal);
    // Remembers that `tx_id` executed as nonce_too_high with its sender's nonce at `nonce`.
    void remember_not_yet(const crypto::Hash& tx_id, uint64_t nonce);
    // Tells the clients of a request this replica does not order where the leader is
    // (bft::Redirect); keeps nothing of the request.
    void redirect_clients(const bft::Redirect& redirect);
    void send_redirect(const std::string& routing_id, const crypto::Hash& tx_id,
                       const bft::Redirect& redirect);
    void on_read(const ReadIn& in);
    // An ordered query answered by the engine's ReadIndex (bft::Engine::read_index) instead of
    // being ordered: started here, answered from the ledger in answer_reads() once released.
    void start_read_index(RequestIn& in, bft::Output& out);
    void answer_reads();
    void on_status(const StatusIn& in);
    // What `tally net status` shows of this replica, and its metrics (metrics.h) too.
    api::pb::StatusReply status_reply() const;
    // What this replica's traces hold of `tx` (`tally explain`).
    void explain(const crypto::Hash& tx, api::pb::TxTrace& out) const;
    // The timeline of its most recent `count` seqs (at most kRecentSeqsMax) and view changes.
    void timeline(size_t count, api::pb::StatusReply& out) const;
    // A Reply's bytes for one request, as answers_ would have them.
    std::string reply_body(const ClientRoute& route, const crypto::Hash& tx_id,
                           const ledger::Outcome& outcome, uint64_t view) const;
    // One request's reply, signed alone (reply-cache hits: no batch to share a signature with).
    void reply(const ClientRoute& route, const crypto::Hash& tx_id, const ledger::Outcome& outcome,
               uint64_t view);
    // The replies of executed batch `seq` to the clients whose routes are known, under one
    // signature (crypto/reply_batch.h).
    void reply_batch(uint64_t seq, uint64_t view, const std::vector<ledger::Outcome>& outcomes);
    void sign_and_send(std::string routing_id, crypto::MessageType type, std::string body);
    // The first answer to the query `outcome` answers (answered_queries_), which `outcome`
    // becomes when there was none: a query has one answer however often it is ordered or read.
    const ledger::Outcome& first_answer(const ledger::Outcome& outcome);
    void sign_and_send_batch(BatchSignJob job);

    api::NetworkConfig config_;
    bft::ReplicaId id_;
    crypto::KeyPair key_;
    ReplicaOptions options_;

    Rejections rejections_;
    TxAuthenticator authenticator_;
    std::unique_ptr<ledger::State> ledger_;
    std::unique_ptr<Store> store_;
    // Invariant: the ledger's last seq <= ledger_seq_max_, which the store holds synced.
    uint64_t ledger_seq_max_ = 0;
    bool recovering_ = false;  // the engine was started recovering and has not caught up yet
    uint64_t view_changes_withheld_through_ = 0;  // EngineStatus's, as last logged
    bool recovery_looked_at_ = false;  // note_recovery_progress ran since the start
    std::unique_ptr<bft::Engine> engine_;
    // What it tells clients and peers outside consensus passes through this (node/answers.h):
    // honest, or a traitor's LyingAnswers (node/traitor.h).
    std::unique_ptr<Answers> answers_;
    std::unique_ptr<Network> network_;
    std::shared_ptr<const Clock> clock_;
    std::unique_ptr<Metrics> metrics_;  // null without a metrics_port
    Traffic traffic_;                   // counted only with metrics_
    Traffic::Count sent_total_;         // every message to a peer, metrics or not (status_reply)
    uint64_t state_transfers_ = 0;      // ledger snapshots installed
    uint64_t unchecked_votes_ = 0;      // see unchecked_votes()
    HeldVotes held_votes_count_;        // see held_votes()
    bool checkpointer_failure_logged_ = false;        // log_stats: said once (the ledger's)
    bool store_checkpointer_failure_logged_ = false;  // and the consensus store's
    // Declared after everything its threads use, so it is destroyed (and joined) first.
    std::unique_ptr<WorkerPool> workers_;
    ClientRoutes routes_;
    // The reply cache for ordered queries, which the ledger does not record: a retransmitted
    // query is answered with its first outcome instead of being ordered (and executed) again.
    // Bounded, oldest forgotten first.
    std::map<crypto::Hash, ledger::Outcome> answered_queries_;
    std::deque<crypto::Hash> answered_order_;
    // Transfers that executed as nonce_too_high, with their sender's nonce just after: the
    // same bytes are not ordered again until that nonce moves (admission.h). Bounded, oldest
    // forgotten first.
    // Queries waiting for the engine's ReadIndex, by read id. Bounded (kReadsPendingMax): the
    // engine answers or refuses each, but a client must not make this grow meanwhile.
    struct PendingReadIndex {
        std::string routing_id;
        crypto::Hash tx_id{};
        crypto::PublicKey client{};
        uint64_t nonce = 0;
        std::string query;  // the query's envelope
    };
    std::map<uint64_t, PendingReadIndex> read_index_pending_;
    std::map<std::string, size_t> read_index_per_connection_;  // by routing id, never 0
    uint64_t next_read_id_ = 1;
    std::map<crypto::Hash, uint64_t> not_yet_;
    std::deque<crypto::Hash> not_yet_order_;

    std::vector<Event> events_;      // reused every turn
    std::vector<VerifyJob> frames_;  // reused every turn
    std::vector<bft::PersistOp> held_writes_;  // see may_all_wait()
    Clock::TimePoint held_writes_since_{};
    // Votes beyond what their certificate lacked in the turn they came (admit_peer_frame):
    // looked at again first thing next turn, which comes at once.
    std::vector<VerifyJob> held_votes_;
    std::vector<size_t> held_per_peer_;  // held_votes_ by the peer each names
    // Bytes per second per client connection (node/connection_limits.h), checked as a frame
    // is read, before it costs a signature check.
    ConnectionRates client_rates_;
    ConnectionRates peer_faults_;  // keyed by the replica's id: its connection may change
    // The recent life of transactions here, for `tally explain` (node/traces.h).
    Traces traces_;
    // Records an output's steps (traces_) and how long each phase took (metrics_).
    void record_steps(std::vector<bft::Step>& steps);
    int64_t mono_us() const { return clock_->mono_us(); }
    int64_t wall_ms() const { return clock_->wall_ms(); }
    // The loop's timers (turn()).
    std::chrono::steady_clock::time_point next_tick_{}, next_stats_{}, next_metrics_{};
    size_t inline_signs_left_ = 0;   // this turn's budget of signatures made on this thread
    std::map<bft::Misbehaviour, uint64_t> detected_;  // misbehaviour seen in peers, by kind

    // State transfer: what this replica fetches, and the snapshots it can serve.
    std::optional<bft::SnapshotTarget> fetching_;
    size_t fetch_attempt_ = 0;
    // The peer asked for the piece at the import's cursor: the only answer accepted (cursors
    // are predictable, so anyone could race an answer to them otherwise).
    bft::ReplicaId asked_peer_ = 0;
    std::set<bft::ReplicaId> served_this_import_;  // peers whose pieces the import kept
    std::chrono::steady_clock::time_point fetch_retry_at_{};
    std::unique_ptr<ledger::SnapshotImport> import_;  // the snapshot being fetched, if any
    std::optional<bft::SnapshotTarget> next_fetch_;  // a newer checkpoint, once this one is in
    size_t refused_in_a_row_ = 0;  // snapshots that failed their check, one after another
    // Catching up by certified blocks from asked_peer_: the answer awaited (the blocks from
    // replay_from_ up), and when to ask for the next ones.
    bool replaying_ = false;
    bool replay_awaiting_ = false;
    uint64_t replay_from_ = 0;
    uint64_t replayed_ = 0;  // blocks executed from certificates in this transfer
    std::chrono::steady_clock::time_point replay_next_at_{};
    // The checkpoints this replica serves: the newest two, and any a peer is still fetching.
    struct Served {
        ledger::SnapshotPoint point;
        std::chrono::steady_clock::time_point asked{};  // last asked for a piece
    };
    std::map<uint64_t, Served> snapshots_;
    // Backfill: the answer awaited (from backfill_peer_, for the blocks ending at
    // backfill_top_), whom to ask next, and when.
    bool backfilling_ = false;
    bool backfill_awaiting_ = false;
    uint64_t backfill_top_ = 0;
    bft::ReplicaId backfill_peer_ = 0;
    uint64_t backfill_peer_turn_ = 0;
    uint64_t backfilled_ = 0;  // blocks fetched since start
    std::chrono::steady_clock::time_point backfill_retry_at_{};
    std::chrono::steady_clock::time_point backfill_asked_at_{};
    std::map<bft::ReplicaId, std::chrono::steady_clock::time_point> blocks_answered_;
    LogLimiter detected_log_;
    LogLimiter drop_log_;
    uint64_t dropped_sends_logged_ = 0;
};

}  // namespace tally::node
