// Replica: answering clients — requests (through consensus, or from the ledger's reply cache
// when already executed), unordered reads, status. Replies are signed by the worker threads
// (or inline while they are idle); the replies of an executed batch share one signature over
// their Merkle root (crypto/reply_batch.h), every other reply is signed alone.
#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <algorithm>
#include <map>
#include <string_view>

#include "crypto/hash.h"
#include "crypto/reply_batch.h"
#include "ledger/tx.h"
#include "node/api/client.pb.h"
#include "node/replica.h"

namespace tally::node {

namespace {

std::string bytes_of(const crypto::Hash& h) { return std::string(crypto::as_bytes(h)); }

void fill_step(const TimedStep& timed, api::pb::TraceStep& s) {
    s.set_at_ms(timed.at_ms);
    s.set_seq(timed.step.seq);
    s.set_view(timed.step.view);
    s.set_phase(timed.step.phase);
    for (const auto vote : timed.step.votes) s.add_votes(vote);
    s.set_mono_us(timed.mono_us);
}

}  // namespace

void Replica::sign_and_send(std::string routing_id, crypto::MessageType type, std::string body) {
    if (inline_signs_left_ > 0) {  // cheaper here than a hand-off while the workers are idle
        --inline_signs_left_;
        network_->send_to_client(routing_id, crypto::seal(key_, type, body));
        return;
    }
    workers_->submit_sign(SignJob{std::move(routing_id), type, std::move(body)});
}

void Replica::sign_and_send_batch(BatchSignJob job) {
    if (inline_signs_left_ > 0) {  // one signature for the whole batch: as cheap as one reply
        --inline_signs_left_;
        auto frames = crypto::seal_reply_batch(key_, job.batch, job.bodies);
        for (size_t i = 0; i < frames.size(); ++i)
            network_->send_to_client(job.routing_ids[i], frames[i]);
        return;
    }
    workers_->submit_sign_batch(std::move(job));
}

std::string Replica::reply_body(const ClientRoute& route, const crypto::Hash& tx_id,
                                const ledger::Outcome& outcome, uint64_t view) const {
    api::pb::Reply r;
    r.set_tx_id(bytes_of(tx_id));
    r.set_client(std::string(crypto::as_bytes(route.client)));
    r.set_nonce(route.nonce);
    r.set_result(static_cast<uint32_t>(outcome.code));
    r.set_seq(outcome.seq);
    r.set_value(outcome.value);
    r.set_account_nonce(outcome.nonce);
    r.set_view(view);
    r.set_replica(id_);
    answers_->on_reply(ReplyKind::kOrdered, r);
    return r.SerializeAsString();
}

void Replica::reply(const ClientRoute& route, const crypto::Hash& tx_id,
                    const ledger::Outcome& outcome, uint64_t view) {
    sign_and_send(route.routing_id, crypto::MessageType::kReply,
                  reply_body(route, tx_id, outcome, view));
}

void Replica::reply_batch(uint64_t seq, uint64_t batch_view, const std::vector<ledger::Outcome>& outcomes) {
    // A reply carries the replica's view (term) when it replied, as Reply.view says: a Raft
    // client checks it against the newest term it knows (an entry of an earlier term may
    // execute under a later leader).
    const uint64_t view = std::max(batch_view, engine_->status().view);
    BatchSignJob job;
    job.batch = seq;
    for (const auto& outcome : outcomes) {
        // Remembered wherever it executed, whether or not a client waits here: a copy that
        // reaches this replica late (or a replay) must be refused here too, not forwarded to
        // the primary and ordered again. And at the sender's nonce when it executed, not after
        // its block: a later transfer of the same block may have moved the nonce so that these
        // bytes would now apply.
        if (outcome.code == ledger::ResultCode::kNonceTooHigh && !outcome.query)
            remember_not_yet(outcome.tx_id, outcome.nonce);
        auto pending = routes_.take(outcome.tx_id);
        if (!pending) continue;
        // Every route gets the reply, the owner's first (client_routes.h).
        const ClientRoute route{{}, pending->client, pending->nonce};
        const std::string body = reply_body(route, outcome.tx_id, outcome, view);
        for (auto& routing_id : pending->routing_ids) {
            job.bodies.push_back(body);
            job.routing_ids.push_back(std::move(routing_id));
        }
    }
    if (!job.bodies.empty()) sign_and_send_batch(std::move(job));
}

void Replica::remember_not_yet(const crypto::Hash& tx_id, uint64_t nonce) {
    constexpr size_t kNotYetMax = 65536;
    const bool fresh = not_yet_.insert_or_assign(tx_id, nonce).second;
    if (!fresh) return;
    not_yet_order_.push_back(tx_id);
    if (not_yet_order_.size() > kNotYetMax) {
        not_yet_.erase(not_yet_order_.front());
        not_yet_order_.pop_front();
    }
}

Refusal Replica::admission_of(const RequestIn& in, bool forwarded) const {
    AdmissionInput a;
    a.query = in.query;
    a.nonce = in.request.info.nonce;
    if (!in.query) {
        a.sender = ledger_->account(in.request.info.client);
        if (auto it = not_yet_.find(in.tx_id); it != not_yet_.end()) a.not_yet_at_nonce = it->second;
    }
    if (!forwarded) {
        if (!in.query) a.sender_pending = routes_.of_sender(in.request.info.client);
        a.connection_pending = routes_.of_connection(in.routing_id);
        a.queries_pending = routes_.queries();
        a.replica_full = routes_.full();
    }
    return admit(a, options_.admission);
}

// A request a peer forwarded for this replica to order (bft::Output::forwarded), from a backup
// whose own admission let it in. It passes the ledger's rules here too, so that a traitor
// cannot have this replica order what no honest one would: bytes that executed already,
// transfers from keys without an account or with a used nonce, a replay of a not-yet transfer.
// No client of its own waits here (the forwarding replica answers its client), so a refusal is
// only counted, as "forwarded_<reason>". The load rules do not apply: an honest backup's request
// refused for this replica's load would wait there until its view changed.
void Replica::on_forwarded(bft::ClientRequest request, bft::Output& out) {
    auto tx = ledger::decode_tx(request.payload);
    if (!tx) return;  // (the engine authenticated it: it decodes)
    auto refuse_forwarded = [&](std::string_view reason) {
        rejections_.count("forwarded_" + std::string(reason),
                          "nonce " + std::to_string(tx->nonce) + " from " +
                              crypto::key_to_hex(tx->sender).substr(0, 16) + "..., forwarded by a peer");
    };
    if (ledger_->transfer_outcome(tx->id, tx->sender, tx->nonce)) return refuse_forwarded("executed");
    RequestIn in{{}, std::move(request), tx->id, tx->kind != ledger::TxKind::kTransfer};
    if (const Refusal refusal = admission_of(in, /*forwarded=*/true); refusal != Refusal::kNone)
        return refuse_forwarded(refusal_name(refusal));
    out.append(engine_->on_client_request(in.request));
}

void Replica::refuse(const RequestIn& in, Refusal refusal) {
    traces_.refused(in.tx_id, refusal_name(refusal), wall_ms());
    rejections_.count(refusal_name(refusal),
                      "not admitted: nonce " + std::to_string(in.request.info.nonce) + " from " +
                          crypto::key_to_hex(in.request.info.client).substr(0, 16) +
                          "... on client " + crypto::to_hex(in.routing_id));
    ledger::Outcome outcome;
    outcome.tx_id = in.tx_id;
    outcome.code = refusal_result(refusal);
    outcome.seq = 0;  // never ordered: every replica that refuses it answers alike
    const ClientRoute route{in.routing_id, in.request.info.client, in.request.info.nonce};
    reply(route, in.tx_id, outcome, engine_->status().view);
}

void Replica::on_request(RequestIn& in, bft::Output& out) {
    traces_.received(in.tx_id, wall_ms());
    if (!engine_->takes_client_requests()) {
        // Another replica orders requests (a Raft follower), or none is known to yet: the
        // client is told where to go, before this replica's reply cache or admission could
        // answer for a leader it is not. Nothing of the request is kept.
        bft::Output taken = engine_->on_client_request(in.request);
        for (const auto& redirect : taken.redirects) send_redirect(in.routing_id, in.tx_id, redirect);
        taken.redirects.clear();
        out.append(std::move(taken));
        return;
    }
    const ClientRoute route{in.routing_id, in.request.info.client, in.request.info.nonce};
    // The reply cache: a request that already executed is answered from the ledger with its
    // recorded outcome, and never reaches the engine again.
    if (auto done = ledger_->transfer_outcome(in.tx_id, in.request.info.client, in.request.info.nonce)) {
        reply(route, in.tx_id, *done, engine_->status().view);
        return;
    }
    if (in.query && engine_->offers_read_index()) {
        start_read_index(in, out);
        return;
    }
    if (auto q = answered_queries_.find(in.tx_id); q != answered_queries_.end()) {
        reply(route, in.tx_id, q->second, engine_->status().view);
        return;
    }
    routes_.expire(clock_->now());
    if (routes_.contains(in.tx_id)) {
        // A retransmission, or someone else's copy: one more route if this connection may
        // have one more reply pending. The engine holds the request already (and ignores the
        // repeat), unless it let go of it in a state transfer.
        if (routes_.of_connection(in.routing_id) < options_.admission.pending_per_connection_max)
            routes_.add_route(in.tx_id, in.routing_id);
        out.append(engine_->on_client_request(in.request));
        return;
    }
    // Behind a stable checkpoint, this replica's ledger would judge a new request against
    // stale accounts (admitting nonces its peers' ledgers have used, refusing ones they wait
    // for), and every request it admitted would hold slots of its sender and connection until
    // the install. It admits no request from a client until then and answers none: the
    // request is counted and dropped unsigned (signing a refusal for each would cost the
    // replica what it needs to catch up), the client's quorum comes from the other replicas,
    // and its retransmission is admitted here once the state is installed. Requests a backup
    // forwards (on_forwarded) still go in: a primary that is catching up must still order
    // them, or nothing is ordered until a view change.
    if (catching_up()) {
        rejections_.count("catching_up", "a client request while this replica fetches the state at seq " +
                                             std::to_string(fetching_->seq) +
                                             " (not admitted until it is installed)");
        return;
    }
    if (const Refusal refusal = admission_of(in); refusal != Refusal::kNone) {
        refuse(in, refusal);
        return;
    }
    routes_.add(in.tx_id, in.request.info.client, in.request.info.nonce, in.query,
                std::move(in.routing_id), clock_->now());
    out.append(engine_->on_client_request(in.request));
}

void Replica::send_redirect(const std::string& routing_id, const crypto::Hash& tx_id,
                            const bft::Redirect& redirect) {
    api::pb::Redirect r;
    r.set_tx_id(bytes_of(tx_id));
    r.set_replica(id_);
    r.set_view(redirect.view);
    if (redirect.leader && *redirect.leader < config_.n() && *redirect.leader != id_) {
        r.set_has_leader(true);
        r.set_leader(*redirect.leader);
    }
    sign_and_send(routing_id, crypto::MessageType::kRedirect, r.SerializeAsString());
}

void Replica::redirect_clients(const bft::Redirect& redirect) {
    const crypto::Hash tx_id = ledger::tx_id(redirect.payload);
    auto pending = routes_.take(tx_id);
    if (!pending) return;  // its client is not connected here (the request came in a peer's log)
    for (const auto& routing_id : pending->routing_ids) send_redirect(routing_id, tx_id, redirect);
}

void Replica::start_read_index(RequestIn& in, bft::Output& out) {
    // Bounded as queries are (admission.h): in all, and per connection, so that one client
    // cannot take every slot.
    if (read_index_pending_.size() >= options_.admission.queries_pending_max) {
        refuse(in, Refusal::kQueriesBusy);
        return;
    }
    size_t& of_connection = read_index_per_connection_[in.routing_id];
    if (of_connection >= options_.admission.pending_per_connection_max) {
        refuse(in, Refusal::kConnectionBusy);
        return;
    }
    ++of_connection;
    const uint64_t id = next_read_id_++;
    read_index_pending_[id] = PendingReadIndex{std::move(in.routing_id), in.tx_id, in.request.info.client,
                                               in.request.info.nonce, std::move(in.request.payload)};
    out.append(engine_->read_index(id));
}

void Replica::answer_reads() {
    for (const auto& read : engine_->take_reads()) {
        auto it = read_index_pending_.find(read.read_id);
        if (it == read_index_pending_.end()) continue;
        const PendingReadIndex& q = it->second;
        const ClientRoute route{q.routing_id, q.client, q.nonce};
        if (read.ok) {
            // The ledger has executed through the read's index (the engine waited for it):
            // its state now is at least as new as every write acknowledged before the read.
            // A query answered before (a retransmission read again) keeps its first answer.
            // The ledger's answer carries its seq: the height for a balance, the queried
            // transaction's for a tx query.
            reply(route, q.tx_id, first_answer(ledger_->query(q.query)), engine_->status().view);
        } else {
            send_redirect(q.routing_id, q.tx_id, bft::Redirect{{}, read.leader, engine_->status().view});
        }
        if (auto c = read_index_per_connection_.find(q.routing_id);
            c != read_index_per_connection_.end() && --c->second == 0)
            read_index_per_connection_.erase(c);
        read_index_pending_.erase(it);
    }
}

void Replica::on_read(const ReadIn& in) {
    const ledger::Outcome outcome = ledger_->query(in.query);
    api::pb::ReadReply read;
    api::pb::Reply& r = *read.mutable_reply();
    r.set_tx_id(bytes_of(outcome.tx_id));
    r.set_client(std::string(crypto::as_bytes(in.client)));
    r.set_nonce(in.nonce);
    r.set_result(static_cast<uint32_t>(outcome.code));
    r.set_seq(ledger_->last_seq());
    r.set_value(outcome.value);
    r.set_account_nonce(outcome.nonce);
    r.set_view(engine_->status().view);
    r.set_replica(id_);
    answers_->on_reply(ReplyKind::kRead, r);
    read.set_state_digest(bytes_of(ledger_->state_digest()));
    sign_and_send(in.routing_id, crypto::MessageType::kReadReply, read.SerializeAsString());
}

void Replica::on_status(const StatusIn& in) {
    api::pb::StatusReply r = status_reply();
    r.set_nonce(in.nonce);
    if (in.explain_tx) explain(*in.explain_tx, *r.mutable_trace());
    if (in.recent_seqs > 0) timeline(in.recent_seqs, r);
    sign_and_send(in.routing_id, crypto::MessageType::kStatusReply, r.SerializeAsString());
}

void Replica::explain(const crypto::Hash& tx, api::pb::TxTrace& out) const {
    const auto known = traces_.explain(tx);
    out.set_known(known.has_value());
    if (!known) return;
    if (known->tx.received_ms) out.set_received_ms(*known->tx.received_ms);
    out.set_refused(known->tx.refused);
    out.set_seq(known->tx.seq);
    out.set_executed_ms(known->tx.executed_ms);
    out.set_result(known->tx.result);
    out.set_steps_dropped(known->steps_dropped);
    for (const auto& step : known->steps) fill_step(step, *out.add_steps());
}

void Replica::timeline(size_t count, api::pb::StatusReply& out) const {
    // Capped here, whatever the client asked: the reply stays small (a few KiB).
    for (const auto& seq : traces_.recent(std::min(count, kRecentSeqsMax))) {
        auto* t = out.add_recent();
        t->set_seq(seq.seq);
        if (!seq.steps.empty()) t->set_view(seq.steps.back().step.view);
        for (const auto& step : seq.steps) fill_step(step, *t->add_steps());
        t->set_executed_ms(seq.executed_ms);
        t->set_executed_mono_us(seq.executed_mono_us);
        t->set_requests(seq.requests);
    }
    for (const auto& step : traces_.recent_view_changes(kRecentViewChangesMax))
        fill_step(step, *out.add_recent_view_changes());
}

api::pb::StatusReply Replica::status_reply() const {
    const bft::EngineStatus status = engine_->status();
    api::pb::StatusReply r;
    r.set_replica(id_);
    r.set_protocol(status.protocol);
    r.set_role(status.role);
    r.set_view(status.view);
    r.set_executed(ledger_->last_seq());
    r.set_state_digest(bytes_of(ledger_->state_digest()));
    r.set_low_water_mark(status.low_water_mark);
    r.set_stable_checkpoint(status.stable_checkpoint);
    r.set_view_changing(status.view_changing);
    r.set_commit_index(status.commit_index);
    r.set_last_log_index(status.last_log_index);
    r.set_applied(status.last_executed);
    if (fetching_) r.set_catching_up_to(fetching_->seq);
    r.set_recovering(status.recovering);
    r.set_view_changes_withheld_through(status.view_changes_withheld_through);
    if (status.leader) {
        r.set_has_leader(true);
        r.set_leader(*status.leader);
    }
    r.set_messages_sent(sent_total_.messages);
    r.set_bytes_sent(sent_total_.bytes);
    // The whole process's CPU, every thread (consensus, transport, workers): what a benchmark
    // divides by the transfers it committed (`tally bench`'s cost).
    rusage usage{};
    if (::getrusage(RUSAGE_SELF, &usage) == 0) {
        auto us = [](const timeval& t) { return static_cast<uint64_t>(t.tv_sec) * 1'000'000 + static_cast<uint64_t>(t.tv_usec); };
        r.set_cpu_us(us(usage.ru_utime) + us(usage.ru_stime));
    }
    for (const auto& behaviour : options_.traitor) r.add_traitor(behaviour);
    // By name, as the reply has always listed them (the enum's order is not the names').
    std::map<std::string_view, uint64_t> detected_by_name;
    for (const auto& [kind, count] : detected_)
        detected_by_name[bft::misbehaviour_name(kind)] = count;
    for (const auto& [kind, count] : detected_by_name) {
        auto* d = r.add_detected();
        d->set_kind(std::string(kind));
        d->set_count(count);
    }
    for (const auto& [reason, count] : rejections_.snapshot()) {
        auto* d = r.add_rejected();
        d->set_kind(reason);
        d->set_count(count);
    }
    // What the transport's own thread counted (transport.h), beside the rejections of input:
    // connections the ZAP handler refused (a key that is no replica's on the replicas' port;
    // an address at its connection limit on the clients') and handshakes that failed.
    for (const auto& [kind, count] : {std::pair{"refused_connection", network_->refused_connections()},
                                      std::pair{"too_many_connections", network_->refused_client_connections()},
                                      std::pair{"failed_handshake", network_->failed_handshakes()}}) {
        if (count == 0) continue;
        auto* d = r.add_rejected();
        d->set_kind(kind);
        d->set_count(count);
    }
    return r;
}

}  // namespace tally::node
