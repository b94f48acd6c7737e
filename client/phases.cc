#include "client/phases.h"

#include <algorithm>
#include <cstdint>
#include <optional>

namespace tally::client {

// The phases a batch goes through at one replica, in order, per protocol (bft/engine.h Step),
// then "executed" (SeqTimeline.executed_ms). The timeline's per-phase latency is the time
// between two consecutive ones, measured within one replica: its clocks, never two replicas'.
const std::vector<std::string>& stages(const std::string& protocol) {
    static const std::vector<std::string> pbft{"pre-prepare", "prepared", "committed", "executed"};
    static const std::vector<std::string> raft{"appended", "committed", "executed"};
    return protocol == "raft" ? raft : pbft;
}

// The durations between consecutive stages of an executed seq's last view at one replica
// (steps of an earlier view belong to a proposal that did not get through): pairs of
// (transition index, ms). Monotonic stamps when the replica sent them (they do not jump),
// else wall-clock ones.
std::vector<std::pair<size_t, double>> phase_durations(const node::api::pb::SeqTimeline& seq,
                                                       const std::vector<std::string>& order) {
    std::vector<std::pair<size_t, double>> out;
    if (seq.executed_ms() == 0 || seq.steps().empty()) return out;
    const uint64_t view = seq.steps(seq.steps_size() - 1).view();
    struct Stamp {
        int64_t ms = 0;
        int64_t mono_us = 0;
    };
    std::vector<std::optional<Stamp>> at(order.size());
    for (const auto& step : seq.steps()) {
        if (step.view() != view) continue;
        const auto it = std::find(order.begin(), order.end(), step.phase());
        if (it != order.end() && !at[it - order.begin()])
            at[it - order.begin()] = Stamp{step.at_ms(), step.mono_us()};
    }
    at.back() = Stamp{seq.executed_ms(), seq.executed_mono_us()};
    for (size_t i = 0; i + 1 < order.size(); ++i) {
        if (!at[i] || !at[i + 1]) continue;
        const bool mono = at[i]->mono_us != 0 && at[i + 1]->mono_us != 0;
        const double ms = mono ? static_cast<double>(at[i + 1]->mono_us - at[i]->mono_us) / 1000.0
                               : static_cast<double>(at[i + 1]->ms - at[i]->ms);
        if (ms >= 0) out.emplace_back(i, ms);
    }
    return out;
}

}  // namespace tally::client
