// Raft (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm", and
// Ongaro's thesis), as an Engine, with what production Raft adds (etcd's raft): pre-vote,
// check-quorum, batching, pipelined AppendEntries with a window per follower, and fast log
// back-tracking. Crash-fault model: replicas are trusted; the signed envelope only names
// the sender. The rules are named where they are implemented (engine.cc).
//
// Pure and deterministic like bft/pbft: no sockets, threads, clocks or randomness of its own.
// The randomised election timeout is drawn from a PRNG seeded by Config::seed, the replica's
// id and the term, so one seed replays exactly.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bft/engine.h"
#include "crypto/keys.h"

namespace tally::bft::raft {

struct Config {
    ReplicaId id = 0;
    std::vector<crypto::PublicKey> replicas;  // index = replica id; any n >= 1, majority n/2+1
    uint64_t seed = 0;  // election timeouts and Config::recovering's nonce (the caller's; new at each start)
    uint32_t batch_size_max = 256;            // requests in one log entry
    uint32_t batch_bytes_max = 256u << 10;    // bytes of requests in one log entry
    // Entries the leader has appended but not committed, at most: requests queue meanwhile
    // and go out in the next, fuller batch (the same role as PBFT's pipeline_depth). With one
    // in flight, another goes only when a full batch waits (worth_waiting, bft/raft/engine.cc).
    uint32_t pipeline_depth = 4;
    // AppendEntries in flight to one follower before it acknowledges (flow-control window).
    uint32_t max_inflight = 8;
    uint32_t max_entries_per_append = 16;
    uint64_t max_append_bytes = 4u << 20;  // an append carries no more (at least one entry)
    // A follower starts an election after [T, 2T) ticks without a leader (randomised).
    uint64_t election_timeout_ticks = 20;
    uint64_t heartbeat_ticks = 2;
    bool pre_vote = true;      // thesis 9.6: ask before disrupting a term
    bool check_quorum = true;  // a leader that hears no majority for T ticks steps down
    // Lease reads (thesis 6.4.1, etcd's ReadOnlyLeaseBased): a leader that a majority answered
    // within the last election timeout (less a drift margin) answers read_index from its commit
    // index at once, with no heartbeat round. Off by default: unlike ReadIndex it assumes
    // bounded clock drift and no unnoticed pauses (the argument is at Raft::lease_valid in
    // engine.cc). Every replica must run with the same setting: a follower's part is to refuse
    // votes for an election timeout after it last heard from a leader (and after it starts).
    bool lease_reads = false;
    // This replica lost its durable term, vote and log (`tallyd --recover`). It may have voted
    // in a term before the loss, for a candidate it no longer knows, and acknowledged entries
    // it no longer holds: until it knows both bounds again it neither votes nor campaigns
    // (it still stores and acknowledges what a leader sends). Recovery ends once (1) every
    // peer told it its current term (a candidate makes its term durable before it asks for a
    // vote, so the highest of them, M, is at least any term it voted in, and any term that
    // existed at the loss), and (2) its log holds the commit index C that a leader of a term
    // T >= M sent it in an append made after this start, with an entry of term T at C. Then its
    // log holds everything committed before the loss: the leader of T held it all when elected
    // (below its first entry of T, so below C) or committed it since (below C, sent after the
    // loss, by a leader that has not restarted since, so whose commit index only grew), and Log
    // Matching carries its log into ours. "Made after this start": the replica's answers carry
    // a nonce drawn from this start's seed (Config::seed: the caller's, new at each start; not
    // a count kept in the store, which is what gets lost), which the leader echoes in its
    // appends; an append still in flight from before echoes another or none. (An entry of term >= M
    // somewhere in our log is not enough: one of term M can sit below one committed before the
    // loss; nor is an old append's commit index.) It then counts
    // as having voted for that leader in the current term and votes only in later terms. The
    // peers' terms are asked with a pre-vote of term 0 carrying the same nonce, which every
    // replica refuses, answering with its term and the nonce; only such an answer counts (an
    // answer to a pre-vote sent before the loss carries a term of that time, or, granted, the
    // term the pre-vote proposed).
    bool recovering = false;
    // Requests the leader queues, at most (count and bytes): beyond, it drops them (the
    // client retries). Bounds what clients can make the leader hold.
    uint32_t max_queued_requests = 8192;
    uint64_t max_queued_bytes = 64u << 20;
    // Entries (and their bytes) a follower holds beyond its commit index, at most: bounds
    // what a (faulty) leader can make it store before anything commits.
    uint64_t max_uncommitted_entries = 4096;
    uint64_t max_uncommitted_bytes = 64u << 20;
    uint32_t max_pending_reads = 4096;  // ReadIndex reads waiting at the leader, at most
    // Log compaction: once the ledger has executed snapshot_interval entries beyond the last
    // snapshot (plus snapshot_trailing kept for followers slightly behind), the log up to
    // executed - snapshot_trailing is erased; the ledger is the snapshot (made durable first,
    // Output::ledger_sync_through). 0: never compact.
    uint64_t snapshot_interval = 8192;
    uint64_t snapshot_trailing = 1024;
    // A snapshot's index is a multiple of this: the ledger states a peer can fetch (the node
    // keeps and serves them at multiples of its checkpoint_interval). The log is compacted
    // through the oldest such index still remembered, and a follower behind the compacted log
    // is offered the newest one executed (any committed state past what it lacks will do).
    uint64_t snapshot_every = 1;
};

// The answer to a ReadIndex read: bft::ReadResult (engine.h).
using ReadResult = bft::ReadResult;

// Raft's engine, with what engine.h has no place for yet: leader transfer. Its ReadIndex reads
// are engine.h's read_index: the leader notes its commit index (once an entry of its term has
// committed), confirms it still leads by a heartbeat round a majority answers, and waits until
// the ledger executed through that index; the result comes out of take_reads().
class RaftEngine : public Engine {
public:
    Output read_index(uint64_t read_id) override = 0;
    std::vector<ReadResult> take_reads() override = 0;

    // Leader transfer (thesis 3.10), for a clean shutdown of the leader: stop taking requests,
    // bring `target` up to date, then tell it to campaign at once (TimeoutNow); it wins a term
    // later without waiting for an election timeout. Abandoned after an election timeout.
    virtual Output transfer_leadership(ReplicaId target) = 0;

    // `body` sealed for peer `to` as this replica seals what it sends a peer (a MAC under the
    // key the two share; engine.cc, seal_to): for a wrapper that rewrites what it sends
    // (bft/raft/traitor.h), so that a lie costs no more to make or check than the truth.
    virtual std::string seal_for(ReplicaId to, crypto::MessageType type, const std::string& body) const = 0;
};

// `key` signs this replica's messages (config.replicas[config.id]). The authenticator is
// unused: the caller authenticated client requests, and followers apply what the leader's
// log says (crash-fault model). It is taken so both engines are made the same way.
std::unique_ptr<Engine> make_engine(const Config& config, const crypto::KeyPair& key,
                                    RequestAuthenticator& authenticator);
std::unique_ptr<RaftEngine> make_raft_engine(const Config& config, const crypto::KeyPair& key);

// The durable records, for tests and tools: the term/vote and the log the engine persisted.
struct LogEntry {
    uint64_t index = 0;
    uint64_t term = 0;
    std::vector<std::string> requests;
};
struct DurableState {
    uint64_t term = 0;
    std::optional<ReplicaId> voted_for;
    uint64_t snapshot_index = 0;  // the log is compacted through here
    uint64_t snapshot_term = 0;
    crypto::Hash snapshot_digest{};
    std::vector<LogEntry> log;  // indexes snapshot_index + 1, + 2, ... in order
};
// False on a record that does not decode.
bool read_durable(const std::vector<std::pair<std::string, std::string>>& records, DurableState& out);

}  // namespace tally::bft::raft
