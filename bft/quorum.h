// How many replicas, how many may fail, how many must answer: the counts of each protocol, in
// one place. Every count elsewhere asks here — the engines (a prepared certificate, a view
// change), network.json (does n fit f), `tally net up` (which n it accepts), and the client
// (how many matching replies it needs before it believes one).
//
// In a library of its own (tally_bft_shared, no engine, no I/O): the client links it without linking
// any consensus code.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace tally::bft {

// The protocol a network runs, as network.json's "protocol" names it.
enum class Protocol : uint8_t { kPbft, kRaft };
std::string_view protocol_name(Protocol protocol);  // "pbft", "raft"
std::optional<Protocol> protocol_from_name(std::string_view name);

// PBFT: n = 3f+1. Any two quorums of 2f+1 intersect in f+1 replicas, at least one honest.
struct ByzantineQuorum {
    uint32_t f = 1;
    uint32_t n() const { return 3 * f + 1; }
    uint32_t quorum() const { return 2 * f + 1; }      // prepared/committed/checkpoint/view change
    uint32_t prepares() const { return 2 * f; }        // matching prepares from backups
    uint32_t weak() const { return f + 1; }            // at least one honest: replies, join rule
    static uint32_t max_faults(uint32_t n) { return n == 0 ? 0 : (n - 1) / 3; }
};

// Raft: n = 2f+1; a majority is f+1.
struct CrashQuorum {
    uint32_t f = 1;
    uint32_t n() const { return 2 * f + 1; }
    uint32_t majority() const { return f + 1; }
    static uint32_t max_faults(uint32_t n) { return n == 0 ? 0 : (n - 1) / 2; }
};

// The client's acceptance rule: how many replicas must sign the same answer before a client
// believes it. A property of the protocol, not of the client.
struct ClientQuorum {
    // Matching replies to an ordered request (a transfer, a linearizable read). PBFT: f+1, so
    // at least one is honest. Raft (crash faults only): 1, the leader's.
    uint32_t ordered = 1;
    // Matching answers, at one seq with one state digest, to an unordered "fast" read. PBFT:
    // 2f+1, of which f+1 are honest. Raft: a majority, f+1.
    uint32_t fast_read = 1;
    // A fast read stops waiting for more answers once this many replicas answered: n - f, as
    // the other f may never answer.
    uint32_t read_heard_enough = 1;
    // Raft: one replica, the leader, orders requests; the others answer a request with a
    // redirect naming the leader, and the client follows at most this many redirects per
    // request (then only its retransmissions to every replica). PBFT: 0, every replica takes
    // requests and none redirects.
    uint32_t redirect_hops_max = 0;
    bool follows_leader() const { return redirect_hops_max > 0; }
};

// The counts of one network: its protocol and f.
class Quorums {
public:
    Quorums(Protocol protocol, uint32_t f) : protocol_(protocol), f_(f) {}

    // The most faults n replicas of `protocol` tolerate (PBFT (n-1)/3, Raft (n-1)/2).
    static uint32_t max_faults(Protocol protocol, uint32_t n);
    // "3f+1" or "2f+1": the size rule, for messages.
    static std::string_view size_rule(Protocol protocol);

    Protocol protocol() const { return protocol_; }
    uint32_t f() const { return f_; }
    // The replicas a network of this protocol and f has.
    uint32_t n() const;
    ClientQuorum client() const;

private:
    Protocol protocol_;
    uint32_t f_;
};

}  // namespace tally::bft
