// The random search ("everything at once", after TigerBeetle's VOPR): one seed picks a whole
// schedule — cluster size, protocol parameters, clients and their load, network faults (loss,
// duplication, delay and reorder), up to f traitors of random kinds (node/traitor.h behaviours,
// message mutation and twins, sim/byzantine.h), and a timeline of crashes, power losses (of one
// replica, or of the whole cluster at once), restarts, partitions, slow replicas and changes of
// the network's faults. A run has two
// phases:
//   safety    the schedule plays out; then agreement, money, exactly-once and "no honest
//             replica signs two digests for one slot" (Cluster::check_safety) must hold
//   liveness  every fault heals (the traitors stay), every replica comes back, clients send
//             more; every request must complete, the honest replicas converge, and then
//             safety again and linearizability of what clients saw.
// Throughout, every honest engine's check_invariants() runs after every input (a broken one
// aborts the process; the abort handler prints the seed and the replay command).
// The schedule is a pure function of the seed: a failing seed replays exactly.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "sim/cluster.h"

namespace tally::sim {

// Volatile ledgers are on unless TALLY_VOPR_VOLATILE=0.
inline bool volatile_ledgers_from_env() {
    const char* v = std::getenv("TALLY_VOPR_VOLATILE");
    return v == nullptr || std::string(v) != "0";
}

// Which kinds of traitor and fault the search may pick (all by default; a named test narrows it).
struct SearchSpace {
    bool behaviours = true;  // node/traitor.h
    bool mutation = true;    // MutatingEngine
    bool twins = true;       // TwinsEngine
    bool faults = true;      // crashes, partitions, loss, slow replicas
    bool crashes = true;     // (with faults) crashes, power losses and restarts too
    // Power losses that drop each ledger's unsynced tail and in-memory snapshots, in half the
    // schedules (TALLY_VOPR_VOLATILE=0 turns them off, to compare with a search without).
    bool volatile_ledgers = volatile_ledgers_from_env();
    uint32_t min_traitors = 0;
};

struct ScheduleResult {
    std::vector<std::string> problems;  // empty: every check held
    std::string description;            // what the seed chose, for a failure message
    uint64_t ticks = 0;
    std::map<std::string, uint64_t> detected;  // what honest replicas detected in others
    uint32_t traitors = 0;
    crypto::Hash history{};  // of what every client saw: ops, results, when (a run's fingerprint)
};

ScheduleResult run_schedule(uint64_t seed, const SearchSpace& space = {});

// While a schedule runs, an abort (a broken check_invariants()) prints this seed and the
// command that replays it; `state_fd`, when >= 0, also gets "aborted <seed> <runs>\n".
void set_abort_report(uint64_t seed, uint64_t runs, const std::string& replay_command,
                      int state_fd = -1);
void install_abort_handler();

}  // namespace tally::sim
