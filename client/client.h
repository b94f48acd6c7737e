// The Tally client library: submits signed transactions to every replica and accepts a result
// only on a quorum of matching signed replies; reads at three consistency levels; status.
//
// Wire (node/api/client.proto, shared with the replicas): a Client sends and receives over a
// ClientLink (client/link.h), which in every program is ZeroMQ (client/zmq_link.h): one DEALER
// per replica, connected to the replica's ROUTER at the endpoint in network.json, under
// CurveZMQ (client/curve.h: an ephemeral client key, the server key derived from the replica's
// public_key, so only that replica can answer on it and nothing travels in the clear). The
// deterministic simulator gives it a simulated network instead; the link also supplies the
// clock deadlines and retransmissions are measured in. Every message is one frame holding one sealed envelope
// (crypto/envelope.h). Requests are kRequest envelopes (ledger/tx.h); replies come back on the
// same DEALER as kReply / kBatchReply / kReadReply / kStatusReply envelopes signed by that
// replica (a kBatchReply under the signed Merkle root of its batch's replies).
//
// What it trusts: network.json (the replicas' endpoints and public keys, the protocol) and
// nothing a replica sends. A result is accepted when as many distinct replicas as the
// protocol's client quorum asks (bft/quorum.h; PBFT: f+1, 2f+1 for a fast read) sent matching
// signed replies; everything else is counted in counters() and ignored (ReplyQuorum).
// Raft (crash faults only): one signed reply, of a term no older than the newest term the
// client has seen; a request goes to the leader the client believes in, and a follower's
// signed kRedirect sends it on to the leader (at most ClientQuorum::redirect_hops_max hops
// per request; every retransmission goes to every replica, so a dead leader never stalls it).
//
// Threads: thread-compatible. One Client per thread; a Client is driven by whichever thread
// calls it. Completions run inside poll() (or inside a synchronous call, which polls).
// No call throws.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bft/quorum.h"
#include "client/link.h"
#include "client/reply_quorum.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/result.h"
#include "ledger/tx.h"
#include "node/api/client.pb.h"
#include "node/api/network_config.h"

namespace tally::client {

inline constexpr Duration kDefaultTimeout{10'000};
inline constexpr Duration kDefaultRetransmit{1'000};

// Error codes a Client returns (Error::code):
//   "timeout"        no quorum before the deadline (the network may be down or partitioned)
//   "not_connected"  connect() was not called or failed
//   "network"        the ZeroMQ layer failed (connecting)
//   "bad_request"    the envelope given to submit() is not a transaction
//   "in_flight"      the same transaction is already outstanding on this Client
//   "failed"         a quorum answered, but with a result that makes the call meaningless
//                    (for example a balance query answered "malformed")

enum class Consistency {
    kLinearizable,  // an ordered query through consensus; f+1 matching replies
    kFast,          // unordered; 2f+1 matching replies, else falls back to kLinearizable
    kLocal,         // one replica's current state; may be stale
};
std::string_view consistency_name(Consistency c);
std::optional<Consistency> consistency_from_name(std::string_view name);

// The text of a result code as carried in a Reply ("ok", "insufficient_funds", ... or
// "result_<n>" for a code this build does not know).
std::string result_text(uint32_t result);

struct ClientOptions {
    Duration retransmit_interval = kDefaultRetransmit;  // resend to all when no quorum by then
    Duration fast_read_wait = Duration{1'000};          // fast read: give up and fall back after
    Duration status_wait = Duration{1'000};             // status: a replica silent this long is down
    size_t recent_results_max = 4096;  // accepted results kept to judge replies that come late
    // A quorum that refuses a request without ordering it (seq 0) for a reason that may only
    // be the refusing replicas' lag — unknown_sender (they have not yet executed the block that
    // funded the sender), nonce_too_high, busy — is checked again: the request is resent after
    // refusal_recheck, up to refusal_rechecks_max times, before the refusal is believed.
    Duration refusal_recheck = Duration{100};
    int refusal_rechecks_max = 2;
    // A protocol with a leader: a follower redirects to the leader this client already sent
    // the request to, which has not answered (it may be dead, and the followers not yet know
    // it). Every replica is asked again after leader_recheck rather than a whole
    // retransmit_interval, so a new leader is found soon after it is elected.
    Duration leader_recheck = Duration{250};
    // Set: the Client's randomness (status nonces, the ephemeral keys that sign its queries)
    // comes from this seed, so a simulation replayed with it sends the same bytes. Unset: from
    // the OS (std::random_device, crypto::KeyPair::generate).
    std::optional<uint64_t> seed;
};

// An accepted ordered result (f+1 matching replies).
struct OrderedResult {
    crypto::Hash tx_id{};
    uint32_t result = 0;  // ledger::ResultCode
    uint64_t seq = 0;     // sequence number == block height it executed at
    uint64_t value = 0;
    uint64_t account_nonce = 0;
    bool ok() const { return result == static_cast<uint32_t>(ledger::ResultCode::kOk); }
};

struct TransferResult {
    crypto::Hash tx_id{};
    uint64_t nonce = 0;
    uint64_t seq = 0;
    uint64_t block = 0;  // the block height; one block per sequence number
    uint32_t result = 0;
    bool ok() const { return result == static_cast<uint32_t>(ledger::ResultCode::kOk); }
    // False when the network did not order the transfer for good: kNonceTooHigh and
    // kUnknownSender are "not yet" (ledger/tx.h), not recorded, and the same signed bytes may
    // still apply later, ordered again by anyone who holds them. Every other result is final.
    bool final() const { return is_final(result); }
    static bool is_final(uint32_t result) {
        return result != static_cast<uint32_t>(ledger::ResultCode::kNonceTooHigh) &&
               result != static_cast<uint32_t>(ledger::ResultCode::kUnknownSender);
    }
};

struct BalanceResult {
    crypto::PublicKey account{};
    bool exists = false;  // false: no account yet (balance and nonce are 0)
    uint64_t balance = 0;
    uint64_t nonce = 0;   // the account's last nonce; its next transfer carries nonce + 1
    uint64_t seq = 0;     // the sequence number the answer reflects
    Consistency served = Consistency::kLinearizable;  // what actually answered (fast may fall back)
    std::optional<uint32_t> replica;                  // kLocal: which replica answered
};

struct TxResult {
    crypto::Hash tx_id{};
    uint32_t result = 0;  // the queried transaction's result, or kUnknownTx
    uint64_t seq = 0;
};

struct ReplicaStatus {
    uint32_t id = 0;
    bool up = false;
    node::api::pb::StatusReply reply;  // meaningful when up
};

class Client {
public:
    // Called from poll() when an asynchronous request completes: an accepted result, or an
    // Error "timeout".
    using Completion = std::function<void(const Result<OrderedResult>&)>;

    explicit Client(ClientOptions options = {});
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Connects one DEALER per replica (ZmqLink). Connecting does not wait for the replicas:
    // ZeroMQ connects in the background and queues what is sent meanwhile. Errors: "invalid"
    // (network.json's replicas), "network". Requests in flight are dropped without completing.
    Status connect(const node::api::NetworkConfig& config);
    // The same over `link` (the simulator's network and clock), which must reach the replicas
    // of `config` by their ids.
    Status connect(const node::api::NetworkConfig& config, std::unique_ptr<ClientLink> link);
    const node::api::NetworkConfig& config() const { return config_; }

    // --- Synchronous calls (each polls until it is done or its deadline passes) -------------

    // Transfers `amount` from `key`'s account to `to`. Without `nonce`, reads the sender's
    // account (PBFT: a fast read; Raft: linearizable, through the leader) and uses its nonce + 1. A failed result (insufficient funds, ...)
    // is a successful call whose result says so.
    Result<TransferResult> transfer(const crypto::KeyPair& key, const crypto::PublicKey& to,
                                    uint64_t amount, std::optional<uint64_t> nonce = std::nullopt,
                                    Duration timeout = kDefaultTimeout);
    // Reads an account. `node` picks the replica for kLocal.
    Result<BalanceResult> balance(const crypto::PublicKey& account,
                                  Consistency consistency = Consistency::kLinearizable,
                                  Duration timeout = kDefaultTimeout, uint32_t node = 0);
    // An ordered query of a transaction's result.
    Result<TxResult> tx(const crypto::Hash& tx_id, Duration timeout = kDefaultTimeout);
    // Asks every replica for its status; one entry per replica, in id order. With `explain_tx`,
    // each reply also carries what that replica knows of the transaction (StatusReply.trace);
    // with `recent_seqs`, the timeline of its most recent sequence numbers (StatusReply.recent,
    // at most 64 whatever is asked) and its recent view changes.
    Result<std::vector<ReplicaStatus>> status(
        std::optional<Duration> wait = std::nullopt,
        const std::optional<crypto::Hash>& explain_tx = std::nullopt, uint32_t recent_seqs = 0);
    // Submits a pre-signed kRequest envelope and waits for its accepted result.
    Result<OrderedResult> submit(std::string envelope, Duration timeout = kDefaultTimeout);

    // --- Asynchronous (pipelined) calls -------------------------------------------------------

    // Sends a pre-signed kRequest envelope to every replica; `done` runs from a later poll().
    // Returns the transaction id. Errors: "bad_request", "in_flight", "not_connected".
    Result<crypto::Hash> submit_async(std::string envelope, Completion done,
                                      Duration timeout = kDefaultTimeout);
    // Receives replies, retransmits, expires deadlines and runs completions, waiting at most
    // `max_wait` for something to arrive. Returns the number of completions it ran.
    size_t poll(Duration max_wait);
    // Asynchronous requests not yet completed.
    size_t outstanding() const { return ordered_.size(); }

    // --- Counters -------------------------------------------------------------------------------

    // Replies by outcome: rejected() = bad signatures + malformed + mismatching.
    ReplyCounters counters() const;
    uint64_t retransmits() const { return retransmits_; }
    uint64_t dropped_sends() const { return dropped_sends_; }
    // Replies accepted through a batch root verified earlier (no signature check of their own).
    uint64_t root_cache_hits() const { return verified_roots_.hits(); }

private:
    struct PendingOrdered {
        std::string envelope;
        ExpectedRequest expected;
        ReplyQuorum quorum;
        int rechecks = 0;  // refusals asked again (ClientOptions::refusal_recheck)
        uint32_t hops = 0;  // redirects followed (ClientQuorum::redirect_hops_max)
        std::optional<uint32_t> sent_to_leader;  // the leader a redirect last sent it to
        Clock::time_point deadline;
        Clock::time_point next_send;
        Completion done;
        uint64_t made = 0;  // made_ when it was made: the order run_timers takes it in
    };
    struct PendingRead {
        std::string frame;  // the sealed kReadRequest
        ReplyQuorum quorum;
        std::optional<uint32_t> target;  // kLocal: the one replica asked
        Clock::time_point deadline;
        Clock::time_point next_send;
        bool finished = false;
        uint64_t made = 0;  // as PendingOrdered::made
    };
    struct PendingStatus {
        uint64_t nonce = 0;
        std::vector<std::optional<node::api::pb::StatusReply>> replies;
        uint32_t answered = 0;
    };

    // Sends one frame to one replica, never blocking (a full queue to a dead replica drops).
    // These and everything below need the link (connect() first).
    void send_to(uint32_t replica, std::string_view frame);
    void send_to_all(std::string_view frame);
    void on_frame(uint32_t replica, std::string_view frame);
    void on_reply(uint32_t replica, std::string_view frame, const crypto::Envelope& envelope);
    void on_read_reply(uint32_t replica, std::string_view frame, const crypto::Envelope& envelope);
    void on_status_reply(uint32_t replica, std::string_view frame);
    void on_redirect(uint32_t replica, std::string_view frame);
    std::optional<crypto::Envelope> open_signed(uint32_t replica, std::string_view frame);
    // Sends an ordered request where it should go first: to the leader the client believes in
    // (a protocol with one), else to every replica.
    void send_request(const std::string& envelope);
    // Raft: the reply of a replica whose term is older than one this client has seen is stale.
    void learn_term(uint64_t term, std::optional<uint32_t> leader);
    size_t run_timers(Clock::time_point now);
    size_t complete(const std::string& id, Result<OrderedResult> result);
    // When the accepted quorum of `pending` is a refusal that may be lag, starts it over (and
    // resends soon) and returns true (ClientOptions::refusal_recheck).
    bool refusal_to_recheck(PendingOrdered& pending);
    struct RecentResult {
        ReplyKey key;
        bool query = false;  // ExpectedRequest::query
    };
    void remember(const std::string& id, const RecentResult& result);
    // A key pair for one query: from the seed when ClientOptions::seed is set, else fresh.
    crypto::KeyPair ephemeral_key();
    // Polls until `done()` or `deadline`.
    template <typename Done>
    void wait_until(Done done, Clock::time_point deadline);

    // One read through ReadRequest (fast: all replicas, 2f+1; local: `target`, 1).
    Result<node::api::pb::Reply> unordered_read(const crypto::PublicKey& account,
                                           std::optional<uint32_t> target,
                                           Clock::time_point deadline, std::string* digest);
    Result<BalanceResult> ordered_balance(const crypto::PublicKey& account,
                                          Clock::time_point deadline);

    ClientOptions options_;
    node::api::NetworkConfig config_;
    // How many matching replies make an answer, for the network's protocol (bft/quorum.h).
    bft::ClientQuorum accept_;
    std::unique_ptr<ClientLink> link_;  // null until connect()
    // A protocol with a leader (accept_.follows_leader()): the leader this client believes in,
    // from redirects and accepted replies, and the newest term it has seen (both verified).
    std::optional<uint32_t> leader_hint_;
    uint64_t known_term_ = 0;
    // The highest seq of an ordered result this client accepted: a Raft fast read older than
    // it falls back to an ordered read (read-your-writes).
    uint64_t session_seq_ = 0;

    std::unordered_map<std::string, PendingOrdered> ordered_;  // by tx id bytes
    std::unordered_map<std::string, PendingRead> reads_;       // by query tx id bytes
    std::optional<PendingStatus> status_;
    Clock::time_point next_timer_ = Clock::time_point::max();
    uint64_t made_ = 0;  // requests and reads made, ever

    // Accepted results of recent requests, so a reply that comes after the quorum is still
    // compared with it (a lying replica is counted even when it is slow).
    std::unordered_map<std::string, RecentResult> recent_;
    std::deque<std::string> recent_order_;

    // Batch roots whose signatures this Client already checked, per replica (bounded). A
    // pipelined Client carries many requests of one batch and gets each replica's replies to
    // all of them under one root: it verifies that root once, then only the replies' paths to
    // it — what a gateway serving many users through one Client would do.
    VerifiedRoots verified_roots_;

    ReplyCounters counters_;  // of finished quorums and of frames no quorum saw
    uint64_t completions_ = 0;  // asynchronous completions run, ever
    uint64_t retransmits_ = 0;
    uint64_t dropped_sends_ = 0;
    std::mt19937_64 random_;
};

}  // namespace tally::client
