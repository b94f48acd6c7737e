// Where a batch's time goes at one replica: the phases it passes through, in order, per
// protocol (bft/engine.h Step, then "executed"), and their durations from a replica's
// SeqTimeline (StatusRequest.recent_seqs). Each duration is measured within one replica, on its
// own clocks, never between two replicas'. Used by the live view (client/web) and by
// `tally bench --breakdown`.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "node/api/client.pb.h"

namespace tally::client {

// PBFT: pre-prepare, prepared, committed, executed; Raft: appended, committed, executed.
const std::vector<std::string>& stages(const std::string& protocol);

// The durations between consecutive stages of an executed seq's last view at one replica
// (steps of an earlier view belong to a proposal that did not get through): pairs of
// (transition index into `order`, ms). Monotonic stamps when the replica sent them (they do
// not jump), else wall-clock ones.
std::vector<std::pair<size_t, double>> phase_durations(const node::api::pb::SeqTimeline& seq,
                                                       const std::vector<std::string>& order);

}  // namespace tally::client
