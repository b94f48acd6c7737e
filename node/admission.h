// Admission: which client requests a replica lets into the ordered path. A request that is
// refused is answered at once with the reason (a Reply with seq 0: never ordered), counted
// by reason (Rejections, shown by `tally net status`), and never reaches the engine.
//
// The rules, checked in this order on a request the ledger has not executed already:
//   - a transfer's sender must have an account ("unknown_sender": no account, no entry);
//   - its nonce must be above the account's (else "nonce_too_low": final, it can never apply)
//     and at most nonce_window above it ("nonce_too_high": not yet; retry once the nonces
//     in between applied);
//   - a transfer whose very bytes executed as nonce_too_high while the account's nonce has
//     not moved since would execute the same way again: refused as nonce_too_high without
//     ordering it (replayed bytes cost the replayer nothing, so they must cost the network
//     nothing either);
//   - a sender has at most pending_per_sender_max requests pending, a connection at most
//     pending_per_connection_max replies pending, the replica at most ClientRoutes'
//     requests_max, and ordered queries (whose keys need no account: any key may read) at
//     most queries_pending_max in all ("busy": retry later).
// Why these: a key without funds could otherwise have its signed bytes ordered again and
// again, and one sender or connection could fill the replica's one global bound and lock
// every honest client out. The numbers are in NOTES/README (admission limits).
//
// Pure: no clocks, no I/O; the caller supplies the account and the counts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "ledger/state.h"
#include "ledger/tx.h"

namespace tally::node {

struct AdmissionLimits {
    // A client may pipeline this many transfers ahead of its account's nonce.
    uint64_t nonce_window = 64;
    size_t pending_per_sender_max = 64;
    // The bench and a gateway multiplex many accounts over one connection.
    size_t pending_per_connection_max = 1024;
    size_t queries_pending_max = 4096;
};

enum class Refusal {
    kNone,             // admitted
    kUnknownSender,    // the sender has no account
    kNonceTooLow,      // the nonce was used already
    kNonceTooHigh,     // beyond the window, or a replay of a not-yet result with nothing changed
    kSenderBusy,       // the sender has pending_per_sender_max pending
    kConnectionBusy,   // the connection has pending_per_connection_max pending
    kQueriesBusy,      // queries_pending_max queries pending
    kOverloaded,       // the replica's bound on pending requests is reached
};

// The counter name (Rejections) of a refusal: "unknown_sender", "sender_busy", ...
std::string_view refusal_name(Refusal refusal);

// The result code a refused request is answered with.
ledger::ResultCode refusal_result(Refusal refusal);

// What admission needs to know about one request and the replica's load.
struct AdmissionInput {
    bool query = false;
    uint64_t nonce = 0;
    std::optional<ledger::Account> sender;  // the sender's account, if it has one
    // When these very bytes last executed as nonce_too_high, the sender's nonce just after.
    std::optional<uint64_t> not_yet_at_nonce;
    size_t sender_pending = 0;
    size_t connection_pending = 0;
    size_t queries_pending = 0;
    bool replica_full = false;
};

Refusal admit(const AdmissionInput& in, const AdmissionLimits& limits);

}  // namespace tally::node
