// `tally explain TX`: the life of one transaction across the replicas, from what each one's
// traces hold (node/traces.h; a status request with explain_tx, StatusReply.trace): when each
// replica received it, its sequence number's protocol steps with the replica's own timestamps
// and the votes it counted, the view changes around it, when it executed there and with what
// result, and which replies a client waiting for the protocol's quorum of matching replies
// accepted (the first that many to execute it alike). When no replica holds a trace any more,
// the ledger's answer (block and result) stands in.
//
// Times are each replica's wall clock (ms since the Unix epoch), shown relative to the
// earliest one: on one machine they line up; across machines, clock skew shows.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "client/client.h"
#include "crypto/hash.h"
#include "node/api/network_config.h"

namespace tally::client {

struct Explained {
    crypto::Hash tx{};
    bft::Protocol protocol = bft::Protocol::kPbft;
    uint32_t f = 0;
    uint32_t ordered_quorum = 1;          // matching replies a client accepts
    std::vector<ReplicaStatus> replicas;  // each with its trace, when up
    std::optional<TxResult> ledger;       // asked when no replica held a trace
};

// The replicas whose replies a client accepted: the first `ordered_quorum` to execute the
// transaction at one seq with one result (or, never ordered, to refuse it for one reason),
// in the order they did. Empty when no such quorum exists.
std::vector<uint32_t> accepted_replies(const Explained& e);

// Whether the ledger's answer found the transaction (not unknown_tx).
bool found_in_ledger(const TxResult& ledger);

nlohmann::json explain_json(const Explained& e);
std::string explain_text(const Explained& e);

}  // namespace tally::client
