// The simulator on the real node. See node_cluster.h.
#include "sim/node_cluster.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>

#include <spdlog/spdlog.h>

#include "bft/pbft/engine.h"
#include "bft/pbft/messages.h"
#include "crypto/envelope.h"
#include "client/link.h"
#include "crypto/assert.h"
#include "node/store.h"
#include "node/store_binding.h"
#include "node/engine_factory.h"
#include "sim/wire.h"

namespace tally::sim {

// The simulation's time: one step is one tick of consensus.tick_ms.
class NodeCluster::VirtualClock final : public node::Clock {
public:
    explicit VirtualClock(uint32_t tick_ms) : tick_ms_(tick_ms) {}
    void set_ticks(uint64_t ticks) { ticks_ = ticks; }
    // An hour in, so that a default time point (the epoch) is long past.
    TimePoint now() const override {
        return TimePoint{} + std::chrono::hours(1) + std::chrono::milliseconds(ticks_ * tick_ms_);
    }
    int64_t wall_ms() const override { return kWallStartMs + static_cast<int64_t>(ticks_ * tick_ms_); }

private:
    static constexpr int64_t kWallStartMs = 1'800'000'000'000;  // 2027: a fixed start, for replay
    uint32_t tick_ms_;
    uint64_t ticks_ = 0;
};

// A replica's doors on the simulated wire. Peers' frames come with routing id 'p' + the
// sender's id, clients' with 'c' + the client's index (4 bytes): unique per connection, as
// ZeroMQ's are.
class NodeCluster::Network final : public node::Network {
public:
    Network(NodeCluster& cluster, bft::ReplicaId id)
        : cluster_(cluster), id_(id), endpoint_("sim://replica-" + std::to_string(id)) {}

    Received receive(std::string& routing_id, zmq::message_t& frame, bool clients_too) override {
        auto& inbox = cluster_.nodes_[id_].inbox;
        for (auto it = inbox.begin(); it != inbox.end(); ++it) {
            if (!clients_too && node::on_client_port(it->first)) continue;
            routing_id = std::move(it->first);
            frame.rebuild(it->second.data(), it->second.size());
            inbox.erase(it);
            return Received::kFrame;
        }
        return Received::kNone;
    }
    Status wait(std::chrono::milliseconds, bool, int) override { return Ok{}; }  // steps drive it
    bool send_to_replica(bft::ReplicaId to, std::string_view envelope) override {
        cluster_.send(id_, to, std::string(envelope));
        return true;
    }
    bool send_to_client(std::string_view routing_id, std::string_view envelope) override {
        uint32_t c = 0;
        if (routing_id.size() != 1 + sizeof c || routing_id[0] != node::kClientPortTag) return false;
        std::memcpy(&c, routing_id.data() + 1, sizeof c);
        cluster_.send(id_, kClientBase + c, std::string(envelope));
        return true;
    }
    bool clients_have_own_port() const override { return true; }
    const std::string& endpoint() const override { return endpoint_; }
    uint64_t dropped_sends() const override { return 0; }

    // A replica's connection, as tallyd's transport names one it authenticated (node/host.h).
    static std::string peer_routing_id(uint32_t from) { return node::replica_routing_id(from, ""); }
    static std::string client_routing_id(uint32_t c) {
        std::string id(1 + sizeof c, node::kClientPortTag);
        std::memcpy(id.data() + 1, &c, sizeof c);
        return id;
    }

private:
    NodeCluster& cluster_;
    bft::ReplicaId id_;
    std::string endpoint_;
};

// A client's connections on the simulated wire, and the simulation's time.
class NodeCluster::Link final : public client::ClientLink {
public:
    Link(NodeCluster& cluster, uint32_t c) : cluster_(cluster), c_(c) {}
    bool send(uint32_t replica, std::string_view frame) override {
        cluster_.send(kClientBase + c_, replica, std::string(frame));
        return true;
    }
    // poll(0) from a step hands over what arrived. A synchronous call waits: the simulation
    // runs on (without this client) until something arrives for it or max_wait has passed.
    void receive(client::Duration max_wait, const std::function<void(uint32_t, std::string_view)>& on_frame,
                 uint64_t&) override {
        auto& inbox = cluster_.clients_[c_].inbox;
        if (inbox.empty() && max_wait > client::Duration{0}) cluster_.wait_for_frames(c_, max_wait);
        while (!inbox.empty()) {
            auto [replica, frame] = std::move(inbox.front());
            inbox.pop_front();
            on_frame(replica, frame);
        }
    }
    client::Clock::time_point now() const override { return cluster_.clock_->now(); }

private:
    NodeCluster& cluster_;
    uint32_t c_;
};

// The watch's questions about a signer, answered from the running replicas.
class NodeCluster::Signers final : public SignedWatch::Signers {
public:
    explicit Signers(const NodeCluster& cluster) : cluster_(cluster) {}
    bool honest(bft::ReplicaId id) const override { return cluster_.is_honest(id); }
    std::vector<std::pair<std::string, std::string>> stored(bft::ReplicaId id) const override {
        if (!cluster_.is_up(id)) return {};
        auto records = cluster_.nodes_[id].replica->store().load_all();
        return records ? std::move(records).value() : std::vector<std::pair<std::string, std::string>>{};
    }
    // The digest of the batch replica `id`'s ledger holds at `seq`: the one its block's commit
    // certificate names (the pre-prepare in it, read unchecked: the replica's own ledger). None
    // under Raft, whose blocks carry no such certificate, and none for a block held without
    // its certificate (a snapshot's, until backfill brings it).
    std::optional<crypto::Hash> delivered(bft::ReplicaId id, uint64_t seq) const override {
        if (!cluster_.is_up(id) || cluster_.config_.protocol != bft::Protocol::kPbft) return std::nullopt;
        const auto block = cluster_.nodes_[id].replica->ledger().certified_block(seq);
        if (!block || block->certificate.empty()) return std::nullopt;
        bft::pbft::pb::CommittedProof proof;
        if (!proof.ParseFromString(block->certificate)) return std::nullopt;
        const auto pp = bft::pbft::read_pre_prepare(proof.pre_prepare());
        if (!pp) return std::nullopt;
        return bft::pbft::hash_from_bytes(pp->digest());
    }

private:
    const NodeCluster& cluster_;
};

NodeCluster::NodeCluster(const NodeSimConfig& config)
    : config_(config),
      faults_(config.faults),
      rng_(config.seed),
      clock_(std::make_shared<VirtualClock>(config.consensus.tick_ms)),
      watch_({}, false) {
    // The replicas log as tallyd does; a run of thousands of schedules shows errors only
    // (TALLY_SIM_TRACE=1: everything).
    spdlog::set_level(std::getenv("TALLY_SIM_TRACE") ? spdlog::level::debug : spdlog::level::err);
    const bft::Quorums quorums(config_.protocol, config_.f);
    const uint32_t n = quorums.n();
    network_.protocol = config_.protocol;
    network_.f = config_.f;
    network_.consensus = config_.consensus;
    network_.dir = "sim://";
    for (uint32_t i = 0; i < n; ++i) {
        Node node;
        node.key = std::make_unique<crypto::KeyPair>(crypto::KeyPair::from_seed(sim_key_seed(config_.seed, 0, i)));
        node::api::ReplicaConfig r;
        r.id = i;
        r.public_key = node.key->public_key();
        r.data_dir = "sim://replica-" + std::to_string(i);
        if (auto t = config_.traitors.find(i); t != config_.traitors.end()) r.traitor = t->second;
        network_.replicas.push_back(r);
        nodes_.push_back(std::move(node));
    }
    for (const auto& r : network_.replicas) replica_keys_.push_back(r.public_key);
    watch_ = SignedWatch(replica_keys_, std::getenv("TALLY_SIM_TRACE") != nullptr);
    for (uint32_t c = 0; c < config_.clients; ++c) {
        SimClient client;
        client.key = std::make_unique<crypto::KeyPair>(crypto::KeyPair::from_seed(sim_key_seed(config_.seed, 1, c)));
        client.remaining = config_.ops_per_client;
        network_.genesis.accounts.push_back(ledger::Account{client.key->public_key(), kClientBalance, 0});
        genesis_total_ += kClientBalance;
        clients_.push_back(std::move(client));
    }
    for (uint32_t c = 0; c < config_.clients; ++c) {
        client::ClientOptions options;
        options.seed = config_.seed * 1000003 + 7919 * (c + 1);
        options.retransmit_interval = client::Duration(config_.client_retransmit_ticks * config_.consensus.tick_ms);
        clients_[c].client = std::make_unique<client::Client>(options);
        auto connected = clients_[c].client->connect(network_, std::make_unique<Link>(*this, c));
        TALLY_ASSERT(connected.ok());
    }
    for (bft::ReplicaId i = 0; i < n; ++i)
        if (auto s = start(i, {}, {}); !s) problem("replica " + std::to_string(i) + " does not start: " + s.error().message);
}

NodeCluster::~NodeCluster() = default;

void NodeCluster::problem(std::string what) {
    if (problems_.size() < 20) problems_.push_back(std::move(what));
}

// node::Replica::open_with on in-memory images: empty ones are a first start.
Status NodeCluster::start(bft::ReplicaId id, const std::string& ledger_image, const std::string& store_image,
                        bool recover) {
    Node& node = nodes_[id];
    node::ReplicaParts parts;
    auto ledger = ledger_image.empty()
                      ? ledger::State::open(":memory:", network_.genesis, ledger::State::Durability::kDeferred)
                      : ledger::State::open_image(ledger_image, ledger::State::Durability::kDeferred);
    if (!ledger) return make_error(ledger.error().code, "the ledger does not open: " + ledger.error().message);
    parts.ledger = std::move(ledger).value();
    parts.ledger_created = ledger_image.empty();
    const ledger::State* state = parts.ledger.get();
    // What a start finds counts as durable, as State::open and Store::open take it to be (a new
    // ledger at genesis included); from here, only syncs move what a power loss leaves.
    node.disk.synced_ledger = ledger_image.empty() ? state->image() : ledger_image;
    node.disk.synced_store = store_image;
    node.disk.synced_ledger_seq = state->last_seq();
    parts.ledger->set_sync_observer([this, id, state](uint64_t) {
        nodes_[id].disk.synced_ledger = state->image();
        nodes_[id].disk.synced_ledger_seq = state->last_seq();
    });
    parts.open_store = [this, id, store_image, recover](const node::LedgerIdentity& identity) -> Result<node::BoundStore> {
        auto store = node::Store::open_memory(store_image);
        if (!store) return store.error();
        const node::Store* raw = store->get();
        (*store)->set_sync_observer([this, id, raw] {
            Disk& disk = nodes_[id].disk;
            disk.synced_store = raw->image();
            if (disk.first_synced_store.empty()) disk.first_synced_store = disk.synced_store;
        });
        return node::open_bound_store(std::move(store).value(), identity, recover,
                                      config_.consensus.checkpoint_interval);
    };
    if (auto w = config_.wrap.find(id); w != config_.wrap.end()) {
        parts.wrap_engine = [this, id, make = w->second](std::unique_ptr<bft::Engine> honest) {
            WrapContext context{id, std::move(honest), node::pbft_config(network_, id, false),
                                nodes_[id].key.get(), &replica_keys_, &network_.genesis,
                                config_.seed * 1000003 + id};
            return make(context);
        };
    }
    parts.network = std::make_unique<Network>(*this, id);
    parts.clock = clock_;
    parts.seed = config_.seed * 1000003 + 104729 * (node.restarts + 1) + id;

    node::ReplicaOptions options;
    options.workers.threads = 0;  // every check and signature on the loop's thread, in order
    options.inline_verify_frames_max = std::numeric_limits<size_t>::max();
    options.inline_sign_max = std::numeric_limits<size_t>::max();
    if (!network_.replicas[id].traitor.empty()) {
        std::stringstream csv(network_.replicas[id].traitor);
        for (std::string b; std::getline(csv, b, ',');) options.traitor.push_back(b);
        options.traitor_seed = config_.seed * 1000003 + id;
    }
    auto replica = node::Replica::open_with(network_, id, *node.key, options, std::move(parts));
    if (!replica) return replica.error();
    node.replica = std::move(replica).value();
    node.inbox.clear();
    if (auto s = node.replica->start(); !s) {
        node.replica.reset();
        return s;
    }
    return Ok{};
}

void NodeCluster::crash(bft::ReplicaId id, CrashKind kind) {
    Node& node = nodes_[id];
    if (!node.replica) return;
    if (is_honest(id))
        for (const auto& [kind_seen, count] : node.replica->detected())
            detected_before_[std::string(bft::misbehaviour_name(kind_seen))] += count;
    if (kind == CrashKind::kProcess) {
        node.disk.ledger = node.replica->ledger().image();
        node.disk.store = node.replica->store().image();
    } else {
        node.disk.ledger = node.disk.synced_ledger;
        node.disk.store = node.disk.synced_store;
    }
    node.replica.reset();
    node.inbox.clear();
}

void NodeCluster::restart(bft::ReplicaId id) {
    Node& node = nodes_[id];
    if (node.replica) return;
    ++node.restarts;
    if (auto s = start(id, node.disk.ledger, node.disk.store); !s)
        problem("replica " + std::to_string(id) + " does not restart: " + s.error().code + ": " + s.error().message);
}

bool NodeCluster::restart_without_store(bft::ReplicaId id, bool recover) {
    Node& node = nodes_[id];
    if (node.replica) return true;
    ++node.restarts;
    return start(id, node.disk.ledger, {}, recover).ok();
}

bool NodeCluster::restart_with_first_store(bft::ReplicaId id) {
    Node& node = nodes_[id];
    if (node.replica) return true;
    ++node.restarts;
    return start(id, node.disk.ledger, node.disk.first_synced_store).ok();
}

void NodeCluster::isolate(std::set<bft::ReplicaId> group) { partition_ = std::move(group); }

void NodeCluster::heal() {
    partition_.reset();
    faults_ = NetworkFaults{};
    slow_.clear();
    slow_to_.clear();
}

void NodeCluster::slow(bft::ReplicaId id, uint64_t extra_ticks, std::set<crypto::MessageType> only) {
    if (extra_ticks == 0) slow_.erase(id);
    else slow_[id] = Slowness{extra_ticks, std::move(only)};
}

void NodeCluster::slow_to(bft::ReplicaId id, uint64_t extra_ticks, std::set<crypto::MessageType> only) {
    if (extra_ticks == 0) slow_to_.erase(id);
    else slow_to_[id] = Slowness{extra_ticks, std::move(only)};
}

size_t NodeCluster::in_flight_from(bft::ReplicaId from, std::optional<crypto::MessageType> type) const {
    size_t count = 0;
    for (const auto& [key, m] : in_flight_)
        if (m.from == from && (!type || message_type(m.frame) == type)) ++count;
    return count;
}

std::vector<std::string> NodeCluster::unsynced_records(bft::ReplicaId id) const {
    if (!is_up(id)) return {};
    auto now = nodes_[id].replica->store().load_all();
    auto synced_store = node::Store::open_memory(nodes_[id].disk.synced_store);
    TALLY_ASSERT(now.ok() && synced_store.ok());
    auto synced = (*synced_store)->load_all();
    TALLY_ASSERT(synced.ok());
    const std::map<std::string, std::string> kept(synced->begin(), synced->end());
    std::vector<std::string> keys;
    for (const auto& [key, value] : *now)
        if (auto k = kept.find(key); k == kept.end() || k->second != value) keys.push_back(key);
    return keys;
}

std::map<std::string, uint64_t> NodeCluster::detected() const {
    std::map<std::string, uint64_t> total = detected_before_;
    for (bft::ReplicaId i = 0; i < n(); ++i)
        if (is_up(i) && is_honest(i))
            for (const auto& [kind, count] : nodes_[i].replica->detected())
                total[std::string(bft::misbehaviour_name(kind))] += count;
    return total;
}

bool NodeCluster::partitioned(uint32_t from, uint32_t to) const {
    if (!partition_ || from >= kClientBase || to >= kClientBase) return false;
    return partition_->count(from) != partition_->count(to);
}

bool NodeCluster::lost_first_copy(uint32_t from, uint32_t to, const std::string& frame) {
    if (!config_.requests_first_reach || from < kClientBase || to >= kClientBase) return false;
    if (message_type(frame) != crypto::MessageType::kRequest) return false;
    const uint64_t first = request_first_sent_.emplace(crypto::sha256(frame), now_).first->second;
    if (first != now_ || to == *config_.requests_first_reach) return false;
    ++first_copies_lost_;
    return true;
}

void NodeCluster::send(uint32_t from, uint32_t to, std::string frame) {
    if (from < kClientBase && config_.protocol == bft::Protocol::kPbft) watch_.record(frame, from, now_, Signers(*this));
    std::uniform_real_distribution<double> coin(0.0, 1.0);
    std::uniform_int_distribution<uint32_t> delay(faults_.delay_min_ticks, faults_.delay_max_ticks);
    // Draw every random number whatever the outcome, so one decision never shifts the others.
    const bool lost = coin(rng_) < faults_.drop;
    const bool twice = coin(rng_) < faults_.duplicate;
    const uint64_t d1 = delay(rng_), d2 = delay(rng_);
    if (lost || partitioned(from, to) || lost_first_copy(from, to, frame)) return;
    uint64_t extra = 0;
    if (auto s = slow_.find(from); s != slow_.end() && held_back(frame, s->second.only)) extra += s->second.extra_ticks;
    if (auto s = slow_to_.find(to); s != slow_to_.end() && held_back(frame, s->second.only)) extra += s->second.extra_ticks;
    if (extra > 0) ++slowed_messages_;
    if (twice) in_flight_.emplace(std::make_pair(now_ + 1 + d2 + extra, order_++), Message{from, to, frame});
    in_flight_.emplace(std::make_pair(now_ + 1 + d1 + extra, order_++), Message{from, to, std::move(frame)});
}

void NodeCluster::deliver(Message m) {
    if (m.to >= kClientBase) {
        clients_[m.to - kClientBase].inbox.emplace_back(m.from, std::move(m.frame));
        return;
    }
    Node& node = nodes_[m.to];
    if (!node.replica) return;  // a message to a process that is not running is lost
    node.inbox.emplace_back(m.from >= kClientBase ? Network::client_routing_id(m.from - kClientBase)
                                                  : Network::peer_routing_id(m.from),
                            std::move(m.frame));
}

void NodeCluster::step() { step_without(std::nullopt); }

void NodeCluster::wait_for_frames(uint32_t c, client::Duration max_wait) {
    // One wait at a time: a step never enters the waiting client, and other clients only
    // poll(0), so a second wait would mean a synchronous call from inside a step.
    TALLY_ASSERT(!waiting_);
    waiting_ = c;
    const uint64_t tick_ms = config_.consensus.tick_ms;
    const uint64_t steps = (static_cast<uint64_t>(max_wait.count()) + tick_ms - 1) / tick_ms;
    for (uint64_t s = 0; s < steps && clients_[c].inbox.empty(); ++s) step_without(c);
    waiting_.reset();
}

void NodeCluster::step_without(std::optional<uint32_t> waiting) {
    ++now_;
    clock_->set_ticks(now_);
    while (!in_flight_.empty() && in_flight_.begin()->first.first <= now_) {
        Message m = std::move(in_flight_.begin()->second);
        in_flight_.erase(in_flight_.begin());
        deliver(std::move(m));
    }
    for (bft::ReplicaId i = 0; i < n(); ++i) {
        Node& node = nodes_[i];
        if (!node.replica) continue;
        if (auto turned = node.replica->turn(); !turned) {
            // tallyd exits here: the replica stops rather than go on from state it cannot trust.
            problem("replica " + std::to_string(i) + " stopped: " + turned.error().code + ": " +
                    turned.error().message);
            crash(i, CrashKind::kProcess);
            continue;
        }
        if (is_honest(i) && config_.protocol == bft::Protocol::kPbft)
            if (auto* pbft = dynamic_cast<const bft::pbft::PbftEngine*>(&node.replica->engine()))
                pbft->check_invariants();
        watch_blocks(i);
    }
    for (uint32_t c = 0; c < clients_.size(); ++c) {
        if (c == waiting) continue;
        clients_[c].client->poll(client::Duration{0});
        client_act(c);
    }
}

bool NodeCluster::run_until(const std::function<bool()>& done, uint64_t max_ticks) {
    for (uint64_t t = 0; t < max_ticks && !done(); ++t) step();
    return done();
}

// Agreement as it happens: every block an honest replica holds is compared with the first
// block any honest replica held at that height, ever.
void NodeCluster::watch_blocks(bft::ReplicaId id) {
    Node& node = nodes_[id];
    if (!is_honest(id)) return;
    const ledger::State& l = node.replica->ledger();
    node.scanned = std::min(node.scanned, l.last_seq());  // a power loss took the ledger back
    for (uint64_t h = node.scanned + 1; h <= l.last_seq(); ++h) {
        auto b = l.block(h);
        if (!b) continue;  // below a transferred snapshot
        auto [it, inserted] = blocks_seen_.emplace(h, std::make_pair(b->hash(), id));
        if (!inserted && it->second.first != b->hash())
            problem("replicas " + std::to_string(it->second.second) + " and " + std::to_string(id) +
                    " held different blocks at height " + std::to_string(h));
    }
    node.scanned = l.last_seq();
}

void NodeCluster::client_act(uint32_t c) {
    SimClient& client = clients_[c];
    if (client.pending || client.remaining == 0) return;
    std::uniform_int_distribution<uint32_t> pick(0, static_cast<uint32_t>(clients_.size()) - 2);
    std::uniform_int_distribution<uint64_t> amount(1, 1000);
    std::uniform_real_distribution<double> coin(0.0, 1.0);
    uint32_t to = pick(rng_);
    if (to >= c) ++to;
    ClientOp op;
    op.client = c;
    op.to_client = to;
    op.amount = amount(rng_);
    op.invoke_tick = now_;
    op.is_read = coin(rng_) < config_.read_fraction;
    std::string envelope;
    if (op.is_read) {
        op.nonce = client.next_query_id++;
        envelope = ledger::make_balance_query(*client.key, clients_[to].key->public_key(), op.nonce);
    } else {
        op.nonce = client.next_nonce;
        envelope = ledger::make_transfer(*client.key, clients_[to].key->public_key(), op.amount, op.nonce);
    }
    op.tx_id = ledger::decode_tx(envelope)->id;
    const size_t index = history_.size();
    history_.push_back(op);
    client.pending = index;
    // The real client's quorum decides (client/reply_quorum.h); it retransmits until then.
    auto submitted = client.client->submit_async(
        std::move(envelope),
        [this, c, index](const Result<client::OrderedResult>& result) {
            SimClient& client = clients_[c];
            client.pending.reset();
            if (!result) {
                problem("client " + std::to_string(c) + "'s request failed: " + result.error().message);
                return;
            }
            ClientOp& op = history_[index];
            op.return_tick = now_;
            op.result = static_cast<ledger::ResultCode>(result->result);
            op.seq = result->seq;
            op.read_balance = result->value;
            op.read_nonce = result->account_nonce;
            --client.remaining;
            if (!op.is_read && ledger::consumes_nonce(op.result)) ++client.next_nonce;
        },
        std::chrono::hours(24 * 365));  // a simulated client waits as long as it takes
    if (!submitted) problem("client " + std::to_string(c) + " cannot submit: " + submitted.error().message);
}

Result<client::BalanceResult> NodeCluster::balance(uint32_t c, uint32_t of, client::Consistency consistency,
                                                   client::Duration timeout, uint32_t node) {
    ClientOp op;
    op.client = c;
    op.to_client = of;
    op.is_read = true;
    op.invoke_tick = now_;
    auto result = clients_[c].client->balance(clients_[of].key->public_key(), consistency, timeout, node);
    if (!result || result->served != client::Consistency::kLinearizable) return result;
    // The real client's ordered query carries a key of its own: its id is not the history's
    // business (the checks match reads by account).
    op.return_tick = now_;
    op.result = result->exists ? ledger::ResultCode::kOk : ledger::ResultCode::kUnknownAccount;
    op.seq = result->seq;
    op.read_balance = result->balance;
    op.read_nonce = result->nonce;
    history_.push_back(op);
    return result;
}

Result<client::TransferResult> NodeCluster::transfer(uint32_t c, uint32_t to, uint64_t amount,
                                                     client::Duration timeout) {
    SimClient& sim = clients_[c];
    if (sim.pending) return make_error("busy", "client " + std::to_string(c) + " has its own request outstanding");
    ClientOp op;
    op.client = c;
    op.to_client = to;
    op.amount = amount;
    op.invoke_tick = now_;
    // The nonce the client will read (its account's, + 1) is the one this cluster tracks; the
    // op goes in the history before the call, so that its outcome is unknown if it times out.
    op.nonce = sim.next_nonce;
    const size_t index = history_.size();
    history_.push_back(op);
    auto result = sim.client->transfer(*sim.key, clients_[to].key->public_key(), amount, std::nullopt, timeout);
    if (!result) return result;
    ClientOp& done = history_[index];
    if (result->nonce != done.nonce)
        problem("client " + std::to_string(c) + " read nonce " + std::to_string(result->nonce - 1) +
                " for its account, which has used " + std::to_string(done.nonce - 1));
    done.nonce = result->nonce;
    done.tx_id = result->tx_id;
    done.return_tick = now_;
    done.result = static_cast<ledger::ResultCode>(result->result);
    done.seq = result->seq;
    if (ledger::consumes_nonce(done.result)) sim.next_nonce = done.nonce + 1;
    return result;
}

void NodeCluster::add_requests(uint32_t per_client) {
    for (auto& c : clients_) c.remaining += per_client;
}

bool NodeCluster::clients_done() const {
    for (const auto& c : clients_)
        if (c.remaining > 0 || c.pending) return false;
    return true;
}

client::ReplyCounters NodeCluster::client_counters() const {
    client::ReplyCounters total;
    for (const auto& c : clients_) total += c.client->counters();
    return total;
}

std::vector<std::string> NodeCluster::check_safety() const {
    std::vector<std::string> problems = problems_;
    problems.insert(problems.end(), watch_.contradictions().begin(), watch_.contradictions().end());
    std::map<uint64_t, std::pair<crypto::Hash, bft::ReplicaId>> blocks = blocks_seen_;
    for (bft::ReplicaId i = 0; i < n(); ++i) {
        if (!is_honest(i) || !is_up(i)) continue;
        const ledger::State& l = ledger(i);
        for (uint64_t h = 1; h <= l.last_seq(); ++h) {
            auto b = l.block(h);
            if (!b) continue;
            auto [it, inserted] = blocks.emplace(h, std::make_pair(b->hash(), i));
            if (!inserted && it->second.first != b->hash())
                problems.push_back("replicas " + std::to_string(it->second.second) + " and " + std::to_string(i) +
                                   " hold different blocks at height " + std::to_string(h));
        }
        if (l.total_balance() != genesis_total_)
            problems.push_back("replica " + std::to_string(i) + " does not conserve money");
        auto lacking = check_acknowledged(history_, l, i);
        problems.insert(problems.end(), lacking.begin(), lacking.end());
    }
    return problems;
}

std::vector<std::string> NodeCluster::check_converged() const {
    std::vector<crypto::PublicKey> accounts;
    for (const auto& c : clients_) accounts.push_back(c.key->public_key());
    std::vector<std::pair<uint32_t, const ledger::State*>> live;
    for (bft::ReplicaId i = 0; i < n(); ++i)
        if (is_up(i) && is_honest(i)) live.emplace_back(i, &ledger(i));
    return sim::check_converged(history_, accounts, live);
}

client::CheckResult NodeCluster::check_linearizable() const {
    std::vector<crypto::PublicKey> accounts;
    for (const auto& c : clients_) accounts.push_back(c.key->public_key());
    return check_history(history_, accounts);
}

std::string NodeCluster::replica_report() const {
    std::ostringstream out;
    for (bft::ReplicaId id = 0; id < n(); ++id) {
        out << "replica " << id << ": ";
        if (!is_up(id)) {
            out << "down\n";
            continue;
        }
        const auto s = status(id);
        out << s.role << ", " << (config_.protocol == bft::Protocol::kRaft ? "term " : "view ") << s.view
            << (s.view_changing ? " (changing)" : "") << ", executed " << s.last_executed << ", ledger at "
            << ledger(id).last_seq() << (s.recovering ? ", recovering" : "") << "\n";
    }
    return out.str();
}

std::string NodeCluster::describe() const {
    std::ostringstream s;
    s << "node sim: protocol=" << bft::protocol_name(config_.protocol) << " seed=" << config_.seed
      << " f=" << config_.f;
    if (config_.consensus.lease_reads) s << " lease-reads";
    for (const auto& [id, behaviours] : config_.traitors) s << " traitor=" << id << ":" << behaviours;
    s << " clients=" << config_.clients << " ops=" << config_.ops_per_client << " drop=" << config_.faults.drop
      << " duplicate=" << config_.faults.duplicate << " delay=" << config_.faults.delay_min_ticks << ".."
      << config_.faults.delay_max_ticks;
    return s.str();
}

}  // namespace tally::sim
