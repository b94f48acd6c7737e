// Metrics: a replica's numbers in Prometheus's text format over HTTP, at
// http://host:metrics_port/metrics (network.json's "metrics_port"), served by prometheus-cpp's
// exposer (Debian prometheus-cpp-dev) rather than hand-written exposition.
//
// What it shows, under PBFT and Raft alike:
//   tally_committed_transactions_total, tally_committed_batches_total   what this replica executed
//   tally_batch_transactions                  histogram: transactions per executed batch
//   tally_block_apply_seconds                 histogram: applying one batch to the ledger (SQLite)
//   tally_phase_seconds{phase}                histogram: one seq's steps at this replica (bft::Step),
//                                             each from the step before it in the same view:
//                                             PBFT "prepared" (from its pre-prepare), "committed"
//                                             (from prepared), Raft "committed" (from appended);
//                                             and "executed" (from committed, to the ledger)
//   tally_fsync_seconds{what}                 histogram: a synced write of the "consensus_store"
//                                             or a sync of the "ledger"
//   tally_view                                the PBFT view or Raft term
//   tally_view_changes_total                  how many times that number rose here
//   tally_view_changing                       1 while between views (PBFT), else 0
//   tally_role{role}                          1 for the role it has now ("primary", "backup",
//                                             "leader", "follower", "candidate"), 0 for the others seen
//   tally_executed_seq, tally_stable_checkpoint_seq, tally_low_water_mark_seq,
//   tally_commit_index, tally_last_log_index  the sequence numbers `tally net status` shows
//   tally_catching_up_to_seq                  the seq of the checkpoint (PBFT) or snapshot (Raft)
//                                             whose state it fetches; 0: none
//   tally_rejected_messages_total{reason}     input refused, by reason (node/rejections.h)
//   tally_misbehaviour_detected_total{kind}   what this replica detected its peers doing
//   tally_messages_received_total{type,peer}, tally_received_bytes_total{type,peer}
//   tally_messages_sent_total{type,peer}, tally_sent_bytes_total{type,peer}
//                                             replica-to-replica traffic that passed the
//                                             envelope check, and what it sent, by peer
//   tally_state_transfers_total               ledger snapshots this replica installed
// Every series carries the label replica="ID" and protocol="pbft"|"raft".
//
// The numbers come from the status reply `tally net status` reads (Replica::status_reply), so
// the two always agree; the consensus thread copies them here at most every refresh interval.
// A scrape never touches the consensus thread: prometheus-cpp's values are atomics, read by the
// exposer's own thread (one, so one slow HTTP client waits only for itself; civetweb bounds what
// it reads of a request).
// Threads: update from one thread (the consensus thread); scraping is the exposer's.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "crypto/envelope.h"
#include "crypto/result.h"
#include "node/api/client.pb.h"

namespace prometheus {
class Exposer;
class Registry;
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace tally::node {

// Messages and bytes to or from peers, by (message type, peer): kept by the consensus thread
// (a map update per message), copied into the metrics at each refresh.
struct Traffic {
    struct Count {
        uint64_t messages = 0;
        uint64_t bytes = 0;
    };
    std::map<std::pair<crypto::MessageType, uint32_t>, Count> received, sent;
    void count(std::map<std::pair<crypto::MessageType, uint32_t>, Count>& direction, crypto::MessageType type,
               uint32_t peer, size_t bytes) {
        Count& c = direction[{type, peer}];
        ++c.messages;
        c.bytes += bytes;
    }
};

class Metrics {
public:
    // Binds host:port. Error "bind" when it cannot (the port is taken, say).
    static Result<std::unique_ptr<Metrics>> open(const std::string& host, uint16_t port, uint32_t replica,
                                                 const std::string& protocol);
    ~Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    // One executed batch of `transactions`, applied in `apply_seconds`.
    void on_executed(size_t transactions, double apply_seconds);
    // A seq reached `phase` (a bft::Step's name, or "executed") `seconds` after its step before.
    void on_phase(const std::string& phase, double seconds);
    // A synced write of `what` ("consensus_store", "ledger") took `seconds`.
    void on_fsync(const std::string& what, double seconds);
    // What `tally net status` would show now.
    // What `tally net status` would show now, the traffic so far and the state transfers.
    void refresh(const api::pb::StatusReply& status, const Traffic& traffic, uint64_t state_transfers);

private:
    Metrics() = default;
    // Raises `counter` to `total` (a count kept elsewhere, which only grows).
    static void catch_up(prometheus::Counter& counter, uint64_t total);

    std::shared_ptr<prometheus::Registry> registry_;
    std::unique_ptr<prometheus::Exposer> exposer_;
    prometheus::Counter* transactions_ = nullptr;
    prometheus::Counter* batches_ = nullptr;
    prometheus::Histogram* batch_size_ = nullptr;
    prometheus::Histogram* apply_seconds_ = nullptr;
    prometheus::Gauge* view_ = nullptr;
    prometheus::Counter* view_changes_ = nullptr;
    prometheus::Gauge* view_changing_ = nullptr;
    prometheus::Gauge* executed_ = nullptr;
    prometheus::Gauge* stable_ = nullptr;
    prometheus::Gauge* catching_up_to_ = nullptr;
    prometheus::Gauge* low_water_mark_ = nullptr;
    prometheus::Gauge* commit_index_ = nullptr;
    prometheus::Gauge* last_log_index_ = nullptr;
    prometheus::Family<prometheus::Gauge>* role_ = nullptr;
    prometheus::Family<prometheus::Counter>* rejected_ = nullptr;
    prometheus::Family<prometheus::Counter>* detected_ = nullptr;
    prometheus::Family<prometheus::Counter>* messages_received_ = nullptr;
    prometheus::Family<prometheus::Counter>* bytes_received_ = nullptr;
    prometheus::Family<prometheus::Counter>* messages_sent_ = nullptr;
    prometheus::Family<prometheus::Counter>* bytes_sent_ = nullptr;
    prometheus::Counter* state_transfers_ = nullptr;
    prometheus::Family<prometheus::Histogram>* phase_seconds_ = nullptr;
    prometheus::Family<prometheus::Histogram>* fsync_seconds_ = nullptr;
    std::map<std::string, prometheus::Histogram*> phases_;
    std::map<std::string, prometheus::Histogram*> fsyncs_;
    std::map<std::string, prometheus::Gauge*> roles_;
    bool view_known_ = false;
    uint64_t last_view_ = 0;
};

}  // namespace tally::node
