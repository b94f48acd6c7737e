// `tally demo traitor [BEHAVIOUR]`: one traitor of the same kind in a PBFT network (4 replicas,
// f = 1) and in a Raft network (3 replicas, f = 1), side by side on this machine. The same
// transfers go into both, a line per transfer as it completes; then every replica's executed
// seq, state digest, bob's balance by its own signed word, and what it detected; and why PBFT's
// honest replicas agree (and catch the traitor) while Raft's part (issue 16 item 4).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "crypto/result.h"

namespace tally::client {

struct DemoOptions {
    std::string behaviour = "equivocate";  // one that both protocols' traitors play
    uint32_t transfers = 12;
    std::string dir;     // where the two networks live; empty: a new folder under /tmp
    bool keep = false;   // leave both networks running (and the folder) at the end
    std::string tallyd;  // the replica program; empty: `tallyd` next to this program
};

// Errors: "usage" (a behaviour Raft cannot play), and net up's.
Status demo_traitor(const DemoOptions& options, std::ostream& out);

}  // namespace tally::client
