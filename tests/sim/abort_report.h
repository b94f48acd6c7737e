// What a broken invariant leaves behind in a random search. An honest engine's
// check_invariants() (and every TALLY_ASSERT) aborts the process; in a search of thousands of
// schedules that abort must still say which seed broke and how to replay it, and tell
// scripts/simulate where to carry on.
#pragma once

#include <cstdint>
#include <string>

namespace tally::sim {

// While a schedule runs, an abort prints this seed and the command that replays it; `state_fd`,
// when >= 0, also gets "aborted <seed> <runs>\n" (`runs`: schedules finished before it).
void set_abort_report(uint64_t seed, uint64_t runs, const std::string& replay_command,
                      int state_fd = -1);
// Catches SIGABRT: prints the report, writes the state line, and exits with status 134.
void install_abort_handler();

}  // namespace tally::sim
