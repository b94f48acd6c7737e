// The simulator on the real node: n `node::Replica`s — the class tallyd runs, with its loop,
// worker pool (no threads), reply quorums, state transfer, backfill, admission and traitor
// wrappers — each on a simulated network, an in-memory consensus store and ledger that a
// power loss takes back to their last sync, and a virtual clock; and clients that are the real
// `client::Client` over the same simulated network. Only the parts are simulated (node/host.h,
// client/link.h): what runs on them is the daemon's and the CLI's code (issue 12 item 1).
// PBFT (n = 3f+1) or Raft (n = 2f+1), with one config switch.
//
// Everything random comes from the seed (the network's faults, the clients' choices, the
// engines' and the clients' own randomness), and every container is ordered, so a failing seed
// replays exactly. One step is one tick of virtual time: messages due are delivered, every live
// replica takes one turn (node::Replica::turn), every client polls and acts.
//
// A test may also act as a client with the real Client's synchronous calls (client(c):
// balance at each consistency, transfer, tx, status), or through balance()/transfer() below,
// which also put what the client saw in the history the checks read. While such a call waits
// for replies, the simulation runs on under it, whole steps at a time, with every other client
// polling and acting as usual; the waiting client is never entered again from inside its own
// wait (NodeCluster::Link::receive).
//
// Checks: no two honest replicas ever hold different blocks at one height (watched as blocks
// appear, across crashes, power losses and state transfers); no honest replica ever signs two
// things for one slot, nor a pre-prepare or vote for another batch than the one its ledger
// executed at that seq, and its VIEW-CHANGEs carry what its store holds (sim/signed_watch.h);
// money is conserved; every
// acknowledged ok transfer is in every up-to-date ledger exactly once, at the seq its client was
// told; the clients' history is linearizable; after the faults heal, every live replica
// converges on one state; and every honest PBFT engine's invariants hold after every turn.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bft/engine.h"
#include "client/client.h"
#include "client/linearizability.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "ledger/state.h"
#include "node/api/network_config.h"
#include "node/replica.h"
#include "sim/faults.h"
#include "sim/history.h"
#include "sim/signed_watch.h"

namespace tally::sim {

struct NodeSimConfig {
    uint64_t seed = 1;
    bft::Protocol protocol = bft::Protocol::kPbft;
    uint32_t f = 1;  // PBFT: n = 3f+1; Raft: n = 2f+1
    uint32_t clients = 4;
    uint32_t ops_per_client = 8;
    double read_fraction = 0.25;  // share of client operations that are ordered balance reads
    NetworkFaults faults;
    // network.json's consensus section; the tick is the simulation's step.
    node::api::ConsensusConfig consensus = default_consensus();
    uint64_t client_retransmit_ticks = 40;
    // When set, the first sending of each request a client makes reaches this replica alone:
    // its copies to the others are lost on the way (PBFT.md rule 8's case: a client that
    // reached a backup alone). Its retransmissions reach every replica, as they must on the
    // node: only a replica the request came to answers it, and a client needs a quorum.
    std::optional<bft::ReplicaId> requests_first_reach;
    // Byzantine replicas: id -> behaviours, as `tallyd --traitor` takes them (bft/behaviours.h).
    // The checks cover honest replicas only.
    std::map<bft::ReplicaId, std::string> traitors;
    // Byzantine replicas of the simulator's own making (sim/byzantine.h: message mutation,
    // twins): id -> what wraps the honest engine (node::ReplicaParts::wrap_engine). Also
    // traitors: the checks skip them.
    std::map<bft::ReplicaId, std::function<std::unique_ptr<bft::Engine>(WrapContext&)>> wrap;

    static node::api::ConsensusConfig default_consensus() {
        node::api::ConsensusConfig c;
        c.tick_ms = 10;
        c.batch_size_max = 8;
        c.pipeline_depth = 4;
        c.checkpoint_interval = 8;
        c.watermark_window = 32;
        c.view_change_timeout_ticks = 60;
        c.snapshot_chunk_bytes = 4096;  // a few dozen records a piece: transfers take several
        c.election_timeout_ticks = 30;
        c.heartbeat_ticks = 5;
        return c;
    }
};

class NodeCluster {
public:
    explicit NodeCluster(const NodeSimConfig& config);
    ~NodeCluster();
    NodeCluster(const NodeCluster&) = delete;
    NodeCluster& operator=(const NodeCluster&) = delete;

    void step();
    bool run_until(const std::function<bool()>& done, uint64_t max_ticks);

    // A process crash keeps what the replica wrote (its ledger and store, as the OS holds
    // them); a power loss keeps only what was synced: the store as of its last synced write,
    // the ledger as of its last sync.
    enum class CrashKind { kProcess, kPowerLoss };
    void crash(bft::ReplicaId id, CrashKind kind = CrashKind::kProcess);
    void restart(bft::ReplicaId id);  // node::Replica::open_with on what the crash left
    // A restart on what the crash left, but without its consensus store (a lost disk): the
    // node refuses it, as tallyd does, unless `recover` (tallyd --recover: rejoin silent).
    // False when the replica did not start.
    bool restart_without_store(bft::ReplicaId id, bool recover);
    // A broken restart, for testing the checks: on what the crash left, but with the consensus
    // store as of its first sync (bound to the ledger, holding no vote) — a disk that lied
    // about every later sync, or a store put back from a backup of the first start. While the
    // ledger is within the binding's seq margin the node cannot tell it from a store that never
    // voted, so it starts, having forgotten what it signed. False when it did not start.
    bool restart_with_first_store(bft::ReplicaId id);
    void set_faults(const NetworkFaults& faults) { faults_ = faults; }
    void isolate(std::set<bft::ReplicaId> group);  // messages across the group's border: dropped
    void heal();  // no partition, no loss, no slow replica (messages in flight stay late)
    // A slow replica: every message it sends (or only those of the types in `only`) arrives
    // `extra_ticks` later — late, never lost. 0 makes it prompt again.
    void slow(bft::ReplicaId id, uint64_t extra_ticks, std::set<crypto::MessageType> only = {});
    // A replica that hears late: the same, for every message to it.
    void slow_to(bft::ReplicaId id, uint64_t extra_ticks, std::set<crypto::MessageType> only = {});
    // Messages slow() or slow_to() held back so far: a test's proof that its slowness applied.
    uint64_t slowed_messages() const { return slowed_messages_; }
    // Copies of requests lost by NodeSimConfig::requests_first_reach: its proof that it applied.
    uint64_t first_copies_lost() const { return first_copies_lost_; }
    // Messages replica `from` sent that are still in flight (of `type` only, when given).
    size_t in_flight_from(bft::ReplicaId from, std::optional<crypto::MessageType> type = {}) const;
    bool is_up(bft::ReplicaId id) const { return nodes_[id].replica != nullptr; }
    // The seq a power loss would take replica `id`'s ledger back to (its last sync).
    uint64_t ledger_synced_seq(bft::ReplicaId id) const { return nodes_[id].disk.synced_ledger_seq; }
    // The keys of the records in replica `id`'s consensus store that a power loss would take
    // (written, not yet synced: absent from, or other than, the store as of its last sync).
    std::vector<std::string> unsynced_records(bft::ReplicaId id) const;
    bool is_honest(bft::ReplicaId id) const { return !config_.traitors.count(id) && !config_.wrap.count(id); }
    // What honest replicas detected in others, by kind, over the whole run.
    std::map<std::string, uint64_t> detected() const;

    bool clients_done() const;
    void add_requests(uint32_t per_client);

    // The real client of simulated client `c`, for a test's synchronous calls, and its key
    // (its account, funded at genesis with kClientBalance). A call made here is not in the
    // history; one made through balance()/transfer() is.
    client::Client& client(uint32_t c) { return *clients_[c].client; }
    const crypto::KeyPair& client_key(uint32_t c) const { return *clients_[c].key; }
    // Client `c` reads client `of`'s account (client::Client::balance). An answer served
    // linearizable joins the history, as an ordered read; fast answers that did not fall back
    // and local ones do not (they promise less: client/client.h).
    Result<client::BalanceResult> balance(uint32_t c, uint32_t of, client::Consistency consistency,
                                          client::Duration timeout = client::kDefaultTimeout, uint32_t node = 0);
    // Client `c` transfers `amount` to client `to` (client::Client::transfer, its nonce from
    // its own read), and the transfer joins the history. Error "busy" while `c`'s own
    // workload has a transfer or read outstanding (the two would race for one nonce).
    Result<client::TransferResult> transfer(uint32_t c, uint32_t to, uint64_t amount,
                                            client::Duration timeout = client::kDefaultTimeout);
    uint64_t now() const { return now_; }
    uint32_t n() const { return static_cast<uint32_t>(nodes_.size()); }
    const std::vector<ClientOp>& history() const { return history_; }
    bft::EngineStatus status(bft::ReplicaId id) const { return nodes_[id].replica->engine().status(); }
    const ledger::State& ledger(bft::ReplicaId id) const { return nodes_[id].replica->ledger(); }
    uint64_t state_transfers(bft::ReplicaId id) const { return nodes_[id].replica->state_transfers(); }
    bool catching_up(bft::ReplicaId id) const { return nodes_[id].replica->catching_up(); }
    node::Replica::HeldVotes held_votes(bft::ReplicaId id) const { return nodes_[id].replica->held_votes(); }
    size_t held_writes(bft::ReplicaId id) const { return nodes_[id].replica->held_writes(); }
    uint64_t store_commits(bft::ReplicaId id) const { return nodes_[id].replica->store().commits(); }
    const node::ClientRoutes& routes(bft::ReplicaId id) const { return nodes_[id].replica->routes(); }
    uint64_t rejected(bft::ReplicaId id, std::string_view reason) const {
        return nodes_[id].replica->rejections().get(reason);
    }
    // Transfers replica `id` still holds as pending (admitted, waiting for their reply) although
    // its ledger executed them already: each would hold its sender's and connection's admission
    // slots until it expired.
    size_t executed_but_pending(bft::ReplicaId id) const {
        const auto& replica = *nodes_[id].replica;
        size_t stuck = 0;
        for (const auto& t : replica.routes().transfers())
            stuck += replica.ledger().transfer_outcome(t.tx_id, t.client, t.nonce).has_value();
        return stuck;
    }
    // What the clients' quorums saw besides what they accepted (client/reply_quorum.h).
    client::ReplyCounters client_counters() const;
    // A frame of a traitor's making, sent from replica `from`'s connection to `to` over the
    // simulated network (its faults apply), and the key a replica signs with.
    void send_as(bft::ReplicaId from, bft::ReplicaId to, std::string frame) { send(from, to, std::move(frame)); }
    const crypto::PublicKey& replica_key(bft::ReplicaId id) const { return replica_keys_[id]; }

    std::vector<std::string> check_safety() const;
    std::vector<std::string> check_converged() const;
    client::CheckResult check_linearizable() const;
    std::string describe() const;
    std::string replica_report() const;

private:
    class Network;      // node::Network on the simulated wire
    class Link;         // client::ClientLink on the simulated wire
    class VirtualClock;
    struct Message {
        uint32_t from = 0;  // replica id, or kClientBase + client
        uint32_t to = 0;
        std::string frame;
    };
    struct Disk {
        std::string ledger;        // ledger image as the OS holds it (process crash)
        std::string store;
        std::string synced_ledger;  // as of the last sync (power loss)
        std::string synced_store;
        std::string first_synced_store;  // the store as of its first sync (restart_with_first_store)
        uint64_t synced_ledger_seq = 0;  // synced_ledger's last seq
    };
    struct Node {
        std::unique_ptr<crypto::KeyPair> key;
        std::unique_ptr<node::Replica> replica;  // null while down
        std::deque<std::pair<std::string, std::string>> inbox;  // (routing id, frame)
        Disk disk;
        uint64_t restarts = 0;
        uint64_t scanned = 0;  // blocks up to here were compared with blocks_seen_
    };
    struct SimClient {
        std::unique_ptr<crypto::KeyPair> key;
        std::unique_ptr<client::Client> client;
        std::deque<std::pair<uint32_t, std::string>> inbox;  // (replica, frame)
        uint64_t next_nonce = 1;
        uint64_t next_query_id = 1ull << 40;  // queries carry unique ids, never account nonces
        uint32_t remaining = 0;
        std::optional<size_t> pending;  // index into history_
    };
    static constexpr uint32_t kClientBase = 1000;

    Status start(bft::ReplicaId id, const std::string& ledger_image, const std::string& store_image,
                 bool recover = false);
    void send(uint32_t from, uint32_t to, std::string frame);
    void deliver(Message m);
    // One step, in which client `waiting` (inside a synchronous call) neither polls nor acts.
    void step_without(std::optional<uint32_t> waiting);
    // Steps while client `c`'s inbox is empty, for at most `max_wait` of virtual time (rounded
    // up to whole steps): what the Link's receive does for a Client that waits.
    void wait_for_frames(uint32_t c, client::Duration max_wait);
    void client_act(uint32_t c);
    void watch_blocks(bft::ReplicaId id);
    bool partitioned(uint32_t from, uint32_t to) const;
    // NodeSimConfig::requests_first_reach: a client's request copy to `to` sent in the tick
    // the request was first sent, to another replica than the one it reaches.
    bool lost_first_copy(uint32_t from, uint32_t to, const std::string& frame);
    void problem(std::string what);

    NodeSimConfig config_;
    NetworkFaults faults_;
    std::mt19937_64 rng_;
    uint64_t now_ = 0;
    uint64_t order_ = 0;
    std::shared_ptr<VirtualClock> clock_;
    node::api::NetworkConfig network_;
    std::vector<crypto::PublicKey> replica_keys_;  // by id; what wrapped engines point to
    std::vector<Node> nodes_;
    std::vector<SimClient> clients_;
    std::vector<ClientOp> history_;
    std::map<std::pair<uint64_t, uint64_t>, Message> in_flight_;  // by (tick due, order sent)
    std::optional<std::set<bft::ReplicaId>> partition_;
    uint64_t genesis_total_ = 0;
    std::map<uint64_t, std::pair<crypto::Hash, bft::ReplicaId>> blocks_seen_;  // height -> first
    std::vector<std::string> problems_;
    struct Slowness {
        uint64_t extra_ticks = 0;
        std::set<crypto::MessageType> only;  // empty: every message
    };
    std::map<bft::ReplicaId, Slowness> slow_, slow_to_;
    uint64_t slowed_messages_ = 0;
    // NodeSimConfig::requests_first_reach: the tick each request frame was first sent (by the
    // SHA-256 of its bytes, which a retransmission repeats), and the copies lost.
    std::map<crypto::Hash, uint64_t> request_first_sent_;
    uint64_t first_copies_lost_ = 0;
    std::map<std::string, uint64_t> detected_before_;  // by replicas since crashed
    SignedWatch watch_;
    std::optional<uint32_t> waiting_;  // the client inside a synchronous call's wait, if any
    class Signers;
};

}  // namespace tally::sim
