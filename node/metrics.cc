// Metrics: a replica's numbers for Prometheus (metrics.h).
#include "node/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <exception>

namespace tally::node {

namespace {

// Seconds, from 100 us to a second: a phase, a batch's apply, an fsync.
prometheus::Histogram::BucketBoundaries latency_buckets() {
    return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};
}

}  // namespace

Result<std::unique_ptr<Metrics>> Metrics::open(const std::string& host, uint16_t port, uint32_t replica,
                                               const std::string& protocol) {
    std::unique_ptr<Metrics> m(new Metrics());
    const std::string address = host + ":" + std::to_string(port);
    try {
        // One serving thread: scrapes wait for each other, never for the replica.
        m->exposer_ = std::make_unique<prometheus::Exposer>(address, 1);
    } catch (const std::exception& e) {
        return make_error("bind", "metrics: cannot serve http://" + address + "/metrics: " + e.what());
    }
    m->registry_ = std::make_shared<prometheus::Registry>();
    const prometheus::Labels labels = {{"replica", std::to_string(replica)}, {"protocol", protocol}};
    auto& registry = *m->registry_;
    auto counter = [&](const std::string& name, const std::string& help) -> prometheus::Counter& {
        return prometheus::BuildCounter().Name(name).Help(help).Labels(labels).Register(registry).Add({});
    };
    auto gauge = [&](const std::string& name, const std::string& help) -> prometheus::Gauge& {
        return prometheus::BuildGauge().Name(name).Help(help).Labels(labels).Register(registry).Add({});
    };
    m->transactions_ = &counter("tally_committed_transactions_total",
                                "Transactions in the batches this replica executed");
    m->batches_ = &counter("tally_committed_batches_total", "Batches (blocks) this replica executed");
    m->batch_size_ = &prometheus::BuildHistogram()
                          .Name("tally_batch_transactions")
                          .Help("Transactions per executed batch")
                          .Labels(labels)
                          .Register(registry)
                          .Add({}, prometheus::Histogram::BucketBoundaries{0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512});
    m->apply_seconds_ = &prometheus::BuildHistogram()
                             .Name("tally_block_apply_seconds")
                             .Help("Time to apply one executed batch to the ledger")
                             .Labels(labels)
                             .Register(registry)
                             .Add({}, latency_buckets());
    m->phase_seconds_ = &prometheus::BuildHistogram()
                             .Name("tally_phase_seconds")
                             .Help("Time a sequence number took to reach each step at this replica, from its "
                                   "step before (prepared: from the pre-prepare; committed: from prepared or "
                                   "appended; executed: from committed)")
                             .Labels(labels)
                             .Register(registry);
    m->fsync_seconds_ = &prometheus::BuildHistogram()
                             .Name("tally_fsync_seconds")
                             .Help("A synced write of the consensus store, or a sync of the ledger")
                             .Labels(labels)
                             .Register(registry);
    m->view_ = &gauge("tally_view", "The PBFT view or Raft term this replica is in");
    m->view_changes_ = &counter("tally_view_changes_total", "Times this replica's view or term rose");
    m->view_changing_ = &gauge("tally_view_changing", "1 while this replica is between views (PBFT)");
    m->executed_ = &gauge("tally_executed_seq", "The last sequence number this replica's ledger executed");
    m->stable_ = &gauge("tally_stable_checkpoint_seq", "The last stable checkpoint (PBFT)");
    m->catching_up_to_ = &gauge("tally_catching_up_to_seq",
                                "The seq of the stable checkpoint (PBFT) or snapshot (Raft) whose state this replica fetches (0: none)");
    m->low_water_mark_ = &gauge("tally_low_water_mark_seq", "The low water mark (PBFT)");
    m->commit_index_ = &gauge("tally_commit_index", "The highest sequence number it knows committed (Raft)");
    m->last_log_index_ = &gauge("tally_last_log_index", "The last sequence number its log holds (Raft)");
    m->role_ = &prometheus::BuildGauge()
                    .Name("tally_role")
                    .Help("1 for the role this replica has now, 0 for the others it had")
                    .Labels(labels)
                    .Register(registry);
    m->rejected_ = &prometheus::BuildCounter()
                        .Name("tally_rejected_messages_total")
                        .Help("Input this replica refused, by reason")
                        .Labels(labels)
                        .Register(registry);
    m->detected_ = &prometheus::BuildCounter()
                        .Name("tally_misbehaviour_detected_total")
                        .Help("Misbehaviour this replica detected in its peers, by kind")
                        .Labels(labels)
                        .Register(registry);
    auto family = [&](const std::string& name, const std::string& help) {
        return &prometheus::BuildCounter().Name(name).Help(help).Labels(labels).Register(registry);
    };
    m->messages_received_ = family("tally_messages_received_total",
                                   "Messages from peer replicas that passed the envelope check, by type and peer");
    m->bytes_received_ = family("tally_received_bytes_total", "Bytes of those messages, by type and peer");
    m->messages_sent_ = family("tally_messages_sent_total", "Messages sent to peer replicas, by type and peer");
    m->bytes_sent_ = family("tally_sent_bytes_total", "Bytes of those messages, by type and peer");
    m->state_transfers_ = &counter("tally_state_transfers_total", "Ledger snapshots this replica installed");
    m->exposer_->RegisterCollectable(m->registry_);
    return m;
}

Metrics::~Metrics() = default;

void Metrics::on_executed(size_t transactions, double apply_seconds) {
    transactions_->Increment(static_cast<double>(transactions));
    batches_->Increment();
    batch_size_->Observe(static_cast<double>(transactions));
    apply_seconds_->Observe(apply_seconds);
}

void Metrics::on_phase(const std::string& phase, double seconds) {
    auto [it, fresh] = phases_.try_emplace(phase, nullptr);
    if (fresh) it->second = &phase_seconds_->Add({{"phase", phase}}, latency_buckets());
    it->second->Observe(seconds);
}

void Metrics::on_fsync(const std::string& what, double seconds) {
    auto [it, fresh] = fsyncs_.try_emplace(what, nullptr);
    if (fresh) it->second = &fsync_seconds_->Add({{"what", what}}, latency_buckets());
    it->second->Observe(seconds);
}

void Metrics::catch_up(prometheus::Counter& counter, uint64_t total) {
    const double now = counter.Value();
    if (static_cast<double>(total) > now) counter.Increment(static_cast<double>(total) - now);
}

void Metrics::refresh(const api::pb::StatusReply& status, const Traffic& traffic, uint64_t state_transfers) {
    auto copy = [](const auto& direction, prometheus::Family<prometheus::Counter>& messages,
                   prometheus::Family<prometheus::Counter>& bytes) {
        for (const auto& [key, count] : direction) {
            const prometheus::Labels labels = {{"type", std::string(crypto::type_name(key.first))},
                                               {"peer", std::to_string(key.second)}};
            catch_up(messages.Add(labels), count.messages);
            catch_up(bytes.Add(labels), count.bytes);
        }
    };
    copy(traffic.received, *messages_received_, *bytes_received_);
    copy(traffic.sent, *messages_sent_, *bytes_sent_);
    catch_up(*state_transfers_, state_transfers);
    if (view_known_ && status.view() > last_view_) view_changes_->Increment(static_cast<double>(status.view() - last_view_));
    view_known_ = true;
    last_view_ = status.view();
    view_->Set(static_cast<double>(status.view()));
    view_changing_->Set(status.view_changing() ? 1 : 0);
    executed_->Set(static_cast<double>(status.executed()));
    stable_->Set(static_cast<double>(status.stable_checkpoint()));
    catching_up_to_->Set(static_cast<double>(status.catching_up_to()));
    low_water_mark_->Set(static_cast<double>(status.low_water_mark()));
    commit_index_->Set(static_cast<double>(status.commit_index()));
    last_log_index_->Set(static_cast<double>(status.last_log_index()));
    if (!roles_.count(status.role())) roles_[status.role()] = &role_->Add({{"role", status.role()}});
    for (auto& [role, gauge] : roles_) gauge->Set(role == status.role() ? 1 : 0);
    for (const auto& r : status.rejected()) catch_up(rejected_->Add({{"reason", r.kind()}}), r.count());
    for (const auto& d : status.detected()) catch_up(detected_->Add({{"kind", d.kind()}}), d.count());
}

}  // namespace tally::node
