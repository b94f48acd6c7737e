// Traces: the recent life of transactions at one replica, for `tally explain` (issue 16): when
// the replica received each one from a client (or refused it, and why), the protocol's steps
// for the sequence number it was ordered at (bft::Step: PBFT's pre-prepare, prepared and
// committed with the replicas whose votes counted; Raft's appended and committed), stamped
// with this replica's wall clock when it saw them, when it executed there and with what
// result, and the view changes (or elections) in between.
//
// Also the live view's timeline (`tally net web`): the most recent sequence numbers' steps, when
// each executed here and how many requests its batch carried, and the recent view changes.
//
// Bounded, oldest forgotten first: the last txs_max transactions, the steps of the last
// seqs_max sequence numbers (at most steps_per_seq_max each: a view-change storm re-proposing
// one seq cannot grow it), the last view_changes_max view-change steps. A transaction whose
// trace is gone is simply unknown here; `tally explain` then says so and still gives its block
// and result from the ledger.
//
// Pure: the caller passes the time (ms since the Unix epoch). Thread-compatible: the consensus
// thread owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bft/engine.h"
#include "crypto/hash.h"

namespace tally::node {

struct TimedStep {
    int64_t at_ms = 0;
    bft::Step step;
    uint64_t order = 0;    // the order the engine gave it, among all steps (ties in at_ms)
    int64_t mono_us = 0;   // a monotonic clock's, for durations (wall clocks jump)
};

// How long a seq took to reach a step at this replica, from its step before in the same view.
struct PhaseTime {
    std::string phase;  // the step reached ("prepared", "committed", ...)
    double seconds = 0;
};

struct TxTrace {
    std::optional<int64_t> received_ms;  // first came from a client, directly
    std::string refused;                 // admission's reason, when it refused it
    uint64_t seq = 0;                    // where it executed here; 0: not (yet)
    int64_t executed_ms = 0;
    uint32_t result = 0;                 // ledger::ResultCode, once executed
};

struct Explanation {
    TxTrace tx;
    // Its sequence number's steps, then the view changes from when it was first seen here to
    // when it executed (or now), in time order.
    std::vector<TimedStep> steps;
    bool steps_dropped = false;  // executed, but its seq's steps are no longer kept
};

// One sequence number's life here: its steps in the order seen, and its execution.
struct SeqTrace {
    uint64_t seq = 0;
    std::vector<TimedStep> steps;
    int64_t executed_ms = 0;  // 0: not executed here (yet)
    int64_t executed_mono_us = 0;
    uint32_t requests = 0;  // in its batch, once executed
};

// A status reply carries at most this many recent seqs (StatusRequest.recent_seqs), whatever
// the client asks: a client cannot make a replica build a big reply.
inline constexpr size_t kRecentSeqsMax = 64;
// ... and the last this many view-change (or election) steps with them.
inline constexpr size_t kRecentViewChangesMax = 16;

struct TracesLimits {
    size_t txs_max = 65536;
    size_t seqs_max = 8192;
    size_t steps_per_seq_max = 32;
    size_t view_changes_max = 256;
};

class Traces {
public:
    explicit Traces(TracesLimits limits = {});

    // A client sent `tx` (the first time counts).
    void received(const crypto::Hash& tx, int64_t at_ms);
    // Admission refused `tx` (node/admission.h's reason).
    void refused(const crypto::Hash& tx, std::string_view reason, int64_t at_ms);
    // The engine's steps of one output, seen at wall time `at_ms` and monotonic `mono_us`; they
    // are moved out of `steps`. With `phases`, how long each seq took to reach each of them.
    void record(std::vector<bft::Step>& steps, int64_t at_ms, int64_t mono_us = 0,
                std::vector<PhaseTime>* phases = nullptr);
    // Seconds from `seq`'s last step to `mono_us` (its execution, say); none when none is kept.
    std::optional<double> since_last_step(uint64_t seq, int64_t mono_us) const;
    // `tx` executed at `seq` with `result`.
    void executed(const crypto::Hash& tx, uint64_t seq, uint32_t result, int64_t at_ms);
    // The batch at `seq`, of `requests` requests, executed here (also one this replica got by
    // state transfer, which has no steps of its own here).
    void executed_batch(uint64_t seq, uint32_t requests, int64_t at_ms, int64_t mono_us = 0);

    // The `count` highest sequence numbers kept (fewer when fewer are), ascending.
    std::vector<SeqTrace> recent(size_t count) const;
    // The last `count` view-change (or election) steps, oldest first.
    std::vector<TimedStep> recent_view_changes(size_t count) const;

    // What this replica knows of `tx`; nothing when it never saw it or forgot it.
    std::optional<Explanation> explain(const crypto::Hash& tx) const;

    size_t transactions() const { return txs_.size(); }
    size_t sequence_numbers() const { return seqs_.size(); }

private:
    TxTrace& entry(const crypto::Hash& tx);
    // `seq`'s entry, made when missing unless it is older than every kept one while the ring is
    // full (forgotten history is not brought back); evicts the oldest past seqs_max.
    SeqTrace* seq_entry(uint64_t seq);

    TracesLimits limits_;
    std::unordered_map<crypto::Hash, TxTrace, crypto::KeyedBytesHash> txs_;
    std::deque<crypto::Hash> tx_order_;  // oldest first, each once
    std::map<uint64_t, SeqTrace> seqs_;
    std::deque<TimedStep> view_changes_;
    uint64_t next_order_ = 0;
};

}  // namespace tally::node
