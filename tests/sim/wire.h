// What the simulator's network reads of a frame: its message type, from the envelope's header
// (no signature check: only the simulator's fault rules look at it).
#pragma once

#include <optional>
#include <set>
#include <string>

#include "crypto/envelope.h"

namespace tally::sim {

inline std::optional<crypto::MessageType> message_type(const std::string& frame) {
    if (frame.empty()) return std::nullopt;
    crypto::OpenOptions header_only;
    header_only.verify_signature = false;
    auto env = crypto::open(frame, header_only);
    if (!env) return std::nullopt;
    return env->type;
}

// A slow replica's rule (NodeCluster::slow and slow_to): every message, or those of the
// types in `only`.
inline bool held_back(const std::string& frame, const std::set<crypto::MessageType>& only) {
    if (only.empty()) return true;
    const auto type = message_type(frame);
    return type && only.count(*type) > 0;
}

}  // namespace tally::sim
