// The names of the Byzantine behaviours. See behaviours.h.
#include "bft/behaviours.h"

#include <algorithm>
#include <string>
#include <utility>

namespace tally::bft {

namespace {

constexpr std::pair<Behaviour, std::string_view> kNames[] = {
    {Behaviour::kSilent, "silent"},
    {Behaviour::kEquivocate, "equivocate"},
    {Behaviour::kBadSignature, "bad-signature"},
    {Behaviour::kWrongDigest, "wrong-digest"},
    {Behaviour::kStaleView, "stale-view"},
    {Behaviour::kFutureView, "future-view"},
    {Behaviour::kReplay, "replay"},
    {Behaviour::kForgeClient, "forge-client"},
    {Behaviour::kLyingCheckpoint, "lying-checkpoint"},
    {Behaviour::kWrongReply, "wrong-reply"},
    {Behaviour::kLyingSnapshot, "lying-snapshot"},
    {Behaviour::kLyingViewChange, "lying-view-change"},
    {Behaviour::kRandom, "random"},
    {Behaviour::kDoubleVote, "double-vote"},
    {Behaviour::kFalseAck, "false-ack"},
    {Behaviour::kLyingVote, "lying-vote"},
};

}  // namespace

std::string_view behaviour_name(Behaviour b) {
    for (const auto& [behaviour, name] : kNames)
        if (behaviour == b) return name;
    return "unknown";
}

std::vector<Behaviour> all_behaviours() {
    std::vector<Behaviour> all;
    for (const auto& [behaviour, name] : kNames) all.push_back(behaviour);
    return all;
}

Result<std::vector<Behaviour>> parse_behaviours(std::string_view csv) {
    std::vector<Behaviour> out;
    while (!csv.empty()) {
        size_t comma = csv.find(',');
        std::string_view word = csv.substr(0, comma);
        csv = comma == std::string_view::npos ? std::string_view() : csv.substr(comma + 1);
        if (word.empty()) continue;
        bool found = false;
        for (const auto& [behaviour, name] : kNames) {
            if (name == word) {
                if (std::find(out.begin(), out.end(), behaviour) == out.end()) out.push_back(behaviour);
                found = true;
            }
        }
        if (!found) {
            std::string known;
            for (const auto& [behaviour, name] : kNames) known += (known.empty() ? "" : ", ") + std::string(name);
            return make_error("unknown_behaviour", "unknown traitor behaviour '" + std::string(word) +
                                                       "' (known: " + known + ")");
        }
    }
    if (out.empty()) return make_error("unknown_behaviour", "no traitor behaviour given");
    return out;
}

bool raft_plays(Behaviour b) {
    return b == Behaviour::kSilent || b == Behaviour::kEquivocate || b == Behaviour::kBadSignature ||
           b == Behaviour::kWrongReply || b == Behaviour::kLyingSnapshot || b == Behaviour::kDoubleVote ||
           b == Behaviour::kFalseAck || b == Behaviour::kLyingVote;
}

std::string raft_behaviour_names() {
    std::string out;
    for (const auto b : all_behaviours())
        if (raft_plays(b)) out += (out.empty() ? "" : ", ") + std::string(behaviour_name(b));
    return out;
}

}  // namespace tally::bft
