// The recent life of transactions at one replica (traces.h).
#include "node/traces.h"

#include <algorithm>
#include <limits>

namespace tally::node {

Traces::Traces(TracesLimits limits) : limits_(limits) {
    limits_.txs_max = std::max<size_t>(limits_.txs_max, 1);
    limits_.seqs_max = std::max<size_t>(limits_.seqs_max, 1);
    limits_.steps_per_seq_max = std::max<size_t>(limits_.steps_per_seq_max, 1);
}

TxTrace& Traces::entry(const crypto::Hash& tx) {
    auto [it, fresh] = txs_.try_emplace(tx);
    if (fresh) {
        tx_order_.push_back(tx);
        if (tx_order_.size() > limits_.txs_max) {
            // Never `tx` itself (it is the newest), and erasing another leaves `it` valid.
            txs_.erase(tx_order_.front());
            tx_order_.pop_front();
        }
    }
    return it->second;
}

void Traces::received(const crypto::Hash& tx, int64_t at_ms) {
    TxTrace& t = entry(tx);
    if (!t.received_ms) t.received_ms = at_ms;
}

void Traces::refused(const crypto::Hash& tx, std::string_view reason, int64_t at_ms) {
    TxTrace& t = entry(tx);
    if (!t.received_ms) t.received_ms = at_ms;
    t.refused = std::string(reason);
}

SeqTrace* Traces::seq_entry(uint64_t seq) {
    if (auto it = seqs_.find(seq); it != seqs_.end()) return &it->second;
    // A seq far below what is kept is history already forgotten: not brought back.
    if (seqs_.size() >= limits_.seqs_max && seq < seqs_.begin()->first) return nullptr;
    SeqTrace& fresh = seqs_[seq];
    fresh.seq = seq;
    if (seqs_.size() > limits_.seqs_max) seqs_.erase(seqs_.begin());  // never `seq`: it is above
    return &fresh;
}

void Traces::record(std::vector<bft::Step>& steps, int64_t at_ms, int64_t mono_us,
                    std::vector<PhaseTime>* phases) {
    for (auto& step : steps) {
        if (step.seq == 0) {
            view_changes_.push_back(TimedStep{at_ms, std::move(step), next_order_++, mono_us});
            if (view_changes_.size() > limits_.view_changes_max) view_changes_.pop_front();
            continue;
        }
        SeqTrace* entry = seq_entry(step.seq);
        if (!entry) continue;
        auto& kept = entry->steps;
        if (phases && !kept.empty() && kept.back().step.view == step.view)
            phases->push_back(PhaseTime{step.phase, static_cast<double>(mono_us - kept.back().mono_us) / 1e6});
        if (kept.size() < limits_.steps_per_seq_max)
            kept.push_back(TimedStep{at_ms, std::move(step), next_order_++, mono_us});
    }
    steps.clear();
}

std::optional<double> Traces::since_last_step(uint64_t seq, int64_t mono_us) const {
    auto it = seqs_.find(seq);
    if (it == seqs_.end() || it->second.steps.empty()) return std::nullopt;
    return static_cast<double>(mono_us - it->second.steps.back().mono_us) / 1e6;
}

void Traces::executed(const crypto::Hash& tx, uint64_t seq, uint32_t result, int64_t at_ms) {
    TxTrace& t = entry(tx);
    t.seq = seq;
    t.executed_ms = at_ms;
    t.result = result;
}

void Traces::executed_batch(uint64_t seq, uint32_t requests, int64_t at_ms, int64_t mono_us) {
    SeqTrace* entry = seq_entry(seq);
    if (!entry) return;
    entry->executed_ms = at_ms;
    entry->executed_mono_us = mono_us;
    entry->requests = requests;
}

std::vector<SeqTrace> Traces::recent(size_t count) const {
    std::vector<SeqTrace> out;
    out.reserve(std::min(count, seqs_.size()));
    for (auto it = seqs_.rbegin(); it != seqs_.rend() && out.size() < count; ++it)
        out.push_back(it->second);
    std::reverse(out.begin(), out.end());
    return out;
}

std::vector<TimedStep> Traces::recent_view_changes(size_t count) const {
    const size_t skip = view_changes_.size() - std::min(count, view_changes_.size());
    return {view_changes_.begin() + static_cast<std::ptrdiff_t>(skip), view_changes_.end()};
}

std::optional<Explanation> Traces::explain(const crypto::Hash& tx) const {
    auto it = txs_.find(tx);
    if (it == txs_.end()) return std::nullopt;
    Explanation out;
    out.tx = it->second;
    const TxTrace& t = out.tx;
    int64_t first = std::numeric_limits<int64_t>::max();
    if (t.received_ms) first = *t.received_ms;
    if (t.seq != 0) {
        auto steps = seqs_.find(t.seq);
        if (steps == seqs_.end()) {
            out.steps_dropped = true;
        } else {
            out.steps = steps->second.steps;
            for (const auto& s : steps->second.steps) first = std::min(first, s.at_ms);
        }
    }
    const int64_t last = t.seq != 0 ? t.executed_ms : std::numeric_limits<int64_t>::max();
    for (const auto& vc : view_changes_)
        if (vc.at_ms >= first && vc.at_ms <= last) out.steps.push_back(vc);
    std::sort(out.steps.begin(), out.steps.end(), [](const TimedStep& a, const TimedStep& b) {
        return a.at_ms != b.at_ms ? a.at_ms < b.at_ms : a.order < b.order;
    });
    return out;
}

}  // namespace tally::node
