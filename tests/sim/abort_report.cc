// The abort report of a random search. See abort_report.h.
#include "sim/abort_report.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>

namespace tally::sim {

namespace {

// Written before each schedule, read only by the signal handler (no allocation there).
char g_abort_text[1024];
size_t g_abort_len = 0;
char g_state_text[64];
size_t g_state_len = 0;
int g_state_fd = -1;

void on_abort(int) {
    if (g_abort_len) (void)!::write(2, g_abort_text, g_abort_len);
    if (g_state_fd >= 0 && g_state_len) (void)!::write(g_state_fd, g_state_text, g_state_len);
    // Exits rather than dying of the signal: the same status to a shell, without the shell's
    // own "Aborted" line for each schedule scripts/simulate restarts after.
    ::_exit(128 + SIGABRT);
}

}  // namespace

void install_abort_handler() { std::signal(SIGABRT, on_abort); }

void set_abort_report(uint64_t seed, uint64_t runs, const std::string& replay_command,
                      int state_fd) {
    const std::string text = "\nsimulator: an invariant broke in schedule seed " +
                             std::to_string(seed) + "\nreplay: " + replay_command + "\n";
    g_abort_len = std::min(text.size(), sizeof(g_abort_text));
    std::memcpy(g_abort_text, text.data(), g_abort_len);
    const std::string state = "aborted " + std::to_string(seed) + " " + std::to_string(runs) + "\n";
    g_state_len = std::min(state.size(), sizeof(g_state_text));
    std::memcpy(g_state_text, state.data(), g_state_len);
    g_state_fd = state_fd;
}

}  // namespace tally::sim
