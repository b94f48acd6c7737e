// network.json: the one file that describes a network. `tally net up` writes it (or `tally net
// init --hosts`, for replicas on separate machines: the same file on every host); every
// `tallyd` and every client reads it (so it lives in node/api, which the client links without
// the replica). Paths inside it are relative to its own folder, so a
// network folder can be moved or copied to another machine as a whole. Only replica N reads
// replicas[N].key_file and data_dir (and neither has to exist for the others): on separate
// hosts each host's folder holds its own replica's. A replica binds its own `host` (tallyd
// resolves a name to its address; `tallyd --bind` overrides); everyone else connects to it.
//
// {
//   "protocol": "pbft",                      // or "raft"; "pbft" when absent
//   "f": 1,                                  // PBFT: n = 3f+1; Raft: f = floor((n-1)/2)
//   "replicas": [
//     {"id": 0, "host": "127.0.0.1", "port": 7100, "client_port": 7200,
//      "public_key": "<64 hex>", "key_file": "keys/replica-0.key", "data_dir": "data/0"}, ...
//   ],
//   "genesis": [{"account": "<64 hex>", "balance": 1000000000}, ...],
//   "genesis_ballast": {"accounts": 1000000, "balance": 1},   // optional (ledger/account.h)
//   "consensus": {"tick_ms": 10, "batch_size_max": 256, "batch_bytes_max": 262144, "pipeline_depth": 2,
//                 "checkpoint_interval": 128, "watermark_window": 512,
//                 "view_change_timeout_ticks": 200,
//                 "election_timeout_ticks": 100, "heartbeat_ticks": 10,   // Raft only
//                 "lease_reads": false}                                    // Raft only
// }
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bft/quorum.h"
#include "crypto/keys.h"
#include "crypto/result.h"
#include "ledger/account.h"

namespace tally::node::api {

struct ReplicaConfig {
    uint32_t id = 0;
    std::string host = "127.0.0.1";
    uint16_t port = 0;  // replicas connect here
    // Clients connect here ("client_port", optional): a socket of their own, with a frame limit
    // sized to client messages and a bound on what one connection may queue (transport.h).
    // 0: none; clients then share the replicas' port and socket (an older network.json).
    uint16_t client_port = 0;
    // Prometheus metrics over HTTP at http://host:metrics_port/metrics ("metrics_port",
    // optional; node/metrics.h). 0: none.
    uint16_t metrics_port = 0;
    crypto::PublicKey public_key{};
    std::string key_file;  // absolute once loaded
    std::string data_dir;  // absolute once loaded
    // Fault injection: Byzantine behaviours this replica runs with, comma-separated
    // (bft/behaviours.h), as `tally net up --traitor N:B` records them; empty for an honest one.
    std::string traitor;
    std::string endpoint() const { return "tcp://" + host + ":" + std::to_string(port); }
    // Where clients connect: the client port, or the replicas' one when there is none.
    std::string client_endpoint() const {
        return "tcp://" + host + ":" + std::to_string(client_port != 0 ? client_port : port);
    }
};

struct ConsensusConfig {
    uint32_t tick_ms = 10;
    uint32_t batch_size_max = 256;
    uint32_t batch_bytes_max = 256u << 10;  // bytes of requests in one batch (bft/pbft/pbft.h)
    uint32_t pipeline_depth = 2;  // a second batch in flight only when a full one waits (bft/)
    uint64_t checkpoint_interval = 128;
    uint64_t watermark_window = 512;
    uint64_t view_change_timeout_ticks = 200;
    // State transfer: the size of the snapshot pieces a replica asks its peers for.
    uint32_t snapshot_chunk_bytes = 1u << 20;
    // Raft: a follower that hears no leader for [T, 2T) ticks campaigns (randomised); a leader
    // sends a heartbeat every heartbeat_ticks. 100 and 10 ticks of 10 ms: etcd's 1 s and 100 ms.
    uint64_t election_timeout_ticks = 100;
    uint64_t heartbeat_ticks = 10;
    // Raft: linearizable reads from the leader's lease, without a heartbeat round per read
    // (bft::raft::Config::lease_reads). Off by default: it assumes the replicas' clocks run at
    // rates within the drift margin (an eighth of the election timeout) and that no replica
    // stalls that long unnoticed; ReadIndex assumes nothing of clocks. Refused under PBFT.
    bool lease_reads = false;
};

struct NetworkConfig {
    bft::Protocol protocol = bft::Protocol::kPbft;
    uint32_t f = 1;
    std::vector<ReplicaConfig> replicas;
    ledger::Genesis genesis;
    ConsensusConfig consensus;
    std::string dir;  // the folder network.json is in (absolute)

    uint32_t n() const { return static_cast<uint32_t>(replicas.size()); }
    // How many replicas must answer alike, for this network's protocol and f (bft/quorum.h):
    // what the engines count and what a client needs before it believes an answer.
    bft::Quorums quorums() const { return bft::Quorums(protocol, f); }
};

// Reads and checks network.json. Errors name the file and the field: "not_found", "parse",
// "invalid" (n does not fit f, duplicate ids or ports, a bad key, ...).
Result<NetworkConfig> load_network_config(const std::string& path);
// The same checks on network.json's text, as if read from `path` (which names it in errors and
// whose folder relative paths resolve against); "not_found" aside, the same errors.
Result<NetworkConfig> parse_network_config(std::string_view text, const std::string& path);

// Writes network.json (paths stored relative to config.dir).
Status save_network_config(const NetworkConfig& config, const std::string& path);

}  // namespace tally::node::api
