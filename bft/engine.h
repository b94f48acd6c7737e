// The consensus engine interface: what PBFT (bft/pbft) and Raft (bft/raft) implement, and
// what the node (node/) drives, in tallyd and in the simulator (tests/sim, which runs the node).
//
// An engine is a pure, deterministic, single-threaded state machine. It has no sockets,
// threads, clocks, files or randomness of its own: every input arrives through one of the
// on_* calls below, and every effect leaves as an Output. Fed the same inputs in the same
// order, two engines produce the same outputs: that is what lets the simulator replay a
// failing seed exactly.
//
// The contract for every Output, in this order:
//   early. send_early — hand these messages to the transport before anything else: nothing in
//      them relies on this output's writes (Raft: a leader's AppendEntries with its own new
//      entries, which it may send while it writes them, thesis 10.2.1; PBFT: a pre-prepare or a
//      prepare, whose unsynced record the restart rule stands in for). Outputs drained as one
//      (Output::append) keep this true: once a sync is pending, later early sends wait for it.
//      The caller reads its next input only after step 1, so an engine that counts its own
//      writes (a leader's vote for its entries toward a commit) counts them synced.
//   0. ledger — when ledger_sync_through is set, make the ledger durable through that seq
//      (it has executed it) before anything below happens: before the replica's CHECKPOINT
//      vouches for that state, and before a stable checkpoint erases the certificates that
//      could execute it again. Otherwise a power loss of every replica at once could take
//      blocks that 2f+1 replicas vouched for and nobody can replay.
//   1. persist — apply every PersistOp (written to the OS: it survives the process being
//      killed) before anything in `send` leaves; when `sync` is set, make them and every
//      earlier write durable (fsync) first, so they survive the machine losing power too.
//      A put marked may_wait (PersistPut) is the exception: it may be held and written first
//      in the caller's next write, and a process crash may lose it.
//      An honest replica must never contradict after a crash what it signed before it: an
//      engine sets `sync` where a lost write could make it do so (and, for what it writes
//      without sync, must not rely on it after a restart; see bft/pbft's restart rule).
//   2. send    — hand every message to the transport (delivery is not guaranteed).
//   3. commit  — execute the committed batches in the order given (sequence numbers are
//      consecutive across outputs), then report each with on_executed(seq, digest).
//   4. fetch_snapshot — when set, bring the ledger to that checkpoint from peers, then call
//      on_state_restored().
//   5. redirects — answer each client whose request is named with a redirect to the leader
//      (after the sends: it tells the client where to go, and promises nothing).
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "bft/misbehaviour.h"
#include "crypto/envelope.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/result.h"

namespace tally::bft {

using ReplicaId = uint32_t;
inline constexpr ReplicaId kAllReplicas = std::numeric_limits<ReplicaId>::max();

// What a request's payload says about itself, once authenticated. The engine never reads
// payloads itself: a RequestAuthenticator does (the ledger's transactions, in the node).
struct RequestInfo {
    crypto::PublicKey client{};
    uint64_t nonce = 0;
};

// A client's request, authenticated.
struct ClientRequest {
    RequestInfo info;
    std::string payload;  // the client's signed envelope (a transaction), opaque to the engine
};

// Checks a payload's client signature and reads its client and nonce. It must be a pure
// function of the payload (the node's caches a verdict per payload digest). An engine calls it
// for every request in a batch a peer proposes.
class RequestAuthenticator {
public:
    virtual ~RequestAuthenticator() = default;
    virtual Result<RequestInfo> authenticate(std::string_view payload) = 0;
};

// --- Outputs ---------------------------------------------------------------------------

// One message to one replica, or to all others (kAllReplicas): a sealed crypto::Envelope.
struct Outgoing {
    ReplicaId to = kAllReplicas;
    std::string envelope;
};

// Key-value writes. Keys are byte strings ordered as bytes (engines encode numbers
// big-endian so ranges work). Applied in order before any send (durable when Output::sync).
struct PersistPut {
    std::string key;
    std::string value;
    // The engine does not rely on this record surviving even the process: its loss is covered
    // the way a power loss of an unsynced write is (PBFT: the record of a pre-prepare or prepare
    // it sent, which the restart rule stands in for). The caller may then hold it back and
    // write it with its next write, to save a transaction of its own; it still writes every
    // earlier-held record first, in the same transaction or before, so that one never lands
    // after a later write of the same engine. Step 1's order is kept for every other op.
    bool may_wait = false;
};
struct PersistErase {  // erases every key in [from, to)
    std::string from;
    std::string to;
};
using PersistOp = std::variant<PersistPut, PersistErase>;

// A batch the protocol has committed at `seq`: execute it after seq - 1. An empty batch (a
// PBFT null request, a Raft no-op) still advances the sequence and makes an (empty) block.
struct Committed {
    uint64_t seq = 0;
    uint64_t view = 0;  // PBFT view or Raft term
    std::vector<std::string> requests;
    // The protocol's proof that `requests` committed at `seq` (PBFT: a pb::CommittedProof, the
    // pre-prepare and 2f+1 commits), opaque to the caller, which keeps it with the block so
    // that every block can be checked later (`tally audit`) and served to peers that lack it.
    // Empty where the engine has none.
    std::string certificate{};
};

// Reads the certificate a ledger keeps with its block at `seq` (see Engine::on_start).
using CertificateOf = std::function<std::string(uint64_t seq)>;

// The replica is behind a checkpoint its peers proved: fetch the ledger state at `seq`, which
// must hash to `digest`, from `peers` (try them in turn; count any that serve a wrong one).
struct SnapshotTarget {
    uint64_t seq = 0;
    crypto::Hash digest{};
    std::vector<ReplicaId> peers;
};

// A client's request this replica does not order, because another replica leads (a Raft
// follower), or nobody is known to lead yet (an election): the node answers the client with a
// redirect naming `leader`, and keeps nothing of the request; the client retries there. An
// engine where every replica takes requests (PBFT: backups forward them) never redirects.
struct Redirect {
    std::string payload;               // the request (the node finds its client by it)
    std::optional<ReplicaId> leader;   // who this replica believes leads; none: unknown yet
    uint64_t view = 0;                 // this replica's view or term
};

// One step of a sequence number through the protocol at this replica, for `tally explain` and
// the live view: the node stamps it with the time it drained it. Neutral names, the protocol's
// own steps:
//   PBFT  "pre-prepare" (the batch accepted; votes: the primary), "prepared" (votes: the
//         primary and the backups whose PREPAREs made the certificate), "committed"
//         (committed-local; votes: the replicas whose COMMITs were counted), or "caught-up"
//         (a peer's commit certificate proved it decided before this replica got there itself;
//         votes: that peer);
//   Raft  "appended" (votes: the leader), "committed" (votes: the leader's majority of
//         matching logs; at a follower, the leader that said so).
// With seq 0, a change of view or term: PBFT "view-change" (this replica asks for `view`) and
// "new-view" (it entered `view`); Raft "election" (it campaigns in term `view`) and "leader"
// (it won `view`). Only for people: nothing reads them back into the protocol.
struct Step {
    uint64_t seq = 0;
    uint64_t view = 0;
    std::string phase;
    std::vector<ReplicaId> votes;  // ascending
};

struct Output {
    std::vector<PersistOp> persist;
    std::vector<Outgoing> send;
    std::vector<Outgoing> send_early;  // see the contract above: sent before `persist` is written
    std::vector<Committed> commit;
    std::optional<SnapshotTarget> fetch_snapshot;
    std::vector<Redirect> redirects;
    // Requests a peer forwarded to this replica to order (PBFT: a backup to its primary),
    // authenticated. The caller passes them through the admission its own clients' requests
    // pass, and hands those it admits to on_client_request: a traitor could forward anything
    // signed (transfers from keys without an account, bytes that executed already), and the
    // ledger, not the engine, knows which of them an honest replica would order.
    std::vector<ClientRequest> forwarded;
    std::vector<Step> steps;  // for people (Step); no action needed, so not part of empty()
    bool sync = false;  // fsync the persisted writes (and every earlier one) before sending
    // Make the ledger durable through this seq (already executed) before persisting or
    // sending anything of this output; 0: no need. See step 0 of the contract.
    uint64_t ledger_sync_through = 0;

    bool empty() const {
        return persist.empty() && send.empty() && send_early.empty() && commit.empty() &&
               !fetch_snapshot && redirects.empty() && forwarded.empty() &&
               ledger_sync_through == 0;
    }
    // Appends `other` after this output's own effects, keeping the contract's order. The
    // caller then drains both as one (the node: a loop turn's inputs, one fsync for all).
    void append(Output&& other);
    // Puts send_early at the front of send: for a wrapper that rewrites what an engine sends
    // and does not keep the early messages apart (a traitor, the simulator's twins). They
    // then leave after the writes, which is always allowed, only later.
    void fold_send_early();
};

// A misbehaviour an engine detected in a peer (a bad message, a conflicting one, a lie).
// Counted by the node by kind; shown by `tally net status` under misbehaviour_name(kind).
struct Detected {
    ReplicaId from = 0;
    Misbehaviour kind = Misbehaviour::kMalformed;
    // False when nothing checked proves that `from` made the fault, only that the message names
    // it: a PBFT pre-prepare is authenticated by its header, which any replica can put around
    // another batch, so a batch that does not hash to the header's digest is nobody's proven
    // doing (the logs say so).
    bool proven = true;
};

// What `tally net status` shows of an engine. The first part is neutral: every protocol
// fills it, and the node and the CLI read it without knowing the protocol. The second part is
// the protocol's own (zero where a protocol has no such thing).
struct EngineStatus {
    // --- neutral
    std::string protocol;  // "pbft" or "raft"
    std::string role;      // "primary"/"backup", "leader"/"follower"/"pre-candidate"/"candidate"
    uint64_t view = 0;     // view or term
    uint64_t last_executed = 0;  // applied: the last seq the caller reported executed
    // The highest seq this replica knows committed, and the last seq its log holds (committed
    // or not). 0 where the engine does not say (PBFT reports neither yet).
    uint64_t commit_index = 0;
    uint64_t last_log_index = 0;
    std::optional<ReplicaId> leader;  // who this replica believes leads, if anyone
    bool recovering = false;  // PBFT: silent after losing its consensus store, until caught up;
                              // Raft: the same (no vote, no campaign), or fetching a snapshot
    // PBFT, after losing its consensus store: it signs no VIEW-CHANGE until its stable
    // checkpoint reaches this seq (it votes again before; bft/pbft/engine.h, forgot_through_).
    // 0 when it sends them.
    uint64_t view_changes_withheld_through = 0;
    // --- the protocol's own
    uint64_t low_water_mark = 0;     // PBFT h; Raft: the snapshot index (log compacted to it)
    uint64_t stable_checkpoint = 0;  // PBFT
    bool view_changing = false;      // PBFT
};

// The answer to a linearizable read without a log write (Engine::read_index): ok with the
// index the ledger has executed through (serve the read from the ledger now), or refused (not
// the leader, stepped down, too many pending) with the leader this replica believes in.
struct ReadResult {
    uint64_t read_id = 0;
    bool ok = false;
    uint64_t index = 0;
    std::optional<ReplicaId> leader;
};

// --- The engine ------------------------------------------------------------------------

class Engine {
public:
    virtual ~Engine() = default;

    // One logical tick of time has passed. All timeouts are counted in ticks.
    virtual Output on_tick() = 0;

    // A message from replica `from`. The caller has opened the envelope: its signature is
    // valid (for a PBFT pre-prepare, its header's: bft/pbft/messages.h, pre_prepare_authentic)
    // and its sender is replica `from`'s key. `raw` is the envelope's bytes, which an
    // engine may keep as proof and forward. The body is untrusted until decoded.
    virtual Output on_message(ReplicaId from, const crypto::Envelope& envelope, std::string_view raw) = 0;

    // Asked before a peer's message has its signature checked (the largest cost of most
    // messages), from its type, its unverified body and the replica its envelope names as its
    // sender (unverified too; nullopt: none): would it still change anything here, whether
    // or not its signature holds, and if it is a vote toward a certificate not made yet, how many more
    // votes that certificate lacks (Worth). wanted = false lets the caller drop it unchecked; a
    // caller holding more votes toward one certificate than it lacks may check only that many
    // first, and the others once it knows whether they are still needed. An engine answers
    // only from what it would do even if the signature held, and reads the body only to
    // answer: nothing of it is kept or acted on, so a forged body can at most make the caller
    // drop, or check later, a message the engine did not need. Default: every message counts.
    struct Worth {
        bool wanted = true;
        // A name for the certificate the vote counts toward (unique among this engine's
        // certificates at this moment), and how many more distinct replicas' votes it lacks;
        // empty: no certificate in sight, no limit.
        std::string toward;
        uint32_t lacking = 0;
    };
    virtual Worth worth_unverified(crypto::MessageType type, std::string_view body,
                                   std::optional<ReplicaId> from) const {
        (void)type;
        (void)body;
        (void)from;
        return {};
    }

    // A client's request, already authenticated by the caller.
    virtual Output on_client_request(const ClientRequest& request) = 0;

    // The caller executed Committed{seq} and the ledger's digest after it is `digest` (opaque
    // to the engine, which signs it in checkpoints; the node gives the block's hash, which
    // covers the state digest and the chain, so that state transfer can check the header).
    virtual Output on_executed(uint64_t seq, const crypto::Hash& digest) = 0;

    // The caller installed state at `seq` with `digest` (after a SnapshotTarget).
    virtual Output on_state_restored(uint64_t seq, const crypto::Hash& digest) = 0;

    // Called once, before any other input, when the replica starts: `records` is everything
    // persisted before (sorted by key; empty on a first start), and the ledger has executed
    // up to `executed_seq` with `digest`. `certificate_of(seq)` reads the certificate the
    // ledger keeps with its block at seq <= executed_seq (Committed::certificate; empty when
    // it holds none): the ledger's own record of what was decided, which outlives a store
    // whose unsynced writes the power took. Empty where the caller keeps no ledger.
    virtual Output on_start(const std::vector<std::pair<std::string, std::string>>& records,
                            uint64_t executed_seq, const crypto::Hash& digest,
                            const CertificateOf& certificate_of) = 0;

    virtual EngineStatus status() const = 0;

    // Whether this replica orders client requests now. False (a Raft follower or candidate, a
    // leader handing over): on_client_request answers with a Redirect, and the node sends it
    // before its reply cache or admission would answer for a leader it is not. PBFT: always.
    virtual bool takes_client_requests() const { return true; }

    // A clean stop is coming (SIGTERM): hand over what this replica leads, if the protocol
    // can, so that the others need not wait out a timeout to notice it gone. Raft: a leader
    // transfer to its most up-to-date follower (thesis 3.10); takes_client_requests() is false
    // meanwhile. PBFT: nothing (its view change needs the backups' own timeouts as evidence).
    // The caller goes on until status().role changes or a deadline passes, then stops.
    // nullopt: nothing to hand over (stop at once).
    virtual std::optional<Output> hand_over() { return std::nullopt; }

    // Linearizable reads without ordering them (Raft's ReadIndex, thesis 6.4). An engine that
    // offers them says so; the node then starts one per ordered query (read_index, with an id
    // of its choosing) and answers it from its ledger when take_reads() releases it — at once
    // or after later inputs. PBFT offers none: its queries are ordered like transfers.
    virtual bool offers_read_index() const { return false; }
    virtual Output read_index(uint64_t read_id) {
        (void)read_id;
        return {};
    }
    virtual std::vector<ReadResult> take_reads() { return {}; }

    // Misbehaviour detected since the last call (the caller counts and logs it).
    virtual std::vector<Detected> take_detected() = 0;
};

}  // namespace tally::bft
