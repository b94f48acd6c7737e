// The counts of each protocol. See quorum.h.
#include "bft/quorum.h"

namespace tally::bft {

std::string_view protocol_name(Protocol protocol) {
    switch (protocol) {
        case Protocol::kPbft: return "pbft";
        case Protocol::kRaft: return "raft";
    }
    return "unknown";
}

std::optional<Protocol> protocol_from_name(std::string_view name) {
    if (name == "pbft") return Protocol::kPbft;
    if (name == "raft") return Protocol::kRaft;
    return std::nullopt;
}

uint32_t Quorums::max_faults(Protocol protocol, uint32_t n) {
    return protocol == Protocol::kPbft ? ByzantineQuorum::max_faults(n) : CrashQuorum::max_faults(n);
}

std::string_view Quorums::size_rule(Protocol protocol) {
    return protocol == Protocol::kPbft ? "3f+1" : "2f+1";
}

uint32_t Quorums::n() const {
    return protocol_ == Protocol::kPbft ? ByzantineQuorum{f_}.n() : CrashQuorum{f_}.n();
}

ClientQuorum Quorums::client() const {
    ClientQuorum rule;
    if (protocol_ == Protocol::kPbft) {
        const ByzantineQuorum q{f_};
        rule.ordered = q.weak();
        rule.fast_read = q.quorum();
    } else {
        const CrashQuorum q{f_};
        rule.ordered = 1;
        rule.fast_read = q.majority();
        // Enough for an election's worth of stale hints (each hop asks a replica that believed
        // in a newer leader), few enough that replicas cannot bounce a client around for long.
        rule.redirect_hops_max = 4;
    }
    rule.read_heard_enough = n() - f_;
    return rule;
}

}  // namespace tally::bft
