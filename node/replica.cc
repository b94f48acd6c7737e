// Replica: opening a replica, the event loop, and draining engine outputs in the contract's
// order (replica.h). Answers to clients are in replica_clients.cc.
#include "node/replica.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <random>

#include "bft/pbft/pbft.h"
#include "bft/pbft/stored_records.h"
#include "bft/raft/raft.h"
#include "crypto/hash.h"
#include "ledger/checkpointer.h"
#include "node/certified_replay.h"
#include "node/engine_factory.h"
#include "node/store_binding.h"
#include "node/traitor.h"

namespace tally::node {

namespace {

std::string_view view_of(const zmq::message_t& m) {
    return std::string_view(static_cast<const char*>(m.data()), m.size());
}

// The protocol is one this build runs, and `key` is replica `id`'s in the config.
Status check_identity(const api::NetworkConfig& config, bft::ReplicaId id, const crypto::KeyPair& key) {
    if (auto s = check_protocol(config); !s) return s.error();
    if (id >= config.n())
        return make_error("invalid", "replica id " + std::to_string(id) + " is not in the config (n = " +
                                         std::to_string(config.n()) + ")");
    if (key.public_key() != config.replicas[id].public_key)
        return make_error("key_mismatch", "the key's public key is not replica " + std::to_string(id) +
                                              "'s public key in network.json");
    return Ok{};
}

}  // namespace

Replica::Replica(const api::NetworkConfig& config, bft::ReplicaId id, const crypto::KeyPair& key,
                 const ReplicaOptions& options)
    : config_(config),
      id_(id),
      key_(key),
      options_(options),
      authenticator_(options.authenticator_cache_max),
      answers_(std::make_unique<HonestAnswers>()),
      routes_(options.client_routes),
      client_rates_(options.transport.client_connections),
      peer_faults_(options.peer_faults) {}

Replica::~Replica() = default;

namespace {

// What the consensus store is bound to (node/store_binding.h).
LedgerIdentity ledger_identity(const crypto::KeyPair& key, const ledger::State& ledger, bool created_now) {
    LedgerIdentity identity;
    identity.replica_key = std::string(crypto::as_bytes(key.public_key()));
    identity.ledger_id = ledger.ledger_id();
    identity.last_seq = ledger.last_seq();
    identity.created_now = created_now;
    return identity;
}

}  // namespace

Result<std::unique_ptr<Replica>> Replica::open(const api::NetworkConfig& config, bft::ReplicaId id,
                                               const crypto::KeyPair& key,
                                               const ReplicaOptions& options) {
    if (auto s = check_identity(config, id, key); !s) return s.error();
    const api::ReplicaConfig& self = config.replicas[id];

    ReplicaParts parts;
    std::error_code ec;
    std::filesystem::create_directories(self.data_dir, ec);
    if (ec) return make_error("ledger", self.data_dir + ": cannot create: " + ec.message());

    const std::string ledger_path = self.data_dir + "/ledger.db";
    parts.ledger_created = !std::filesystem::exists(ledger_path, ec);
    // Deferred: a block lost in a machine crash executes again from what consensus synced.
    auto ledger = ledger::State::open(ledger_path, config.genesis,
                                      ledger::State::Durability::kDeferred);
    if (!ledger)
        return make_error("ledger", "ledger " + self.data_dir + "/ledger.db: " + ledger.error().code +
                                        ": " + ledger.error().message);
    parts.ledger = std::move(ledger).value();
    if (!options.ledger_sync_copies_dir.empty()) {
        // Copies of the ledger as it stood at each sync: SQLite writes ledger.db only in a
        // checkpoint (after syncing the WAL), so ledger.db and the WAL at this moment are
        // exactly what the disk holds. Testing only: it copies the whole file every time.
        const std::string from = self.data_dir + "/ledger.db";
        const std::string to = options.ledger_sync_copies_dir;
        std::filesystem::create_directories(to, ec);
        parts.ledger->set_sync_observer([from, to](uint64_t seq) {
            std::error_code copy_ec;
            for (const char* suffix : {"", "-wal"}) {
                const std::string tmp = to + "/ledger.db" + suffix + ".tmp";
                if (std::filesystem::exists(from + suffix)) {
                    std::filesystem::copy_file(from + suffix, tmp,
                                               std::filesystem::copy_options::overwrite_existing, copy_ec);
                } else {
                    std::filesystem::remove(tmp, copy_ec);
                }
            }
            for (const char* suffix : {"", "-wal"}) {
                const std::string tmp = to + "/ledger.db" + suffix + ".tmp";
                if (std::filesystem::exists(tmp)) std::filesystem::rename(tmp, to + "/ledger.db" + suffix, copy_ec);
            }
            spdlog::debug("ledger durable through seq {}: copy kept in {}", seq, to);
        });
    }
    // The consensus store before the ports: a start refused for its store says so, and what to
    // do, whatever holds this replica's ports (a test's or another program's).
    auto bound = std::make_shared<Result<BoundStore>>(
        open_bound_store(self.data_dir + "/consensus.db", ledger_identity(key, *parts.ledger, parts.ledger_created),
                         options.recover, config.consensus.checkpoint_interval));
    if (!*bound && bound->error().code == "store_refused") return bound->error();
    parts.open_store = [bound](const LedgerIdentity&) { return std::move(*bound); };
    auto transport = Transport::open(config, id, key, options.transport);
    if (!transport) return transport.error();
    parts.network = std::move(transport).value();
    parts.clock = std::make_shared<SystemClock>();
    std::random_device random;  // 64 bits: PBFT's recovery request carries it (engine_factory.cc)
    parts.seed = (static_cast<uint64_t>(random()) << 32) | random();
    return open_with(config, id, key, options, std::move(parts));
}

Result<std::unique_ptr<Replica>> Replica::open_with(const api::NetworkConfig& config, bft::ReplicaId id,
                                                    const crypto::KeyPair& key,
                                                    const ReplicaOptions& options, ReplicaParts parts) {
    if (auto s = check_identity(config, id, key); !s) return s.error();
    std::unique_ptr<Replica> r(new Replica(config, id, key, options));
    r->ledger_ = std::move(parts.ledger);
    r->network_ = std::move(parts.network);
    r->clock_ = std::move(parts.clock);

    auto bound = parts.open_store(ledger_identity(key, *r->ledger_, parts.ledger_created));
    if (!bound) {
        if (bound.error().code == "store_refused") return bound.error();
        return make_error("store", bound.error().message);
    }
    if (!bound->replaced.empty())
        spdlog::warn("--recover: the old consensus store was moved to {}", bound->replaced);
    if (bound->recovering && config.protocol == bft::Protocol::kPbft)
        spdlog::warn("recovering: this replica lost its consensus store; it stays silent (no "
                     "pre-prepare, prepare, commit, view-change or new-view) until its peers commit a request "
                     "it made at this start (bft/pbft/pbft.h, Config::recovery_request)");
    if (bound->recovering && config.protocol == bft::Protocol::kRaft)
        spdlog::warn("recovering: this replica lost its term, vote and log; it neither votes nor "
                     "campaigns until every peer told it its term and it holds a leader's entry "
                     "of a term at least that high (bft/raft/raft.h, Config::recovering)");
    r->store_ = std::move(bound->store);
    // The ledger's log merges and both WALs' checkpoints staggered against the other
    // replicas' (ledger/state.h, State::stagger): a quorum never waits for every replica's
    // merging or copying at once.
    const auto replicas = static_cast<uint32_t>(config.replicas.size());
    r->ledger_->stagger(id, replicas);
    r->store_->stagger(id, replicas);
    r->ledger_seq_max_ = bound->ledger_seq_max;
    r->recovering_ = bound->recovering;
    {
        // A record that does not parse is damage, not something to skip: skipping the view
        // record or a prepared certificate could make this replica vote against itself. (run()
        // loads them again for on_start: twice a small table, once per start.)
        auto records = r->store_->load_all();
        if (!records) return make_error("store", records.error().message);
        Status checked = Ok{};
        if (config.protocol == bft::Protocol::kPbft) {
            checked = bft::pbft::check_stored_records(*records, config.consensus.watermark_window);
        } else if (bft::raft::DurableState durable; !bft::raft::read_durable(*records, durable)) {
            checked = make_error("damaged", "a Raft record (term, vote or log entry) does not decode, "
                                            "or the log has a gap");
        }
        if (!checked)
            return make_error("store_refused",
                              r->store_->path() + ": " + checked.error().message +
                                  ". The consensus store is damaged. A replica must not run on a "
                                  "consensus store that may have forgotten its votes: start it once "
                                  "with --recover (`tallyd --config NETWORK.json --id N --recover`) "
                                  "to set it aside and rejoin as a fresh replica.");
    }

    std::vector<bft::Behaviour> behaviours;  // a traitor's, for fault injection; none: honest
    if (!options.traitor.empty()) {
        std::string csv;
        for (const auto& b : options.traitor) csv += (csv.empty() ? "" : ",") + b;
        auto parsed = bft::parse_behaviours(csv);
        if (!parsed) return make_error("invalid", parsed.error().message);
        behaviours = std::move(parsed).value();
    }
    EngineOptions engine_options{r->recovering_, behaviours, options.traitor_seed};
    engine_options.seed = parts.seed;
    auto engine = make_engine(config, id, r->key_, r->authenticator_, engine_options);
    if (!engine) return engine.error();
    r->engine_ = std::move(engine).value();
    if (parts.wrap_engine) r->engine_ = parts.wrap_engine(std::move(r->engine_));
    r->answers_ = make_answers(behaviours, config.consensus.checkpoint_interval);
    std::vector<crypto::PublicKey> replica_keys;
    for (const auto& replica : config.replicas) replica_keys.push_back(replica.public_key);

    if (const auto& me = config.replicas[id]; me.metrics_port != 0) {
        auto metrics = Metrics::open(me.host, me.metrics_port, id, std::string(bft::protocol_name(config.protocol)));
        if (!metrics) return metrics.error();
        r->metrics_ = std::move(metrics).value();
    }

    WorkerPoolOptions workers = options.workers;
    workers.clients_have_own_port = r->network_->clients_have_own_port();
    workers.peer_macs = config.protocol == bft::Protocol::kRaft;  // bft/raft: seal_to
    r->workers_ = std::make_unique<WorkerPool>(workers, r->key_, replica_keys, id,
                                               r->authenticator_, r->rejections_);
    r->events_.reserve(1024);
    r->frames_.reserve(1024);
    return r;
}

Status Replica::start() {
    // Before anything else: what this replica persisted and executed before it (re)started.
    auto records = store_->load_all();
    if (!records) return make_error("store", records.error().message);
    spdlog::info("replica {} starting: {} stored records, ledger at seq {}", id_, records->size(),
                 ledger_->last_seq());
    // A ledger that stopped at a checkpoint can serve it: after a power loss of every replica,
    // those whose ledgers stopped exactly at the stable checkpoint are who can bring the others.
    if (ledger_->last_seq() > 0) keep_snapshot(ledger_->last_seq());
    // The engine's digest of a state is its block's hash: what a checkpoint signs binds the
    // whole header (prev_hash, tx_root, tx_count, state digest), so state transfer can check
    // every field of the snapshot's block against it.
    if (auto s = drain(engine_->on_start(*records, ledger_->last_seq(), ledger_->last_block().hash(),
                                         certificates_in(*ledger_)));
        !s)
        return s;
    records->clear();
    // Blocks a state transfer left out (before a restart too) are fetched in the background.
    start_backfill();
    const auto now = clock_->now();
    next_tick_ = now + std::chrono::milliseconds(config_.consensus.tick_ms);
    next_stats_ = now + std::chrono::seconds(10);
    next_metrics_ = now;
    return Ok{};
}

Status Replica::run(const std::atomic<bool>& stop) {
    if (auto s = start(); !s) return s;
    const auto tick = std::chrono::milliseconds(config_.consensus.tick_ms);
    // A clean stop (SIGTERM) first hands over what this replica leads (Engine::hand_over), and
    // goes on until its role changed or an election timeout passed.
    std::optional<Clock::TimePoint> handing_over_until;
    std::string role_at_stop;
    std::chrono::milliseconds wait{0};
    while (true) {
        if (stop.load(std::memory_order_relaxed)) {
            if (!handing_over_until) {
                role_at_stop = engine_->status().role;
                std::optional<bft::Output> out = engine_->hand_over();
                if (!out) break;
                handing_over_until = clock_->now() + tick * std::max<uint64_t>(config_.consensus.election_timeout_ticks, 1);
                spdlog::info("replica {} stops: it hands over as {} first", id_, role_at_stop);
                if (auto s = drain(std::move(*out)); !s) return s;
            } else if (engine_->status().role != role_at_stop || clock_->now() >= *handing_over_until) {
                spdlog::info("replica {} {} before it stops", id_,
                             engine_->status().role != role_at_stop ? "handed over" : "could not hand over in time");
                break;
            }
        }
        // Sleep until the next tick unless a frame or a verified event arrives first. The
        // clients' socket is not polled while the workers are behind (client_frames_max()).
        if (auto s = network_->wait(wait, client_frames_max() > 0, workers_->wake_fd()); !s) return s;
        auto next = turn();
        if (!next) return next.error();
        wait = *next;
    }
    spdlog::info("replica {} stopping", id_);
    return flush_held_writes();
}

size_t Replica::client_frames_max() const {
    // Back-pressure (ReplicaOptions::client_verify_backlog_max): the clients' socket is
    // neither polled nor read while the workers have that many frames to check.
    const size_t backlog = workers_->pending_verifies();
    return backlog >= options_.client_verify_backlog_max ? 0 : options_.client_verify_backlog_max - backlog;
}

Result<std::chrono::milliseconds> Replica::turn() {
    const auto tick = std::chrono::milliseconds(config_.consensus.tick_ms);
    inline_signs_left_ = workers_->idle() ? options_.inline_sign_max : 0;
    receive_frames(client_frames_max());
    bft::Output out;
    handle_events(out);
    const auto now = clock_->now();
    if (now >= next_tick_) {
        out.append(engine_->on_tick());
        next_tick_ += tick;
        if (next_tick_ <= now) next_tick_ = now + tick;  // after a stall, no burst of ticks
    }
    if (auto s = drain(std::move(out)); !s) return s.error();
    // A held record waits a few ticks at most for a write to go with (a round trip of votes
    // is well under a tick; in the simulator, where a tick is a step, it takes a few).
    constexpr int kHeldWritesTicks = 4;
    if (!held_writes_.empty() && now - held_writes_since_ >= kHeldWritesTicks * tick)
        if (auto s = flush_held_writes(); !s) return s.error();
    retry_state_transfer();
    backfill();
    answers_->on_turn(*this, clock_->now());
    constexpr auto kMetricsInterval = std::chrono::milliseconds(250);
    if (metrics_ && now >= next_metrics_) {
        metrics_->refresh(status_reply(), traffic_, state_transfers_);
        next_metrics_ = now + kMetricsInterval;
    }
    if (now >= next_stats_) {
        client_rates_.prune(now);
        peer_faults_.prune(now);
        log_stats();
        next_stats_ = now + std::chrono::seconds(10);
    }
    // Held votes are looked at again at once. Otherwise round up, so the loop never spins on a
    // sub-millisecond remainder.
    const auto after = clock_->now();
    if (after >= next_tick_ || !held_votes_.empty()) return std::chrono::milliseconds(0);
    return std::chrono::ceil<std::chrono::milliseconds>(next_tick_ - after);
}

void Replica::receive_frames(size_t client_frames_max) {
    // Collected first and handed over at once: one lock and one wake-up per turn, not per frame.
    const auto now = clock_->now();
    // Votes held back last turn come first, and are not held again: the engine has counted the
    // ones checked beside them, so most are no longer wanted, and the others are checked now (a
    // forgery checked beside them failed). Votes are held only while this turn's checks are
    // made here, on this thread (below): the workers' results could come too late for that.
    std::vector<VerifyJob> held = std::exchange(held_votes_, {});
    held_per_peer_.assign(config_.replicas.size(), 0);
    TurnVotes counted;
    for (auto& job : held) {
        const size_t checked = frames_.size();
        admit_peer_frame(std::move(job), counted, /*may_hold=*/false);
        held_votes_count_.checked_later += frames_.size() - checked;
    }
    const bool may_hold = workers_->idle();
    size_t client_frames = 0;
    for (size_t i = 0; i < options_.frames_per_turn_max; ++i) {
        VerifyJob job;
        const auto received =
            network_->receive(job.routing_id, job.frame, client_frames < client_frames_max);
        if (on_client_port(job.routing_id)) ++client_frames;
        if (received == Network::Received::kNone) break;
        if (received == Network::Received::kBadFraming) {
            rejections_.count("bad_framing", "a message of more than one frame from connection " +
                                                 crypto::to_hex(job.routing_id));
            continue;
        }
        if (!on_client_port(job.routing_id)) {
            admit_peer_frame(std::move(job), counted, may_hold);
            continue;
        }
        if (!client_rates_.allow(job.routing_id, job.frame.size(), now)) {
            rejections_.count("client_rate_limited",
                              "client connection " + crypto::to_hex(job.routing_id) + " sent more than " +
                                  std::to_string(options_.transport.client_connections.bytes_per_second) +
                                  " bytes/s (its frames are dropped; it retransmits)");
            continue;
        }
        frames_.push_back(std::move(job));
    }
    if (frames_.empty()) return;
    if (frames_.size() <= options_.inline_verify_frames_max && workers_->idle()) {
        for (auto& job : frames_) workers_->verify_here(job, events_);
        frames_.clear();
        return;
    }
    // Too many for this thread: the workers check them all, the votes held this turn too.
    held_votes_count_.held -= held_votes_.size();
    std::move(held_votes_.begin(), held_votes_.end(), std::back_inserter(frames_));
    held_votes_.clear();
    workers_->submit_verify_all(frames_);
}

// A peer's frame, before its signature is checked: dropped if the engine could not use it
// whoever signed it (a vote after its certificate was made, or one its sender's already
// counted); held for the next turn, when `may_hold`, if this turn already checks as many
// distinct replicas' votes toward its certificate as the certificate lacks, or this sender's
// again; else checked. A held vote costs nothing unless one checked beside it fails (a
// forgery): then it is checked next turn. Each peer has at most kHeldVotesPerPeerMax held;
// past that its votes are checked at once, as if none were held.
void Replica::admit_peer_frame(VerifyJob job, TurnVotes& counted, bool may_hold) {
    constexpr size_t kHeldVotesPerPeerMax = 256;
    // A replica that sent more bad signatures than it may (PeerFaultLimits) is not heard.
    if (const auto replica = replica_connection(job.routing_id);
        replica && !peer_faults_.allow(std::to_string(*replica), 0, clock_->now())) {
        rejections_.count("peer_silenced",
                          "replica " + std::to_string(*replica) + " sent more frames that failed their signature "
                          "checks than " + std::to_string(options_.peer_faults.burst) + " at once and " +
                          std::to_string(options_.peer_faults.per_second) +
                          " a second: its frames are dropped unchecked until that is paid off");
        return;
    }
    crypto::OpenOptions header_only;
    header_only.verify_signature = false;
    auto unverified = crypto::open(view_of(job.frame), header_only);
    // A frame that does not open, or that names another sender than the replica whose
    // connection it came on, is the workers' to refuse and count.
    const std::optional<bft::ReplicaId> from = replica_connection(job.routing_id);
    if (!unverified || !from || *from >= config_.replicas.size() ||
        config_.replicas[*from].public_key != unverified->sender) {
        frames_.push_back(std::move(job));
        return;
    }
    const auto worth = engine_->worth_unverified(unverified->type, unverified->body, from);
    if (!worth.wanted) {
        ++unchecked_votes_;
        return;
    }
    if (!worth.toward.empty()) {
        auto& senders = counted[worth.toward];
        const bool again = std::find(senders.begin(), senders.end(), *from) != senders.end();
        if (!again && senders.size() < worth.lacking) {
            senders.push_back(*from);
        } else if (may_hold && held_per_peer_[*from] < kHeldVotesPerPeerMax) {
            ++held_per_peer_[*from];
            ++held_votes_count_.held;
            held_votes_.push_back(std::move(job));
            return;
        }
    }
    frames_.push_back(std::move(job));
}

void Replica::handle_events(bft::Output& out) {
    // events_ may already hold what receive_frames() verified on this thread.
    workers_->take_events(events_);
    for (Event& event : events_) {
        if (auto* m = std::get_if<PeerMessage>(&event)) {
            if (metrics_) traffic_.count(traffic_.received, m->envelope.type, m->from, m->raw.size());
            if (m->envelope.type == crypto::MessageType::kFetchSnapshot) {
                on_snapshot_request(m->from, m->envelope);
            } else if (m->envelope.type == crypto::MessageType::kSnapshot) {
                on_snapshot(m->from, m->envelope, out);
            } else if (m->envelope.type == crypto::MessageType::kFetchBlocks) {
                on_blocks_request(m->from, m->envelope);
            } else if (m->envelope.type == crypto::MessageType::kBlocks) {
                on_blocks(m->from, m->envelope, out);
            } else {
                out.append(engine_->on_message(m->from, m->envelope, view_of(m->raw)));
            }
        } else if (auto* request = std::get_if<RequestIn>(&event)) {
            on_request(*request, out);
        } else if (auto* read = std::get_if<ReadIn>(&event)) {
            on_read(*read);
        } else if (auto* status = std::get_if<StatusIn>(&event)) {
            on_status(*status);
        } else if (auto* fault = std::get_if<ConnectionFault>(&event)) {
            if (const auto replica = replica_connection(fault->routing_id))
                peer_faults_.charge(std::to_string(*replica), 1, clock_->now());
            else
                client_rates_.charge(fault->routing_id, options_.transport.client_connections.bad_signature_bytes,
                                     clock_->now());
        } else {
            auto& signed_out = std::get<SignedOut>(event);
            network_->send_to_client(signed_out.routing_id, signed_out.envelope);
        }
    }
    events_.clear();
}

void Replica::record_steps(std::vector<bft::Step>& steps) {
    if (steps.empty()) return;
    std::vector<PhaseTime> phases;
    traces_.record(steps, wall_ms(), mono_us(), metrics_ ? &phases : nullptr);
    for (const auto& p : phases) metrics_->on_phase(p.phase, p.seconds);
}

bool Replica::may_all_wait(const bft::Output& out) {
    return !out.sync && std::all_of(out.persist.begin(), out.persist.end(), [](const bft::PersistOp& op) {
               const auto* put = std::get_if<bft::PersistPut>(&op);
               return put && put->may_wait;
           });
}

void Replica::hold_writes(std::vector<bft::PersistOp> ops) {
    if (ops.empty()) return;
    if (held_writes_.empty()) held_writes_since_ = clock_->now();
    std::move(ops.begin(), ops.end(), std::back_inserter(held_writes_));
}

Status Replica::flush_held_writes() {
    if (held_writes_.empty()) return Ok{};
    return write_store(std::exchange(held_writes_, {}), false);
}

Status Replica::write_store(const std::vector<bft::PersistOp>& ops, bool sync) {
    const auto write_started = clock_->now();
    auto written = store_->apply(ops, sync);
    if (metrics_ && sync)
        metrics_->on_fsync("consensus_store", std::chrono::duration<double>(clock_->now() - write_started).count());
    if (!written) {
        spdlog::critical("consensus store write failed, stopping: {}", written.error().message);
        return make_error("store", written.error().message);
    }
    return Ok{};
}

Status Replica::drain(bft::Output out) {
    record_steps(out.steps);
    while (!out.empty()) {
        // early: what does not rely on this output's writes leaves while they are made.
        for (const auto& message : out.send_early) send(message);
        // 0. the ledger durable through what this output vouches for (a CHECKPOINT) or forgets
        //    (the certificates below a stable checkpoint): one fsync per checkpoint interval.
        if (out.ledger_sync_through > ledger_->synced_seq()) {
            const auto started = clock_->now();
            auto s = ledger_->sync();
            if (metrics_) metrics_->on_fsync("ledger", std::chrono::duration<double>(clock_->now() - started).count());
            if (!s) {
                spdlog::critical("ledger sync failed, stopping: {}", s.error().message);
                return make_error("ledger", s.error().message);
            }
        }
        // 1. persist: written (and synced when the engine asks) before anything it signed leaves;
        //    records that may wait (PersistPut::may_wait) wait for the next write, and every
        //    record held goes first in it.
        if (may_all_wait(out)) {
            hold_writes(std::move(out.persist));
            out.persist.clear();
        } else if (!held_writes_.empty()) {
            out.persist.insert(out.persist.begin(), std::make_move_iterator(held_writes_.begin()),
                               std::make_move_iterator(held_writes_.end()));
            held_writes_.clear();
        }
        if (auto s = write_store(out.persist, out.sync); !s) return s;
        // 2. send
        for (const auto& message : out.send) send(message);
        // 3. execute, in order; on_executed's outputs are drained next, the same way.
        bft::Output next;
        for (const auto& batch : out.commit) {
            if (auto s = execute(batch, next); !s) return s;
        }
        // 4. state transfer (the store first allows the ledger that far)
        if (out.fetch_snapshot) {
            if (auto s = allow_ledger_through(out.fetch_snapshot->seq); !s) return s;
            start_state_transfer(*out.fetch_snapshot);
        }
        // 5. redirects: the clients of requests this replica does not order go to the leader.
        for (const auto& redirect : out.redirects) redirect_clients(redirect);
        // 6. requests a peer forwarded: admitted here as a client's would be, then ordered.
        for (auto& request : out.forwarded) on_forwarded(std::move(request), next);
        out = std::move(next);
        record_steps(out.steps);
    }
    answer_reads();
    collect_detected();
    // (Looked at once after a start, then only while something is held back: not every turn.)
    if (recovering_ || view_changes_withheld_through_ != 0 || !recovery_looked_at_) return note_recovery_progress();
    return Ok{};
}

Status Replica::allow_ledger_through(uint64_t seq) {
    if (seq <= ledger_seq_max_) return Ok{};
    // A checkpoint interval ahead: one synced write per K blocks, and a store restored from a
    // backup is caught once the ledger is more than K past it (store_binding.h).
    const uint64_t raised = seq + config_.consensus.checkpoint_interval;
    if (auto s = store_->set_ledger_seq_max(raised); !s) {
        spdlog::critical("consensus store write failed, stopping: {}", s.error().message);
        return make_error("store", s.error().message);
    }
    ledger_seq_max_ = raised;
    return Ok{};
}

Status Replica::execute(const bft::Committed& batch, bft::Output& next) {
    if (auto s = allow_ledger_through(batch.seq); !s) return s;
    // The engine checked every request's client signature (through the authenticator).
    const auto apply_started = clock_->now();
    auto applied = ledger_->apply_block(batch.seq, batch.view, batch.requests, ledger::Verify::kTrusted,
                                        batch.certificate);
    if (metrics_ && applied)
        metrics_->on_executed(batch.requests.size(),
                              std::chrono::duration<double>(clock_->now() - apply_started).count());
    if (!applied) {
        spdlog::critical("ledger apply of block {} failed, stopping: {}: {}", batch.seq,
                         applied.error().code, applied.error().message);
        return make_error("ledger", "block " + std::to_string(batch.seq) + ": " +
                                        applied.error().code + ": " + applied.error().message);
    }
    // A query has one answer, its first: one ordered twice (a retransmission that reached the
    // log before the first copy executed) is answered again as it was, not with the later
    // state, which a client that accepted the first would take for a lie.
    std::vector<ledger::Outcome>& outcomes = applied->outcomes;
    for (auto& outcome : outcomes)
        if (outcome.query) outcome = first_answer(outcome);
    reply_batch(batch.seq, batch.view, outcomes);
    const int64_t executed_ms = wall_ms();
    const int64_t executed_mono_us = mono_us();
    if (metrics_)
        if (const auto since = traces_.since_last_step(batch.seq, executed_mono_us))
            metrics_->on_phase("executed", *since);
    traces_.executed_batch(batch.seq, static_cast<uint32_t>(batch.requests.size()), executed_ms,
                           executed_mono_us);
    for (const auto& outcome : outcomes)
        traces_.executed(outcome.tx_id, batch.seq, static_cast<uint32_t>(outcome.code), executed_ms);
    spdlog::debug("executed seq {} view {}: {} requests", batch.seq, batch.view, batch.requests.size());
    keep_snapshot(batch.seq);
    next.append(engine_->on_executed(batch.seq, applied->header.hash()));
    return Ok{};
}

const ledger::Outcome& Replica::first_answer(const ledger::Outcome& outcome) {
    constexpr size_t kAnsweredQueriesMax = 65536;
    auto [it, inserted] = answered_queries_.emplace(outcome.tx_id, outcome);
    if (inserted) {
        answered_order_.push_back(outcome.tx_id);
        if (answered_order_.size() > kAnsweredQueriesMax) {
            answered_queries_.erase(answered_order_.front());
            answered_order_.pop_front();
        }
    }
    return it->second;
}

void Replica::send(const bft::Outgoing& message) {
    auto send_to = [&](bft::ReplicaId to) {
        if (!network_->send_to_replica(to, message.envelope)) return;
        ++sent_total_.messages;
        sent_total_.bytes += message.envelope.size();
        if (metrics_ && message.envelope.size() > 1)
            traffic_.count(traffic_.sent, static_cast<crypto::MessageType>(static_cast<uint8_t>(message.envelope[1])), to,
                           message.envelope.size());
    };
    if (message.to == bft::kAllReplicas) {
        for (bft::ReplicaId to = 0; to < config_.n(); ++to)
            if (to != id_) send_to(to);
    } else if (message.to != id_) {
        send_to(message.to);
    }
    uint64_t suppressed = 0;
    if (network_->dropped_sends() != dropped_sends_logged_ && drop_log_.allow(&suppressed)) {
        spdlog::warn("dropped {} outgoing messages so far (a peer down or a full queue)",
                     network_->dropped_sends());
        dropped_sends_logged_ = network_->dropped_sends();
    }
}

Status Replica::note_recovery_progress() {
    recovery_looked_at_ = true;
    const bft::EngineStatus status = engine_->status();
    if (recovering_ && !status.recovering) {
        // The engine persisted (synced) its view above: from now on the restart rule holds.
        if (auto s = store_->set_recovering(false); !s) return make_error("store", s.error().message);
        recovering_ = false;
        if (config_.protocol == bft::Protocol::kRaft)
            spdlog::info("replica {} has caught up: it votes again from term {}", id_, status.view + 1);
        else  // (the rejoin rule may keep it silent beyond the next view: bft/pbft/engine.h)
            spdlog::info("replica {} has caught up: it votes again in views after view {}", id_, status.view);
    }
    const uint64_t withheld = status.recovering ? 0 : status.view_changes_withheld_through;
    if (withheld == view_changes_withheld_through_) return Ok{};
    view_changes_withheld_through_ = withheld;
    if (withheld != 0)
        spdlog::info("replica {} sends no VIEW-CHANGE until its stable checkpoint reaches seq {}: it may have "
                     "prepared batches up to there before it lost its store, and cannot report them",
                     id_, withheld);
    else
        spdlog::info("replica {}: its stable checkpoint passed every batch it may have prepared before it lost "
                     "its store; it sends VIEW-CHANGEs again",
                     id_);
    return Ok{};
}

void Replica::collect_detected() {
    for (const auto& d : engine_->take_detected()) {
        ++detected_[d.kind];
        uint64_t suppressed = 0;
        if (!detected_log_.allow(&suppressed)) continue;
        if (d.proven)
            spdlog::warn("detected misbehaviour: replica {}: {} [{} more not logged]", d.from,
                         bft::misbehaviour_name(d.kind), suppressed);
        else
            spdlog::warn("detected misbehaviour: {} in a message that names replica {}, not proven to "
                         "be its doing [{} more not logged]",
                         bft::misbehaviour_name(d.kind), d.from, suppressed);
    }
}

void Replica::log_stats() {
    const auto status = engine_->status();
    const auto cache = authenticator_.stats();
    const auto checkpoints = ledger_->checkpoints();
    const auto store_checkpoints = store_->checkpoints();
    spdlog::info("replica {}: {} view {}, executed {}, stable checkpoint {}, signature cache "
                 "{} hits / {} misses, {} pending jobs, {} dropped sends, {} refused connections, store commits {} ({} synced), "
                 "{} late votes not checked, {} votes held a turn ({} checked after all), ledger checkpoints {} on the checkpointer / {} on this thread, WAL written back early {} times, "
                 "store checkpoints {} on the checkpointer / {} on this thread",
                 id_, status.role, status.view, ledger_->last_seq(), status.stable_checkpoint,
                 cache.hits, cache.misses, workers_->pending_jobs(), network_->dropped_sends(),
                 network_->refused_connections(), store_->commits(), store_->synced_commits(),
                 unchecked_votes_, held_votes_count_.held, held_votes_count_.checked_later, checkpoints.on_checkpointer, checkpoints.on_applying_thread,
                 checkpoints.early_writebacks, store_checkpoints.on_checkpointer,
                 store_checkpoints.on_connection);
    const auto warn_once = [](bool& logged, const char* whose, const std::string& failure) {
        if (failure.empty() || logged) return;
        logged = true;
        spdlog::warn("the {} checkpointer stopped ({}); its WAL is checkpointed on the consensus "
                     "thread from now on, nothing is lost",
                     whose, failure);
    };
    warn_once(checkpointer_failure_logged_, "ledger's", checkpoints.checkpointer_failure);
    warn_once(store_checkpointer_failure_logged_, "consensus store's", store_checkpoints.checkpointer_failure);
}

}  // namespace tally::node
