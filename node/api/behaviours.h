// The names of the Byzantine behaviours a replica can be started with (`tallyd --traitor`,
// `tally net up --traitor N:B`, network.json's "traitor" field). Only the vocabulary: what
// each one does is node/traitor.h, which the client never links. Here so that the CLI and
// network.json can check a name without carrying the wrappers or the engine they wrap.
#pragma once

#include <string_view>
#include <vector>

#include "crypto/result.h"

namespace tally::node::api {

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
};

std::string_view behaviour_name(Behaviour b);
std::vector<Behaviour> all_behaviours();
// "silent,equivocate" -> behaviours. Error "unknown_behaviour" naming it and listing the known.
Result<std::vector<Behaviour>> parse_behaviours(std::string_view csv);

}  // namespace tally::node::api
