// The names of the Byzantine behaviours a replica can be started with (`tallyd --traitor`,
// `tally net up --traitor N:B`, network.json's "traitor" field). Only the vocabulary: what
// each one does lives beside what it rewrites — bft/pbft/traitor.h for PBFT's messages,
// node/traitor.h for replies and snapshot pieces — which the client never links. In
// tally_bft_shared, so that the CLI and network.json can check a name without carrying them.
#pragma once

#include <string_view>
#include <vector>

#include "crypto/result.h"

namespace tally::bft {

enum class Behaviour {
    kSilent,
    kEquivocate,
    kBadSignature,
    kWrongDigest,
    kStaleView,
    kFutureView,
    kReplay,
    kForgeClient,
    kLyingCheckpoint,
    kWrongReply,
    kLyingSnapshot,
    kLyingViewChange,
    kRandom,
    kDoubleVote,
    kFalseAck,
    kLyingVote,
};

std::string_view behaviour_name(Behaviour b);
std::vector<Behaviour> all_behaviours();
// Whether a Raft replica can play `b` (bft/raft/traitor.h, and the node's wrong-reply and
// lying-snapshot); the others are PBFT's alone. And their names, "silent, equivocate, ...".
bool raft_plays(Behaviour b);
std::string raft_behaviour_names();
// "silent,equivocate" -> behaviours. Error "unknown_behaviour" naming it and listing the known.
Result<std::vector<Behaviour>> parse_behaviours(std::string_view csv);

}  // namespace tally::bft
