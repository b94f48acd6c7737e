// ReplyQuorum: decides when a client may accept a result from replicas' signed replies.
//
// A PBFT client accepts an ordered result when f+1 distinct replicas sent matching signed
// Replies (fields tx_id, client, nonce, result, seq, value, account_nonce; view and replica
// may differ), and a fast read when 2f+1 sent matching ReadReplies: the same result, value and
// account_nonce at the same seq with the same state digest. Matching on the seq is what makes
// a fast read true: 2f+1 replicas that answered at one seq include f+1 honest ones, so the
// answer is the ledger's state at that seq, and the seq and digest reported are what 2f+1
// signed, not one reply's word. Replies that agree on a value at different seqs (replicas at
// different points of the log, f liars among them) prove nothing and do not count together. This class is that rule as a pure function of the envelopes it is given:
// no sockets, no clocks, so unit tests can feed it any mix of honest and lying replies.
//
// What it trusts: nothing in an envelope. The caller only says which replica's socket a frame
// arrived on and that replica's public key (from network.json). Signatures are checked lazily
// — a reply is verified only once its group is at most one reply short of a quorum — because
// verification is the client's main cost and most replies beyond the quorum are never needed.
// One short, not complete: the group's first f replies are checked while the client waits
// for the last (a one-client PBFT transfer: the first reply's check is off the critical path,
// only the second's is on it), which costs nothing in an honest run (those replies would be
// checked when the group completed) and at most one check per group that never completes. A
// reply whose signature fails is dropped from its group and counted; the group must then
// fill again.
//
// An ordered reply comes either signed alone (kReply: answers from a replica's reply cache) or
// as one reply of an executed batch (kBatchReply, crypto/reply_batch.h): then it is valid only
// if its audit path leads to a root whose signature is the replica's. Verified roots may be
// remembered in a VerifiedRoots shared by many quorums, so that each replica's root of a batch
// is checked once however many of the batch's requests the caller carries.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "client/verified_roots.h"
#include "crypto/envelope.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/result.h"
#include "node/api/client.pb.h"

namespace tally::client {

// Rejections and other outcomes of replies, by reason. Shared by ReplyQuorum and Client.
struct ReplyCounters {
    uint64_t accepted = 0;       // replies that were part of an accepted quorum
    uint64_t bad_signature = 0;  // did not verify as the replica's signature
    uint64_t malformed = 0;      // did not open or decode, wrong type or sender, bad field sizes
    uint64_t mismatch = 0;       // disagreed with the request, or with the accepted result
    uint64_t duplicate = 0;      // the same replica repeating itself (counted once only)
    uint64_t stale = 0;          // for a request this client no longer remembers
    uint64_t superseded = 0;     // a later execution of a request whose result was not final,
                                 // or a lagging replica's refusal of one that was ordered
    uint64_t disagreed = 0;      // fast-read answers unlike the accepted one: replicas at other
                                 // points of the log answer differently, honestly
    uint64_t redirected = 0;     // redirects to the leader followed (Raft)

    // Replies refused as wrong: bad signature, malformed, mismatching.
    uint64_t rejected() const { return bad_signature + malformed + mismatch; }
    ReplyCounters& operator+=(const ReplyCounters& other);
};

// Which rule a quorum follows.
enum class QuorumKind {
    kOrdered,  // kReply or kBatchReply envelopes; match every field but view and replica
    kRead,     // kReadReply envelopes; match result, value, account_nonce, seq and state digest
};

// The fields replies must agree on to count together.
struct ReplyKey {
    std::string tx_id;
    std::string client;
    uint64_t nonce = 0;
    uint32_t result = 0;
    uint64_t seq = 0;  // kRead too: a fast read counts only replies given at one seq
    uint64_t value = 0;
    uint64_t account_nonce = 0;
    std::string state_digest;  // kRead: the ReadReply's digest after seq; kOrdered: empty
    auto operator<=>(const ReplyKey&) const = default;
};

// What a request was: replies must echo it.
struct ExpectedRequest {
    crypto::Hash tx_id{};
    crypto::PublicKey client{};
    uint64_t nonce = 0;
    bool query = false;  // a balance or tx query: read-only, never recorded (supersedes())
};

// The outcome of one add().
enum class Vote {
    kPending,    // counted; no quorum yet
    kAccepted,   // this reply completed the quorum: accepted() now holds the result
    kDuplicate,  // this replica already said exactly this
    kRejected,   // malformed, mismatching, over the per-replica limit, or a bad signature
    kLate,       // the quorum was already reached; compared against it and counted
                 // (a disagreeing late reply counts as a mismatch unless it supersedes())
};

// The Reply an opened ordered-reply envelope carries: a kReply's body, or a kBatchReply's
// leaf. Checks no signature. Error "malformed" (another type, or bytes that do not decode).
Result<node::api::pb::Reply> decode_ordered_reply(const crypto::Envelope& envelope);

// The reply key of a decoded Reply under a rule (`state_digest`: a ReadReply's, for kRead).
ReplyKey reply_key(const node::api::pb::Reply& reply, QuorumKind kind, std::string_view state_digest = {});

// True when `later` may honestly follow the accepted `earlier` for the same request: the ledger
// does not record a transfer that failed as kNonceTooHigh or kUnknownSender (it came early and
// may apply later, ledger/tx.h), so a copy of it ordered again executes again, at a higher
// sequence number, and its replicas reply again. Also when `later` is a replica's refusal to
// admit the request (seq 0, never ordered: node/admission.h) and `earlier` an ordered result:
// a replica behind the others refuses a sender it does not know yet, honestly.
// For a `query` (read-only, never recorded in the ledger), any answer at another seq: a query
// ordered again (a retransmission) executes again, and a replica that does not remember its
// first answer — restarted, or caught up by state transfer past it — answers from the state
// at the new seq, honestly (the others repeat their first answer: node/replica.h,
// first_answer).
bool supersedes(const ReplyKey& later, const ReplyKey& earlier, bool query = false);

class ReplyQuorum {
public:
    // `quorum`: replies needed, as the protocol says (bft::ClientQuorum: PBFT f+1 ordered, 2f+1
    // read). `n`: replicas in the network.
    // `roots`, when given, must outlive the quorum; it is consulted before, and filled after,
    // checking a batch root's signature.
    ReplyQuorum(QuorumKind kind, uint32_t quorum, uint32_t n, const ExpectedRequest& expected,
                VerifiedRoots* roots = nullptr);

    // Adds a frame that arrived from `replica`, whose key is `replica_key`.
    // Precondition: replica < n.
    Vote add(uint32_t replica, const crypto::PublicKey& replica_key, std::string_view frame);

    bool done() const { return accepted_.has_value(); }
    // The accepted reply (for kRead, the ReadReply's reply), once done().
    const std::optional<node::api::pb::Reply>& accepted() const { return accepted_; }
    // For kRead: the accepted replies' state digest from the first verified member.
    const std::string& accepted_state_digest() const { return accepted_digest_; }
    // For kRead: true when no group can reach the quorum any more even if every replica that
    // has not answered yet does (the caller should stop waiting and fall back).
    bool impossible() const;

    const ReplyCounters& counters() const { return counters_; }
    // Replicas that sent at least one reply that was not rejected.
    uint32_t replicas_heard() const;

private:
    struct Member {
        uint32_t replica = 0;
        crypto::PublicKey key{};
        std::string frame;
        bool verified = false;
        node::api::pb::Reply reply;
        std::string state_digest;
    };

    // Verifies the unverified members of `group`, dropping and counting those that fail.
    void verify_group(std::vector<Member>& group);
    // True when a member's frame is its replica's: its signature, or for a batched reply its
    // path to a root whose signature is the replica's (or that `roots_` holds).
    bool verify_member(const Member& member);

    QuorumKind kind_;
    uint32_t quorum_;
    uint32_t n_;
    ExpectedRequest expected_;
    VerifiedRoots* roots_;
    // Invariant: a replica appears at most once in a group, in at most kGroupsPerReplicaMax groups.
    std::map<ReplyKey, std::vector<Member>> groups_;
    std::vector<uint32_t> groups_per_replica_;
    std::optional<ReplyKey> accepted_key_;
    std::optional<node::api::pb::Reply> accepted_;
    std::string accepted_digest_;
    ReplyCounters counters_;
};

}  // namespace tally::client
