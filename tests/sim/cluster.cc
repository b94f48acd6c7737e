// The deterministic simulator. See cluster.h.
#include "sim/cluster.h"
#include "sim/wire.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <sstream>

#include "bft/pbft/messages.h"
#include "bft/pbft/engine.h"
#include "bft/pbft/stored_records.h"
#include "bft/quorum.h"
#include "node/certified_replay.h"
#include "crypto/assert.h"
#include "crypto/envelope.h"
#include "crypto/hash.h"
#include "ledger/tx.h"

namespace tally::sim {

namespace {
constexpr size_t kSnapshotChunkBytes = 4096;  // a few dozen records a piece
}  // namespace

Cluster::Cluster(const SimConfig& config)
    : config_(config), faults_(config.faults), rng_(config.seed), watch_({}, false) {
    uint32_t n = bft::ByzantineQuorum{config_.f}.n();
    for (uint32_t i = 0; i < n; ++i) {
        Replica r;
        r.key = std::make_unique<crypto::KeyPair>(crypto::KeyPair::from_seed(sim_key_seed(config_.seed, 0, i)));
        replica_keys_.push_back(r.key->public_key());
        replicas_.push_back(std::move(r));
    }
    watch_ = SignedWatch(replica_keys_, std::getenv("TALLY_SIM_TRACE") != nullptr);
    ledger::Genesis genesis;
    for (uint32_t c = 0; c < config_.clients; ++c) {
        Client client;
        client.key = std::make_unique<crypto::KeyPair>(crypto::KeyPair::from_seed(sim_key_seed(config_.seed, 1, c)));
        client.remaining = config_.transfers_per_client;
        genesis.accounts.push_back(ledger::Account{client.key->public_key(), kClientBalance, 0});
        genesis_total_ += kClientBalance;
        clients_.push_back(std::move(client));
    }
    genesis_ = genesis;
    for (uint32_t i = 0; i < n; ++i) {
        auto state = ledger::State::open(":memory:", genesis);
        TALLY_ASSERT(state.ok());
        replicas_[i].ledger = std::move(state).value();
        sync_ledger(i);
        start_engine(i);
    }
}

Cluster::~Cluster() = default;

namespace {
// TALLY_SIM_TRACE=1 prints what each replica signs, executes, and when it crashes or starts:
// enough to read a failing seed's story (it replays exactly). TALLY_SIM_TRACE=messages adds
// every message each replica sends and receives.
bool tracing() {
    static const bool on = std::getenv("TALLY_SIM_TRACE") != nullptr;
    return on;
}
bool tracing_messages() {
    static const bool on = tracing() && std::string(std::getenv("TALLY_SIM_TRACE")) == "messages";
    return on;
}
}  // namespace

void Cluster::start_engine(bft::ReplicaId id) {
    Replica& r = replicas_[id];
    bft::pbft::Config c;
    c.id = id;
    c.replicas = replica_keys_;
    c.f = config_.f;
    c.batch_size_max = config_.batch_size_max;
    c.pipeline_depth = config_.pipeline_depth;
    c.checkpoint_interval = config_.checkpoint_interval;
    c.watermark_window = config_.watermark_window;
    c.view_change_timeout_ticks = config_.view_change_timeout_ticks;
    c.retransmit_ticks = config_.retransmit_ticks;
    r.engine = bft::pbft::make_engine(c, *r.key, authenticator_);
    if (auto t = config_.traitors.find(id); t != config_.traitors.end()) {
        r.engine = std::make_unique<node::TraitorEngine>(std::move(r.engine), t->second, *r.key, replica_keys_, id,
                                                         config_.seed * 1000003 + id);
    }
    if (auto w = config_.wrap.find(id); w != config_.wrap.end()) {
        WrapContext context{id, std::move(r.engine), c, r.key.get(), &replica_keys_, &genesis_,
                            config_.seed * 1000003 + id};
        r.engine = w->second(context);
    }
    r.fetching.reset();
    // As tallyd: a ledger that stopped at a checkpoint serves it from the start.
    const uint64_t last = r.ledger->last_seq();
    if (last > 0 && last % config_.checkpoint_interval == 0) r.snapshots[last] = r.ledger->snapshot_point();
    std::vector<std::pair<std::string, std::string>> records(r.store.begin(), r.store.end());
    // What an honest replica left in its store, after any crash or power loss, is what tallyd
    // accepts at start (node/replica.cc refuses a store that fails this check).
    if (is_honest(id)) {
        if (auto checked = bft::pbft::check_stored_records(records, config_.watermark_window); !checked)
            watch_.add("replica " + std::to_string(id) + "'s store at its restart would be refused by tallyd: " +
                                      checked.error().message);
    }
    if (tracing())
        std::fprintf(stderr, "@%llu r%u start: ledger at %llu, %zu records\n", (unsigned long long)now_, id,
                     (unsigned long long)last, records.size());
    drain(id, r.engine->on_start(records, r.ledger->last_seq(), r.ledger->last_block().hash(),
                                 node::certificates_in(*r.ledger)));
}

void Cluster::sync_ledger(bft::ReplicaId id) {
    Replica& r = replicas_[id];
    if (!config_.volatile_crashes) return;  // never read
    r.ledger_image = r.ledger->image();
    r.ledger_synced_seq = r.ledger->last_seq();
}

void Cluster::crash(bft::ReplicaId id, CrashKind kind) {
    Replica& r = replicas_[id];
    if (tracing())
        std::fprintf(stderr, "@%llu r%u %s\n", (unsigned long long)now_, id,
                     kind == CrashKind::kPowerLoss ? "power loss" : "crash");
    r.up = false;
    r.engine.reset();
    if (config_.volatile_crashes) r.snapshots.clear();  // kept in the process's memory
    if (kind == CrashKind::kPowerLoss) {
        r.store = r.durable;
        if (config_.volatile_crashes) {
            auto ledger = ledger::State::open_image(r.ledger_image);
            TALLY_ASSERT(ledger.ok());
            r.ledger = std::move(ledger).value();
            // What it delivered above its last sync, it no longer knows it delivered: the rule
            // it keeps is the one on its stored votes (never two for one slot). It may vote
            // again at those seqs, in a view below the one they were decided in, harmlessly:
            // they were decided by a quorum it was not part of (it kept no vote there), whose
            // honest members never vote in a lower view (seed 9195801441: a replica that had
            // caught up to seqs decided in view 1, without ever entering view 1, lost that
            // ledger tail and proposed other batches there as view 0's primary). That no two
            // replicas deliver different batches stays checked across every restart.
            r.delivered.erase(r.delivered.upper_bound(r.ledger->last_seq()), r.delivered.end());
        }
    }
    r.unsynced.clear();
    for (auto it = in_flight_.begin(); it != in_flight_.end();) {
        it = it->second.to == id ? in_flight_.erase(it) : std::next(it);
    }
}

void Cluster::restart(bft::ReplicaId id) {
    replicas_[id].up = true;
    start_engine(id);
}

void Cluster::restart_with_amnesia(bft::ReplicaId id) {
    replicas_[id].store.clear();
    replicas_[id].durable.clear();
    restart(id);
}

void Cluster::isolate(std::set<bft::ReplicaId> group) { partition_ = std::move(group); }

void Cluster::heal() {
    partition_.reset();
    faults_.drop = 0;
    slow_.clear();
    slow_to_.clear();
}

void Cluster::slow_to(bft::ReplicaId id, uint64_t extra_ticks, std::set<crypto::MessageType> only) {
    if (extra_ticks == 0) {
        slow_to_.erase(id);
    } else {
        slow_to_[id] = Slowness{extra_ticks, std::move(only)};
    }
}

void Cluster::slow(bft::ReplicaId id, uint64_t extra_ticks, std::set<crypto::MessageType> only) {
    if (extra_ticks == 0) {
        slow_.erase(id);
    } else {
        slow_[id] = Slowness{extra_ticks, std::move(only)};
    }
}

size_t Cluster::in_flight_from(bft::ReplicaId from, std::optional<crypto::MessageType> type) const {
    size_t count = 0;
    for (const auto& [key, m] : in_flight_)
        if (m.from == from && (!type || message_type(m.envelope) == type)) ++count;
    return count;
}

bool Cluster::is_traitor(uint32_t id, node::Behaviour behaviour) const {
    auto t = config_.traitors.find(id);
    return t != config_.traitors.end() &&
           std::find(t->second.begin(), t->second.end(), behaviour) != t->second.end();
}

bool Cluster::partitioned(uint32_t from, uint32_t to) const {
    if (!partition_ || from >= kClientBase || to >= kClientBase) return false;
    return partition_->count(from) != partition_->count(to);
}

void Cluster::send(uint32_t from, uint32_t to, std::string envelope, std::optional<ClientOp> reply) {
    if (reply && from < n()) {
        if (is_traitor(from, node::Behaviour::kWrongReply)) {
            // wrong-reply: a plausible lie — another result, another seq, another balance.
            reply->result = reply->result == ledger::ResultCode::kOk ? ledger::ResultCode::kInsufficientFunds
                                                                      : ledger::ResultCode::kOk;
            reply->seq += 1;
            reply->read_balance += 7;
        }
    }
    std::uniform_real_distribution<double> coin(0.0, 1.0);
    std::uniform_int_distribution<uint32_t> delay(faults_.delay_min_ticks, faults_.delay_max_ticks);
    // Draw every random number whatever the outcome, so one decision never shifts the others.
    bool lost = coin(rng_) < faults_.drop;
    bool twice = coin(rng_) < faults_.duplicate;
    uint64_t d1 = delay(rng_), d2 = delay(rng_);
    if (lost || partitioned(from, to)) return;
    uint64_t extra = 0;
    if (auto s = slow_.find(from); s != slow_.end()) {
        if (held_back(envelope, s->second.only)) {
            extra = s->second.extra_ticks;
            ++slowed_messages_;
        }
    }
    if (auto s = slow_to_.find(to); s != slow_to_.end()) {
        // A replica that hears late (slow_to): the same rule, by receiver.
        if (held_back(envelope, s->second.only)) {
            extra += s->second.extra_ticks;
            ++slowed_messages_;
        }
    }
    Message m{now_ + 1 + d1 + extra, order_++, from, to, std::move(envelope), std::move(reply)};
    if (twice) {
        Message copy = m;
        copy.deliver_tick = now_ + 1 + d2 + extra;
        copy.order = order_++;
        in_flight_.emplace(std::make_pair(copy.deliver_tick, copy.order), std::move(copy));
    }
    in_flight_.emplace(std::make_pair(m.deliver_tick, m.order), std::move(m));
}

void Cluster::step() {
    ++now_;
    while (!in_flight_.empty() && in_flight_.begin()->first.first <= now_) {
        Message m = std::move(in_flight_.begin()->second);
        in_flight_.erase(in_flight_.begin());
        deliver(m);
    }
    for (bft::ReplicaId i = 0; i < n(); ++i) {
        if (replicas_[i].up) drain(i, replicas_[i].engine->on_tick());
    }
    // Replicas fetching state retry each tick (a peer may have come back).
    for (bft::ReplicaId i = 0; i < n(); ++i) {
        if (!replicas_[i].up || !replicas_[i].fetching) continue;
        std::deque<bft::Output> pending;
        try_fetch(i, pending);
        while (!pending.empty()) {
            drain(i, std::move(pending.front()));
            pending.pop_front();
        }
    }
    for (uint32_t c = 0; c < clients_.size(); ++c) client_tick(c);
}

bool Cluster::run_until(const std::function<bool()>& done, uint64_t max_ticks) {
    for (uint64_t t = 0; t < max_ticks && !done(); ++t) step();
    return done();
}

void Cluster::deliver(const Message& m) {
    if (m.to >= kClientBase) {
        if (m.reply) client_reply(m.to - kClientBase, m.from, *m.reply);
        return;
    }
    if (!replicas_[m.to].up) return;
    deliver_to_replica(m.to, m);
}

Result<crypto::Envelope> Cluster::open_envelope(const std::string& bytes) {
    constexpr size_t kOpenedMax = 8192;
    crypto::Hash key = crypto::sha256(bytes);
    if (auto it = opened_.find(key); it != opened_.end()) return it->second;
    auto env = crypto::open(bytes);
    if (!env) return env;
    opened_.emplace(key, *env);
    opened_order_.push_back(key);
    if (opened_order_.size() > kOpenedMax) {
        opened_.erase(opened_order_.front());
        opened_order_.pop_front();
    }
    return env;
}

// What tallyd does with an incoming frame, minus the sockets.
void Cluster::deliver_to_replica(bft::ReplicaId id, const Message& m) {
    Replica& r = replicas_[id];
    auto env = open_envelope(m.envelope);
    if (!env) {
        ++detected_["rejected_" + env.error().code];
        return;
    }
    if (env->type == crypto::MessageType::kRequest) {
        auto tx = ledger::decode_tx(m.envelope);
        if (!tx) return;
        // The reply cache: an executed request is answered from the ledger, never re-run.
        if (auto done = r.ledger->transaction(tx->id)) {
            ClientOp reply;
            reply.tx_id = tx->id;
            reply.result = done->code;
            reply.seq = done->seq;
            send(id, m.from, {}, reply);
            return;
        }
        auto info = authenticator_.authenticate(m.envelope);
        if (!info) return;
        drain(id, r.engine->on_client_request(bft::ClientRequest{*info, m.envelope}));
        return;
    }
    bft::ReplicaId from = n();
    for (bft::ReplicaId i = 0; i < n(); ++i)
        if (replica_keys_[i] == env->sender) from = i;
    if (tracing_messages())
        std::fprintf(stderr, "@%llu r%u <- r%u %s\n", (unsigned long long)now_, id, m.from,
                     std::string(crypto::type_name(env->type)).c_str());
    if (from == n()) {
        ++detected_["rejected_wrong_sender"];
        return;
    }
    drain(id, r.engine->on_message(from, *env, m.envelope));
}

void Cluster::apply(std::map<std::string, std::string>& store, const bft::PersistOp& op) {
    if (const auto* put = std::get_if<bft::PersistPut>(&op)) {
        store[put->key] = put->value;
    } else {
        const auto& erase = std::get<bft::PersistErase>(op);
        store.erase(store.lower_bound(erase.from), store.lower_bound(erase.to));
    }
}

void Cluster::drain(bft::ReplicaId id, bft::Output first) {
    Replica& r = replicas_[id];
    std::deque<bft::Output> pending;
    pending.push_back(std::move(first));
    while (!pending.empty()) {
        // After every input to an honest engine: its own invariants (aborts when one breaks).
        if (is_honest(id)) {
            if (auto* pbft = dynamic_cast<const bft::pbft::PbftEngine*>(r.engine.get()))
                pbft->check_invariants();
        }
        bft::Output out = std::move(pending.front());
        pending.pop_front();
        auto send_all = [&](std::vector<bft::Outgoing>& sends) {
            for (auto& msg : sends) {
                if (tracing_messages()) {
                    crypto::OpenOptions header_only;
                    header_only.verify_signature = false;
                    if (auto e = crypto::open(msg.envelope, header_only))
                        std::fprintf(stderr, "@%llu r%u -> %s %s\n", (unsigned long long)now_, id,
                                     msg.to == bft::kAllReplicas ? "all" : std::to_string(msg.to).c_str(),
                                     std::string(crypto::type_name(e->type)).c_str());
                }
                record_signed(msg.envelope, id);
                if (msg.to == bft::kAllReplicas) {
                    for (bft::ReplicaId to = 0; to < n(); ++to)
                        if (to != id) send(id, to, msg.envelope);
                } else {
                    send(id, msg.to, std::move(msg.envelope));
                }
            }
        };
        // early. what relies on none of this output's writes (engine.h)
        send_all(out.send_early);
        // 0. the ledger durable through what the output vouches for
        if (out.ledger_sync_through > r.ledger_synced_seq) sync_ledger(id);
        // 1. persist
        for (auto& op : out.persist) {
            apply(r.store, op);
            r.unsynced.push_back(std::move(op));
        }
        if (out.sync) {
            for (const auto& op : r.unsynced) apply(r.durable, op);
            r.unsynced.clear();
        }
        // 2. send
        send_all(out.send);
        // 3. execute
        for (const auto& batch : out.commit) execute(id, batch, pending);
        // 4. state transfer
        if (out.fetch_snapshot) {
            r.fetching = out.fetch_snapshot;
            try_fetch(id, pending);
        }
        // 5. requests a peer forwarded: the reply cache first, as for a client's own (the
        //    node's whole admission: node/replica_clients.cc, on_forwarded)
        for (const auto& request : out.forwarded) {
            auto tx = ledger::decode_tx(request.payload);
            if (tx && r.ledger->transaction(tx->id)) continue;
            pending.push_back(r.engine->on_client_request(request));
        }
    }
    // What honest replicas detect in others (a traitor's own detections say nothing).
    for (const auto& d : r.engine->take_detected())
        if (is_honest(id)) ++detected_[std::string(bft::misbehaviour_name(d.kind))];
}

// The watch's questions about a signer, answered from the cluster's replicas.
class Cluster::Signers final : public SignedWatch::Signers {
public:
    explicit Signers(const Cluster& cluster) : cluster_(cluster) {}
    bool honest(bft::ReplicaId id) const override { return cluster_.is_honest(id); }
    std::vector<std::pair<std::string, std::string>> stored(bft::ReplicaId id) const override {
        const auto& store = cluster_.replicas_[id].store;
        return {store.begin(), store.end()};
    }
    std::optional<crypto::Hash> delivered(bft::ReplicaId id, uint64_t seq) const override {
        const auto& delivered = cluster_.replicas_[id].delivered;
        if (auto d = delivered.find(seq); d != delivered.end()) return d->second;
        return std::nullopt;
    }

private:
    const Cluster& cluster_;
};

void Cluster::record_signed(const std::string& envelope, bft::ReplicaId sender) {
    watch_.record(envelope, sender, now_, Signers(*this));
}

void Cluster::execute(bft::ReplicaId id, const bft::Committed& batch, std::deque<bft::Output>& pending) {
    Replica& r = replicas_[id];
    auto applied = r.ledger->apply_block(batch.seq, batch.view, batch.requests, ledger::Verify::kTrusted,
                                          batch.certificate);
    TALLY_ASSERT(applied.ok());
    if (config_.ledger_autosync_blocks > 0 && batch.seq % config_.ledger_autosync_blocks == 0) sync_ledger(id);
    if (is_honest(id)) {
        // What was delivered never changes: one batch per seq, across replicas and restarts.
        crypto::Hash d = bft::pbft::batch_digest(batch.requests);
        if (tracing())
            std::fprintf(stderr, "@%llu r%u executes v%llu s%llu %s\n", (unsigned long long)now_, id,
                         (unsigned long long)batch.view, (unsigned long long)batch.seq, short_hex(d).c_str());
        r.delivered[batch.seq] = d;
        auto [it, inserted] = delivered_.emplace(batch.seq, std::make_pair(d, id));
        if (!inserted && it->second.first != d)
            watch_.add("replicas " + std::to_string(it->second.second) + " and " +
                                      std::to_string(id) + " delivered different batches at seq " +
                                      std::to_string(batch.seq));
    }
    for (size_t i = 0; i < batch.requests.size(); ++i) {
        auto tx = ledger::decode_tx(batch.requests[i]);
        if (!tx) continue;
        for (uint32_t c = 0; c < clients_.size(); ++c) {
            if (clients_[c].key->public_key() != tx->sender) continue;
            ClientOp reply;
            reply.tx_id = applied->outcomes[i].tx_id;
            reply.result = applied->outcomes[i].code;
            reply.seq = applied->outcomes[i].seq;
            reply.read_balance = applied->outcomes[i].value;
            reply.read_nonce = applied->outcomes[i].nonce;
            send(id, kClientBase + c, {}, reply);
        }
    }
    if (batch.seq % config_.checkpoint_interval == 0) {
        r.snapshots[batch.seq] = r.ledger->snapshot_point();
        while (r.snapshots.size() > 4) r.snapshots.erase(r.snapshots.begin());
    }
    pending.push_back(r.engine->on_executed(batch.seq, applied->header.hash()));
}

// State transfer: ask the peers of the checkpoint proof in turn for their snapshot at the
// checkpoint; install the first whose digest is the proven one.
void Cluster::try_fetch(bft::ReplicaId id, std::deque<bft::Output>& pending) {
    Replica& r = replicas_[id];
    if (!r.fetching) return;
    for (bft::ReplicaId peer : r.fetching->peers) {
        if (!replicas_[peer].up || partitioned(peer, id)) continue;
        auto it = replicas_[peer].snapshots.find(r.fetching->seq);
        if (it == replicas_[peer].snapshots.end()) continue;
        // Small pieces, so that every transfer crosses several of them.
        std::function<std::string(std::string)> in_transit;
        if (is_traitor(peer, node::Behaviour::kLyingSnapshot)) {
            // Each attempt another of its lies (node/traitor.h), the same in every piece.
            const auto lie = node::kSnapshotLies[(config_.seed + detected_["bad_snapshot"]) %
                                                 std::size(node::kSnapshotLies)];
            in_transit = [lie](std::string chunk) { return node::lie_in_snapshot_chunk(std::move(chunk), lie); };
        }
        if (!ledger::copy_snapshot(*replicas_[peer].ledger, it->second, *r.ledger,
                                   r.fetching->digest, kSnapshotChunkBytes, in_transit)
                 .ok()) {
            ++detected_["bad_snapshot"];
            continue;
        }
        return restored(id, pending);
    }
    // No peer holds that snapshot (snapshots live in a process's memory, and every peer may
    // have restarted since): the blocks up to the checkpoint instead, by their certificates,
    // from the peers' ledgers, as the node fetches them (node/certified_replay.h).
    const size_t quorum = bft::ByzantineQuorum{config_.f}.quorum();
    for (bft::ReplicaId peer : r.fetching->peers) {
        if (!replicas_[peer].up || partitioned(peer, id)) continue;
        while (r.ledger->last_seq() < r.fetching->seq) {
            auto block = replicas_[peer].ledger->certified_block(r.ledger->last_seq() + 1);
            if (!block || block->certificate.empty()) break;  // not held whole there
            auto executed = node::execute_certified_block(*r.ledger, *block, replica_keys_, quorum);
            if (!executed) {
                ++detected_["bad_blocks"];
                break;
            }
        }
        if (r.ledger->last_seq() >= r.fetching->seq) return restored(id, pending);
    }
}

void Cluster::restored(bft::ReplicaId id, std::deque<bft::Output>& pending) {
    Replica& r = replicas_[id];
    ++state_transfers_;
    uint64_t seq = r.fetching->seq;
    r.fetching.reset();
    r.snapshots[seq] = r.ledger->snapshot_point();
    pending.push_back(r.engine->on_state_restored(seq, r.ledger->last_block().hash()));
}

void Cluster::client_tick(uint32_t c) {
    Client& client = clients_[c];
    if (client.pending) {
        if (now_ - client.sent_tick >= config_.client_retransmit_ticks) {
            client.sent_tick = now_;
            for (bft::ReplicaId i = 0; i < n(); ++i)
                if (!config_.clients_send_to || *config_.clients_send_to == i) send(kClientBase + c, i, client.envelope);
        }
        return;
    }
    if (client.remaining == 0) return;
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
    if (op.is_read) {
        op.nonce = client.next_query_id++;
        client.envelope = ledger::make_balance_query(*client.key, clients_[to].key->public_key(), op.nonce);
    } else {
        op.nonce = client.next_nonce;
        client.envelope = ledger::make_transfer(*client.key, clients_[to].key->public_key(), op.amount,
                                                client.next_nonce);
    }
    op.tx_id = ledger::decode_tx(client.envelope)->id;
    client.pending = history_.size();
    history_.push_back(op);
    client.replies.clear();
    client.sent_tick = now_;
    for (bft::ReplicaId i = 0; i < n(); ++i)
        if (!config_.clients_send_to || *config_.clients_send_to == i) send(kClientBase + c, i, client.envelope);
}

// A client accepts a result once the protocol's client quorum (bft/quorum.h; PBFT: f+1) of
// replicas sent matching replies.
void Cluster::client_reply(uint32_t c, uint32_t replica, const ClientOp& reply) {
    Client& client = clients_[c];
    if (!client.pending || replica >= n()) return;
    ClientOp& op = history_[*client.pending];
    if (reply.tx_id != op.tx_id) return;
    // Replies match on everything the client is told: result, seq and, for reads, the value.
    client.replies[replica] = {reply.result, reply.seq, reply.read_balance, reply.read_nonce};
    uint32_t matching = 0;
    for (const auto& [r, answer] : client.replies)
        if (answer == client.replies[replica]) ++matching;
    if (matching < bft::Quorums(bft::Protocol::kPbft, config_.f).client().ordered) return;
    op.return_tick = now_;
    op.result = reply.result;
    op.seq = reply.seq;
    op.read_balance = reply.read_balance;
    op.read_nonce = reply.read_nonce;
    client.pending.reset();
    --client.remaining;
    if (!op.is_read && ledger::consumes_nonce(reply.result)) ++client.next_nonce;
}

void Cluster::add_requests(uint32_t per_client) {
    for (auto& c : clients_) c.remaining += per_client;
}

bool Cluster::clients_done() const {
    for (const auto& c : clients_)
        if (c.remaining > 0 || c.pending) return false;
    return true;
}

std::vector<std::string> Cluster::check_safety() const {
    std::vector<std::string> problems = watch_.contradictions();
    // Agreement: one block per height across replicas.
    std::map<uint64_t, std::pair<crypto::Hash, bft::ReplicaId>> blocks;
    for (bft::ReplicaId i = 0; i < n(); ++i) {
        if (!is_honest(i)) continue;
        const auto& l = *replicas_[i].ledger;
        for (uint64_t h = 1; h <= l.last_seq(); ++h) {
            auto b = l.block(h);
            if (!b) continue;  // below a transferred snapshot
            auto [it, inserted] = blocks.emplace(h, std::make_pair(b->hash(), i));
            if (!inserted && it->second.first != b->hash())
                problems.push_back("replicas " + std::to_string(it->second.second) + " and " +
                                   std::to_string(i) + " hold different blocks at height " +
                                   std::to_string(h));
        }
        if (l.total_balance() != genesis_total_)
            problems.push_back("replica " + std::to_string(i) + " does not conserve money");
    }
    // Exactly once: an acknowledged ok transfer is applied, at the seq the client was told.
    for (bft::ReplicaId i = 0; i < n(); ++i) {
        if (!is_honest(i)) continue;
        auto lacking = check_acknowledged(history_, *replicas_[i].ledger, i);
        problems.insert(problems.end(), lacking.begin(), lacking.end());
    }
    return problems;
}

std::vector<std::string> Cluster::check_converged() const {
    std::vector<crypto::PublicKey> accounts;
    for (const auto& c : clients_) accounts.push_back(c.key->public_key());
    std::vector<std::pair<uint32_t, const ledger::State*>> live;
    for (bft::ReplicaId i = 0; i < n(); ++i)
        if (replicas_[i].up && is_honest(i)) live.emplace_back(i, replicas_[i].ledger.get());
    return sim::check_converged(history_, accounts, live);
}

client::CheckResult Cluster::check_linearizable() const {
    std::vector<crypto::PublicKey> accounts;
    for (const auto& c : clients_) accounts.push_back(c.key->public_key());
    return check_history(history_, accounts);
}

std::string Cluster::replica_report() const {
    std::ostringstream out;
    for (bft::ReplicaId id = 0; id < n(); ++id) {
        out << "replica " << id << ": ";
        if (!replicas_[id].up) {
            out << "down\n";
            continue;
        }
        auto s = replicas_[id].engine->status();
        out << "view " << s.view << (s.view_changing ? " (changing)" : "") << ", executed "
            << s.last_executed << ", h " << s.low_water_mark
            << (replicas_[id].fetching ? ", fetching state" : "") << "\n";
    }
    if (!detected_.empty()) {
        out << "detected by honest replicas:";
        for (const auto& [kind, count] : detected_) out << " " << kind << "=" << count;
        out << "\n";
    }
    return out.str();
}

std::string Cluster::describe() const {
    std::ostringstream s;
    s << "seed=" << config_.seed << " f=" << config_.f;
    for (const auto& [id, behaviours] : config_.traitors) {
        s << " traitor=" << id << ":";
        for (auto b : behaviours) s << node::behaviour_name(b) << ",";
    }
    s << " clients=" << config_.clients
      << " transfers=" << config_.transfers_per_client << " drop=" << config_.faults.drop
      << " duplicate=" << config_.faults.duplicate << " delay=" << config_.faults.delay_min_ticks << ".."
      << config_.faults.delay_max_ticks;
    return s.str();
}

}  // namespace tally::sim
