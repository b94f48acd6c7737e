// The local network launcher behind `tally net up|down|kill|start`: creates a network folder
// (keys, genesis accounts, network.json, data, logs) and runs one `tallyd` per replica as a
// background process.
// And `tally net init --hosts`, which writes a network for separate machines and starts nothing
// (net_init below).
//
// Folder layout (DIR defaults to ./tally-net):
//   DIR/network.json              written with node::api::save_network_config
//   DIR/keys/replica-N.key        replica keys (0600)
//   DIR/accounts/NAME.key         alice, bob, carol, dave (1,000,000,000 each), faucet (10^15)
//   DIR/data/N                    replica N's ledger and consensus log
//   DIR/logs/replica-N.out        replica N's stdout and stderr
//   DIR/run/replica-N.pid         the running replica's process id
//
// What it trusts: nothing in DIR/run. A pid file is only believed when /proc/PID/cmdline shows
// a `tallyd` started with this network's network.json and that replica's id, so a stale pid
// file (the process died, its pid was reused) never makes us signal a stranger.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "crypto/result.h"

namespace tally::node::api {
struct NetworkConfig;
}

namespace tally::client {

inline constexpr uint64_t kGenesisAccountBalance = 1'000'000'000;
inline constexpr uint64_t kFaucetBalance = 1'000'000'000'000'000;
// The well-known ports `net init --hosts` gives every replica (the same on each host).
inline constexpr uint16_t kHostsPeerPort = 7000;     // replicas connect here
inline constexpr uint16_t kHostsClientPort = 7100;   // clients connect here
inline constexpr uint16_t kHostsMetricsPort = 7200;  // Prometheus: http://HOST:7200/metrics
// The funded accounts `net up` creates in DIR/accounts, besides "faucet".
const std::vector<std::string>& genesis_account_names();

struct NetUpOptions {
    std::string dir = "tally-net";
    uint32_t nodes = 0;  // 0: the protocol's default, PBFT 4 (3f+1), Raft 3 (2f+1), for f = 1
    std::string protocol = "pbft";  // or "raft"
    std::chrono::milliseconds ready_timeout{30'000};  // for every replica to answer status
    std::string tallyd;  // the replica program; empty: `tallyd` next to this program
    // Byzantine replicas, "NODE:BEHAVIOUR[,BEHAVIOUR...]" each (bft/behaviours.h). Applied when
    // the network is created and kept in network.json, so `net start` restarts a traitor as one.
    std::vector<std::string> traitors;
    // Ballast accounts in the genesis (ledger/account.h), holding 1 each: a ledger this large
    // from the first block, to measure what its size costs (scripts/measure-ledger-size).
    uint64_t ballast = 0;
    // Raft: serve linearizable reads from the leader's lease (network.json's
    // consensus.lease_reads; the clock assumption is at bft::raft::Config::lease_reads).
    bool lease_reads = false;
    // For tests: changes a new network's network.json before any replica starts (so that no
    // replica's ports are bound and released again in between). Not applied to a restart.
    std::function<void(node::api::NetworkConfig&)> edit_config;
};

// `tally net init --hosts H1,...,Hn --out DIR`: a network for n machines, one replica on each,
// to copy out and start by hand (or by systemd). Nothing is started here.
//
//   DIR/network.json           the shared file: replica i at hosts[i], on the same well-known
//                              ports on every host (so the same bytes serve everywhere)
//   DIR/accounts/NAME.key      the genesis accounts (alice, bob, carol, dave, faucet): for
//                              the operator's client (`tally --dir DIR transfer ...`); never
//                              copied to a replica's host
//   DIR/I-HOST/                what host I gets, copied as a whole (e.g. to /var/lib/tally):
//     network.json             the same bytes as DIR/network.json
//     keys/replica-I.key       replica I's key (0600), and no other replica's
//     data/I/                  replica I's ledger and consensus store (0700)
// network.json's paths are relative to its folder: every replica's key_file is
// keys/replica-K.key and its data_dir data/K, so on host I only replica I's exist, and only
// replica I reads them (`tallyd --config network.json --id I`); the other replicas' entries
// give their host, ports and public key. The client reads no key_file or data_dir.
struct NetInitOptions {
    std::string out;                 // DIR: must not exist, or be empty
    std::vector<std::string> hosts;  // one per replica: an IPv4 address or a DNS name
    std::string protocol = "pbft";   // or "raft"
    uint16_t port = kHostsPeerPort;
    uint16_t client_port = kHostsClientPort;
    uint16_t metrics_port = kHostsMetricsPort;  // 0: no metrics endpoint
    bool lease_reads = false;                   // Raft only, as NetUpOptions::lease_reads
};

// Writes the folders above; a summary (and what to do next) to `out`. Errors: "usage" (a bad
// or repeated host, a count the protocol cannot run, clashing ports), "exists" (DIR holds
// something), "io".
Status net_init(const NetInitOptions& options, std::ostream& out);

// The folder `net init --hosts` writes for host `index`: "I-HOST".
std::string host_folder_name(uint32_t index, const std::string& host);

// Checks one --hosts entry: an IPv4 address in dotted decimal, or a DNS name (RFC 1123
// labels). Refused, each with its reason: empty, IPv6 (network.json's endpoints are
// tcp://host:port), a port (set with --port), a wildcard or loopback address, bad characters.
Status check_host(const std::string& host);

// Error codes: "running" (a network already runs in DIR), "exists" (DIR holds something that is
// not a network), "usage" (bad nodes/protocol), "io", "spawn" (tallyd missing or exited at
// once), "timeout" (replicas started but did not all answer in time; they keep running).
// Progress goes to `progress` (a line per change), the summary to `out`.
Status net_up(const NetUpOptions& options, std::ostream& out, std::ostream& progress);

// Stops every replica of DIR: SIGTERM, wait up to `grace`, then SIGKILL. Removes pid files.
// "Every": those the pid files name, and any other live `tallyd --config DIR/network.json`
// (found in /proc, each named in `out`), so that a lost pid file leaves no replica behind.
Status net_down(const std::string& dir, std::ostream& out,
                std::chrono::milliseconds grace = std::chrono::milliseconds{10'000});

// SIGKILLs replica `id` (a crash, for experiments). Saying so when it is not running is not an
// error.
Status net_kill(const std::string& dir, uint32_t id, std::ostream& out);

// Stops replica `id` cleanly: SIGTERM, wait up to `grace`, then SIGKILL. A Raft leader hands
// its leadership to a follower first (bft::Engine::hand_over), so no election timeout passes
// without a leader.
Status net_stop(const std::string& dir, uint32_t id, std::ostream& out,
                std::chrono::milliseconds grace = std::chrono::milliseconds{10'000});

// Starts replica `id` again on its existing data and waits until it answers status. With
// `recover`, as `tallyd --recover`: its consensus store is set aside and it rejoins as a fresh
// replica (node/store_binding.h) — for a store that tallyd refused.
Status net_start(const std::string& dir, uint32_t id, std::ostream& out, std::ostream& progress,
                 std::chrono::milliseconds ready_timeout = std::chrono::milliseconds{30'000},
                 const std::string& tallyd = "", bool recover = false);

// True for a loopback host: an IPv4 address in 127/8, or "localhost" or a name under it.
bool is_loopback_host(const std::string& host);

// The process id of replica `id` of the network in DIR when it is running (and really is that
// replica: see the file comment): the one its pid file names, or when the file is missing or
// stale, the lowest-numbered live `tallyd --config DIR/network.json --id ID` in /proc.
std::optional<pid_t> replica_pid(const std::string& dir, uint32_t id);

// Absolute path of `tallyd` next to the running program (/proc/self/exe).
std::string default_tallyd_path();

// The absolute, normalised form of DIR.
std::string absolute_dir(const std::string& dir);

// `count` distinct free TCP ports on 127.0.0.1, none in the kernel's ephemeral range (where an
// outgoing connection could take one before it is bound): what `net up` gives replicas, and
// what tests that start replicas themselves use. Error "io" when none can be found.
// With a HOLDER (a network's folder), the ports stay leased to it while it exists: no other
// free_ports hands one out, even while its replica is down for a restart. A holder gets all its
// ports in one call: a new call for it drops its earlier leases. RANGE, for tests, narrows
// the ports drawn from (default: 10000 up to the ephemeral range).
struct PortRange {
    uint16_t lowest = 0;  // 0: the default range
    uint16_t highest = 0;
};
Result<std::vector<uint16_t>> free_ports(uint32_t count, const std::string& holder = {}, PortRange range = {});

// Whether PORT is leased to a network folder that still exists (see free_ports).
bool port_leased(uint16_t port);

}  // namespace tally::client
