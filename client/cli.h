// Helpers behind the `tally` command line that are worth testing on their own: turning what a
// user types into accounts, keys, amounts and ids (with one clear sentence when it is wrong),
// exit codes, and the JSON shapes the commands print.
//
// What it trusts: nothing the user types; key files are read through crypto::read_key_file,
// which checks them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "client/bench.h"
#include "client/client.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/result.h"
#include "node/api/network_config.h"

namespace tally::client {

// Exit codes of `tally` (documented in its --help footer).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;       // the network answered: the transaction failed
inline constexpr int kExitUsage = 2;        // bad arguments or input (files, ids, amounts)
inline constexpr int kExitUnreachable = 3;  // timeout, or the network could not be reached
// The transfer was not ordered (nonce_too_high, unknown_sender) but is not refused for good:
// its signed bytes stay valid and may still apply later. Never "failed": paying again with
// the next nonce may pay twice.
inline constexpr int kExitNotFinal = 4;

inline constexpr std::string_view kDefaultDir = "tally-net";

// The exit code for an Error returned by the client library or a helper below.
int exit_code_for(const Error& error);

// An account given as 64 hex digits, a path to a key file, or a name in DIR/accounts
// ("alice"). Errors (code "usage"): malformed hex, a bad key file, an unknown name.
Result<crypto::PublicKey> resolve_account(std::string_view arg, const std::string& dir);

// A key given as a path to a key file or a name in DIR/accounts. Errors (code "usage") name
// the file and what is wrong with it.
Result<crypto::KeyPair> resolve_key(std::string_view arg, const std::string& dir);

// A whole decimal number in [min, 2^64-1], no sign, no spaces. `what` names it in the error.
Result<uint64_t> parse_u64(std::string_view text, std::string_view what, uint64_t min = 0);

// A transaction id: 64 hex digits.
Result<crypto::Hash> parse_tx_id(std::string_view text);

// A timeout in seconds (> 0, at most a day) as milliseconds; the error names `option`.
Result<Duration> parse_timeout_s(double seconds, std::string_view option = "--timeout");

// Loads DIR/network.json; a missing one says how to start a network.
Result<node::api::NetworkConfig> load_network(const std::string& dir);

// What one answering replica says of itself: {"protocol","role","view","executed","digest"
// (hex),...,"detected":{kind:count},"rejected":{...}}. `tally net status --json` and the live
// view (client/web) both show it.
nlohmann::json replica_status_json(const node::api::pb::StatusReply& reply);
// {"replicas":[{"id","up", and when up replica_status_json's fields}]}
nlohmann::json status_json(const std::vector<ReplicaStatus>& statuses);
// The human table of `tally net status`.
std::string status_table(const std::vector<ReplicaStatus>& statuses);
// The line `tally net status` prints under its table for a Raft network: whether linearizable
// reads are served from the leader's lease (network.json's consensus.lease_reads, which every
// replica reads at start) or by ReadIndex. Empty for PBFT, which has no lease.
std::string lease_reads_line(const node::api::NetworkConfig& config);

// {"tx","seq","block","nonce","result","final","status"}; status is "applied", "failed" (final)
// or "not_ordered_may_still_apply" (exit code kExitNotFinal).
nlohmann::json transfer_json(const TransferResult& result);
// What the user should do about a transfer that is not final (one line, for stderr).
std::string not_final_advice(const TransferResult& result);
nlohmann::json balance_json(const BalanceResult& result);
// {"tx","result","seq","status"}; status is "applied", "failed" (final: the ledger recorded
// it), "executed_not_applied_may_still_apply" (ordered at seq and executed as nonce_too_high:
// it moved no money, its bytes may still apply; exit code kExitNotFinal)
// or "unknown" (never ordered, as far as the ledger knows; exit code kExitFailed).
nlohmann::json tx_json(const TxResult& result);
// What `tally tx` tells the user of a transaction executed with a not-yet result (one line,
// for stderr).
std::string tx_not_final_advice(const TxResult& result);
nlohmann::json bench_json(const BenchResult& result);
// `tally bench --breakdown`'s table: a row per phase, p50 / p99 in ms, all replicas and each.
std::string breakdown_table(const Breakdown& breakdown);

}  // namespace tally::client
