// The Tally client library, over a ClientLink (client/link.h; ZeroMQ in every program). See
// client.h for the wire and the trust model.
#include "client/client.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "client/zmq_link.h"
#include "crypto/assert.h"
#include "crypto/envelope.h"
#include "ledger/tx.h"

namespace tally::client {
namespace {

// A fast read heard from n-f replicas without agreement waits this long for the rest.
constexpr Duration kFastReadStragglerGrace{100};

std::string id_bytes(const crypto::Hash& h) { return std::string(crypto::as_bytes(h)); }

Duration until(Clock::time_point deadline, Clock::time_point now) {
    if (deadline <= now) return Duration{0};
    return std::chrono::ceil<Duration>(deadline - now);
}

Clock::time_point deadline_after(Clock::time_point now, Duration timeout) {
    // Saturate: a huge timeout must not overflow the clock.
    if (timeout > std::chrono::hours(24 * 365)) return Clock::time_point::max();
    return now + timeout;
}

OrderedResult ordered_result(const crypto::Hash& tx_id, const node::api::pb::Reply& reply) {
    OrderedResult r;
    r.tx_id = tx_id;
    r.result = reply.result();
    r.seq = reply.seq();
    r.value = reply.value();
    r.account_nonce = reply.account_nonce();
    return r;
}

Error timeout_error(std::string_view what, Duration timeout) {
    return make_error("timeout", "no quorum of replicas answered the " + std::string(what) +
                                     " within " + std::to_string(timeout.count()) +
                                     " ms (is the network up? try `tally net status`)");
}

}  // namespace

std::string_view consistency_name(Consistency c) {
    switch (c) {
        case Consistency::kLinearizable: return "linearizable";
        case Consistency::kFast: return "fast";
        case Consistency::kLocal: return "local";
    }
    return "unknown";
}

std::optional<Consistency> consistency_from_name(std::string_view name) {
    if (name == "linearizable") return Consistency::kLinearizable;
    if (name == "fast") return Consistency::kFast;
    if (name == "local") return Consistency::kLocal;
    return std::nullopt;
}

std::string result_text(uint32_t result) {
    if (result <= 255) {
        const auto code = static_cast<ledger::ResultCode>(result);
        const auto name = ledger::result_name(code);
        if (ledger::result_from_name(name) == code) return std::string(name);
    }
    return "result_" + std::to_string(result);
}

namespace {

// What connect() asks of network.json before it trusts it.
Result<bft::ClientQuorum> check_config(const node::api::NetworkConfig& config) {
    if (config.replicas.empty()) return make_error("invalid", "the network has no replicas");
    // The acceptance rule is the protocol's (bft/quorum.h), read from network.json.
    const bft::ClientQuorum accept = config.quorums().client();
    if (accept.ordered > config.n())
        return make_error("invalid", "the protocol's reply quorum (" + std::to_string(accept.ordered) +
                                         ") is more than the number of replicas");
    for (size_t i = 0; i < config.replicas.size(); ++i) {
        if (config.replicas[i].id != i)
            return make_error("invalid", "replica ids must be 0..n-1 in order (network.json)");
    }
    return accept;
}

}  // namespace

Client::Client(ClientOptions options)
    : options_(options), random_(options.seed ? *options.seed : std::random_device{}()) {}

Client::~Client() = default;

Status Client::connect(const node::api::NetworkConfig& config) {
    if (auto accept = check_config(config); !accept) return accept.error();
    auto link = ZmqLink::connect(config);
    if (!link) return link.error();
    return connect(config, std::move(link).value());
}

Status Client::connect(const node::api::NetworkConfig& config, std::unique_ptr<ClientLink> link) {
    auto accept = check_config(config);
    if (!accept) return accept.error();
    if (!link) return make_error("invalid", "no link to the replicas");
    ordered_.clear();
    reads_.clear();
    status_.reset();
    config_ = config;
    accept_ = *accept;
    leader_hint_.reset();
    known_term_ = 0;
    link_ = std::move(link);
    return Ok{};
}

crypto::KeyPair Client::ephemeral_key() {
    if (!options_.seed) return crypto::KeyPair::generate();
    crypto::Seed seed{};
    for (size_t i = 0; i < seed.size(); i += sizeof(uint64_t)) {
        const uint64_t word = random_();
        std::memcpy(seed.data() + i, &word, std::min(sizeof(word), seed.size() - i));
    }
    return crypto::KeyPair::from_seed(seed);
}

// --- Sending ----------------------------------------------------------------------------------

void Client::send_to(uint32_t replica, std::string_view frame) {
    if (!link_->send(replica, frame)) ++dropped_sends_;
}

void Client::send_to_all(std::string_view frame) {
    for (uint32_t i = 0; i < config_.n(); ++i) send_to(i, frame);
}

void Client::send_request(const std::string& envelope) {
    if (accept_.follows_leader() && leader_hint_) {
        send_to(*leader_hint_, envelope);
        return;
    }
    send_to_all(envelope);
}

void Client::learn_term(uint64_t term, std::optional<uint32_t> leader) {
    if (term < known_term_) return;
    if (term > known_term_) leader_hint_.reset();  // a new term: the old leader's hint is stale
    known_term_ = term;
    if (leader && *leader < config_.n()) leader_hint_ = leader;
}

// --- Asynchronous ordered requests ----------------------------------------------------------

Result<crypto::Hash> Client::submit_async(std::string envelope, Completion done, Duration timeout) {
    if (!link_) return make_error("not_connected", "the client is not connected");
    auto tx = ledger::decode_tx(envelope);
    if (!tx) return make_error("bad_request", "not a transaction envelope: " + tx.error().message);
    const std::string id = id_bytes(tx->id);
    if (ordered_.count(id)) return make_error("in_flight", "this transaction is already in flight");

    const auto now = link_->now();
    ExpectedRequest expected{tx->id, tx->sender, tx->nonce, tx->kind != ledger::TxKind::kTransfer};
    PendingOrdered pending{std::move(envelope), expected,
                           ReplyQuorum(QuorumKind::kOrdered, accept_.ordered, config_.n(),
                                       expected, &verified_roots_),
                           0, 0, std::nullopt, deadline_after(now, timeout), now + options_.retransmit_interval,
                           std::move(done), made_++};
    auto [it, inserted] = ordered_.emplace(id, std::move(pending));
    TALLY_ASSERT(inserted);
    send_request(it->second.envelope);
    next_timer_ = std::min({next_timer_, it->second.next_send, it->second.deadline});
    return tx->id;
}

size_t Client::complete(const std::string& id, Result<OrderedResult> result) {
    auto node = ordered_.extract(id);
    if (node.empty()) return 0;
    auto& pending = node.mapped();
    counters_ += pending.quorum.counters();
    if (pending.quorum.done()) {
        remember(id, RecentResult{reply_key(*pending.quorum.accepted(), QuorumKind::kOrdered),
                                  pending.expected.query});
        session_seq_ = std::max(session_seq_, pending.quorum.accepted()->seq());
    }
    Completion done = std::move(pending.done);
    ++completions_;
    if (done) done(result);
    return 1;
}

void Client::remember(const std::string& id, const RecentResult& result) {
    if (options_.recent_results_max == 0) return;
    if (recent_.emplace(id, result).second) recent_order_.push_back(id);
    while (recent_order_.size() > options_.recent_results_max) {
        recent_.erase(recent_order_.front());
        recent_order_.pop_front();
    }
}

size_t Client::poll(Duration max_wait) {
    if (!link_) return 0;
    const uint64_t completions_before = completions_;
    run_timers(link_->now());
    const auto now = link_->now();
    Duration wait = std::max(Duration{0}, max_wait);
    if (next_timer_ != Clock::time_point::max()) wait = std::min(wait, until(next_timer_, now));
    if (completions_ != completions_before) wait = Duration{0};
    link_->receive(
        wait, [this](uint32_t replica, std::string_view frame) { on_frame(replica, frame); },
        counters_.malformed);
    run_timers(link_->now());
    return static_cast<size_t>(completions_ - completions_before);
}

namespace {

// The entries of `pending` whose timer `due` says has fired, in the order the Client made them
// (their `made`), not the hash table's: run_timers sends and completes in this order, which a
// seed replayed in the simulator must find the same whatever the keys (tx ids of queries
// signed by ephemeral keys) hash to.
template <typename Map, typename Due>
std::vector<typename Map::value_type*> due_in_order(Map& pending, Due due) {
    std::vector<typename Map::value_type*> out;
    for (auto& entry : pending) {
        if (due(entry.second)) out.push_back(&entry);
    }
    std::sort(out.begin(), out.end(),
              [](const auto* a, const auto* b) { return a->second.made < b->second.made; });
    return out;
}

}  // namespace

size_t Client::run_timers(Clock::time_point now) {
    if (now < next_timer_) return 0;
    auto next = Clock::time_point::max();
    for (const auto& [id, pending] : ordered_) {
        if (now < pending.deadline && now < pending.next_send)
            next = std::min({next, pending.deadline, pending.next_send});
    }
    std::vector<std::string> expired;
    const auto due_ordered = due_in_order(ordered_, [now](const PendingOrdered& pending) {
        return now >= pending.deadline || now >= pending.next_send;
    });
    for (auto* entry : due_ordered) {
        auto& [id, pending] = *entry;
        if (now >= pending.deadline) {
            expired.push_back(id);
            continue;
        }
        // Every replica, whatever the protocol: a leader the client believed in may be dead,
        // and the others redirect to the new one.
        send_to_all(pending.envelope);
        pending.sent_to_leader.reset();
        ++retransmits_;
        pending.next_send = now + options_.retransmit_interval;
        next = std::min({next, pending.deadline, pending.next_send});
    }
    for (auto& [id, read] : reads_) {
        if (read.finished || now >= read.deadline) continue;
        if (!read.target || now < read.next_send) {
            next = std::min({next, read.deadline, read.target ? read.next_send : read.deadline});
        }
    }
    const auto due_reads = due_in_order(reads_, [now](const PendingRead& read) {
        return !read.finished && (now >= read.deadline || (read.target && now >= read.next_send));
    });
    for (auto* entry : due_reads) {
        auto& read = entry->second;
        if (now >= read.deadline) {
            read.finished = true;
            continue;
        }
        send_to(*read.target, read.frame);
        ++retransmits_;
        read.next_send = now + options_.retransmit_interval;
        next = std::min({next, read.deadline, read.next_send});
    }
    next_timer_ = next;
    size_t completed = 0;
    for (const auto& id : expired) {
        completed += complete(id, make_error("timeout", "no f+1 matching replies before the deadline"));
    }
    return completed;
}

template <typename Done>
void Client::wait_until(Done done, Clock::time_point deadline) {
    while (!done()) {
        const auto now = link_->now();
        if (now >= deadline) return;
        poll(std::min(until(deadline, now), Duration{100}));
    }
}

// --- Incoming frames ---------------------------------------------------------------------------

void Client::on_frame(uint32_t replica, std::string_view frame) {
    crypto::OpenOptions options;
    options.max_bytes = kReplyBytesMax;
    options.expected_sender = config_.replicas[replica].public_key;
    options.verify_signature = false;  // verified where it counts (quorum, status)
    auto envelope = crypto::open(frame, options);
    if (!envelope) {
        ++counters_.malformed;
        return;
    }
    switch (envelope->type) {
        case crypto::MessageType::kReply:
        case crypto::MessageType::kBatchReply: on_reply(replica, frame, *envelope); return;
        case crypto::MessageType::kReadReply: on_read_reply(replica, frame, *envelope); return;
        case crypto::MessageType::kStatusReply: on_status_reply(replica, frame); return;
        case crypto::MessageType::kRedirect: on_redirect(replica, frame); return;
        default: ++counters_.malformed; return;
    }
}

void Client::on_reply(uint32_t replica, std::string_view frame, const crypto::Envelope& envelope) {
    auto decoded = decode_ordered_reply(envelope);
    if (!decoded) {
        ++counters_.malformed;
        return;
    }
    const node::api::pb::Reply& reply = *decoded;
    auto it = ordered_.find(reply.tx_id());
    if (it == ordered_.end()) {
        // Late (after the quorum) or unknown. Compare a late one with what was accepted.
        auto recent = recent_.find(reply.tx_id());
        if (recent == recent_.end()) {
            ++counters_.stale;
            return;
        }
        const ReplyKey key = reply_key(reply, QuorumKind::kOrdered);
        if (key == recent->second.key) return;
        if (supersedes(key, recent->second.key, recent->second.query)) {
            ++counters_.superseded;
        } else {
            ++counters_.mismatch;
        }
        return;
    }
    auto& pending = it->second;
    if (accept_.follows_leader() && reply.view() < known_term_) {
        // A replica of an older term than a leader (or a redirect) this client has seen
        // proved: it may have been deposed since; its word waits for the current leader's.
        ++counters_.stale;
        return;
    }
    const Vote vote = pending.quorum.add(replica, config_.replicas[replica].public_key, frame);
    if (vote != Vote::kAccepted) return;
    // The one reply accepted (its signature checked): that replica led in its term.
    if (accept_.follows_leader()) learn_term(reply.view(), replica);
    if (refusal_to_recheck(pending)) return;
    const std::string id = it->first;
    const auto& accepted = *pending.quorum.accepted();
    auto tx_id = crypto::array_from_bytes<32>(accepted.tx_id());
    TALLY_ASSERT(tx_id.ok());  // the quorum checked it equals the request's id
    complete(id, ordered_result(*tx_id, accepted));
}

bool Client::refusal_to_recheck(PendingOrdered& pending) {
    const auto& accepted = *pending.quorum.accepted();
    const auto code = static_cast<ledger::ResultCode>(accepted.result());
    const bool may_be_lag = code == ledger::ResultCode::kUnknownSender ||
                            code == ledger::ResultCode::kNonceTooHigh || code == ledger::ResultCode::kBusy;
    if (accepted.seq() != 0 || !may_be_lag || pending.rechecks >= options_.refusal_rechecks_max)
        return false;
    ++pending.rechecks;
    pending.quorum = ReplyQuorum(QuorumKind::kOrdered, accept_.ordered, config_.n(),
                                 pending.expected, &verified_roots_);
    pending.next_send = std::min(pending.next_send, link_->now() + options_.refusal_recheck);
    next_timer_ = std::min(next_timer_, pending.next_send);
    return true;
}

void Client::on_read_reply(uint32_t replica, std::string_view frame,
                           const crypto::Envelope& envelope) {
    node::api::pb::ReadReply read;
    if (!read.ParseFromString(envelope.body)) {
        ++counters_.malformed;
        return;
    }
    auto it = reads_.find(read.reply().tx_id());
    if (it == reads_.end() || it->second.finished ||
        (it->second.target && *it->second.target != replica)) {
        ++counters_.stale;
        return;
    }
    auto& pending = it->second;
    pending.quorum.add(replica, config_.replicas[replica].public_key, frame);
    if (pending.quorum.done() || pending.quorum.impossible()) {
        pending.finished = true;
        return;
    }
    // n-f replicas answered without agreeing: the last f may be down (a dead replica is never
    // "impossible"), so give them only a short grace before falling back.
    if (!pending.target && pending.quorum.replicas_heard() >= accept_.read_heard_enough) {
        const auto grace_end = link_->now() + kFastReadStragglerGrace;
        if (grace_end < pending.deadline) {
            pending.deadline = grace_end;
            next_timer_ = std::min(next_timer_, grace_end);
        }
    }
}

// A frame from `replica`, opened with its signature checked; a bad one is counted.
std::optional<crypto::Envelope> Client::open_signed(uint32_t replica, std::string_view frame) {
    crypto::OpenOptions options;
    options.max_bytes = kReplyBytesMax;
    options.expected_sender = config_.replicas[replica].public_key;
    auto envelope = crypto::open(frame, options);
    if (!envelope) {
        ++counters_.bad_signature;
        return std::nullopt;
    }
    return std::move(envelope).value();
}

void Client::on_redirect(uint32_t replica, std::string_view frame) {
    if (!accept_.follows_leader()) {  // a protocol where nobody redirects
        ++counters_.malformed;
        return;
    }
    auto envelope = open_signed(replica, frame);
    if (!envelope) return;
    node::api::pb::Redirect redirect;
    if (!redirect.ParseFromString(envelope->body) || redirect.replica() != replica ||
        (redirect.has_leader() && redirect.leader() >= config_.n())) {
        ++counters_.malformed;
        return;
    }
    auto it = ordered_.find(redirect.tx_id());
    if (it == ordered_.end()) {
        ++counters_.stale;
        return;
    }
    auto& pending = it->second;
    const bool names_other = redirect.has_leader() && redirect.leader() != replica;
    learn_term(redirect.view(), names_other ? std::optional<uint32_t>(redirect.leader()) : std::nullopt);
    const auto now = link_->now();
    if (!names_other || redirect.view() < known_term_) {
        // No leader yet (an election), or a hint older than what the client knows: ask again
        // soon rather than after a whole retransmission interval.
        pending.next_send = std::min(pending.next_send, now + options_.refusal_recheck);
        next_timer_ = std::min(next_timer_, pending.next_send);
        return;
    }
    if (pending.sent_to_leader == redirect.leader() || pending.hops >= accept_.redirect_hops_max) {
        // Already sent there, unanswered (perhaps dead, and the followers still believe in
        // it), or no hops left: every replica again soon, to find the next leader.
        pending.next_send = std::min(pending.next_send, now + options_.leader_recheck);
        next_timer_ = std::min(next_timer_, pending.next_send);
        return;
    }
    ++pending.hops;
    pending.sent_to_leader = redirect.leader();
    ++counters_.redirected;
    send_to(redirect.leader(), pending.envelope);
}

void Client::on_status_reply(uint32_t replica, std::string_view frame) {
    if (!status_) {
        ++counters_.stale;
        return;
    }
    auto envelope = open_signed(replica, frame);
    if (!envelope) return;
    node::api::pb::StatusReply reply;
    if (!reply.ParseFromString(envelope->body)) {
        ++counters_.malformed;
        return;
    }
    if (reply.nonce() != status_->nonce) {
        ++counters_.stale;
        return;
    }
    if (reply.replica() != replica) {
        ++counters_.mismatch;
        return;
    }
    auto& slot = status_->replies[replica];
    if (slot) {
        ++counters_.duplicate;
        return;
    }
    slot = std::move(reply);
    ++status_->answered;
}

// --- Synchronous calls -------------------------------------------------------------------------

Result<OrderedResult> Client::submit(std::string envelope, Duration timeout) {
    std::optional<Result<OrderedResult>> out;
    auto id = submit_async(
        std::move(envelope), [&out](const Result<OrderedResult>& r) { out = r; }, timeout);
    if (!id) return id.error();
    // The request's own deadline completes it; the extra second only guards that promise.
    wait_until([&] { return out.has_value(); }, deadline_after(link_->now(), timeout + Duration{1'000}));
    if (!out) {
        ordered_.erase(id_bytes(*id));
        return timeout_error("request", timeout);
    }
    if (!out->ok() && out->error().code == "timeout") return timeout_error("request", timeout);
    return std::move(*out);
}

Result<TransferResult> Client::transfer(const crypto::KeyPair& key, const crypto::PublicKey& to,
                                        uint64_t amount, std::optional<uint64_t> nonce,
                                        Duration timeout) {
    if (!link_) return make_error("not_connected", "the client is not connected");
    const auto deadline = deadline_after(link_->now(), timeout);
    uint64_t use_nonce = 0;
    if (nonce) {
        use_nonce = *nonce;
    } else {
        // PBFT: a fast read's 2f+1 include one of the f+1 that answered any completed write,
        // so it sees every nonce used. Raft: a majority of followers may not have executed
        // what the leader answered (they learn the commit index with its next append), and a
        // stale nonce would sign the same bytes as an earlier transfer (applied once, answered
        // "ok" twice): read through the leader (ReadIndex, no log write).
        const Consistency nonce_read = accept_.follows_leader() ? Consistency::kLinearizable : Consistency::kFast;
        auto account = balance(key.public_key(), nonce_read, timeout);
        if (!account) return account.error();
        use_nonce = account->nonce + 1;
    }
    auto result = submit(ledger::make_transfer(key, to, amount, use_nonce),
                         until(deadline, link_->now()));
    if (!result) {
        if (result.error().code == "timeout") return timeout_error("transfer", timeout);
        return result.error();
    }
    TransferResult out;
    out.tx_id = result->tx_id;
    out.nonce = use_nonce;
    out.seq = result->seq;
    out.block = result->seq;
    out.result = result->result;
    return out;
}

namespace {

Result<BalanceResult> balance_from_reply(const crypto::PublicKey& account,
                                         const node::api::pb::Reply& reply, Consistency served) {
    BalanceResult out;
    out.account = account;
    out.seq = reply.seq();
    out.served = served;
    if (reply.result() == static_cast<uint32_t>(ledger::ResultCode::kOk)) {
        out.exists = true;
        out.balance = reply.value();
        out.nonce = reply.account_nonce();
        return out;
    }
    if (reply.result() == static_cast<uint32_t>(ledger::ResultCode::kUnknownAccount)) return out;
    return make_error("failed", "the replicas answered the balance query with " +
                                    result_text(reply.result()));
}

}  // namespace

Result<BalanceResult> Client::ordered_balance(const crypto::PublicKey& account,
                                              Clock::time_point deadline) {
    const auto ephemeral = ephemeral_key();
    const auto timeout = until(deadline, link_->now());
    auto result = submit(ledger::make_balance_query(ephemeral, account, 1), timeout);
    if (!result) return result.error();
    node::api::pb::Reply reply;
    reply.set_result(result->result);
    reply.set_seq(result->seq);
    reply.set_value(result->value);
    reply.set_account_nonce(result->account_nonce);
    return balance_from_reply(account, reply, Consistency::kLinearizable);
}

Result<node::api::pb::Reply> Client::unordered_read(const crypto::PublicKey& account,
                                               std::optional<uint32_t> target,
                                               Clock::time_point deadline, std::string* digest) {
    const auto ephemeral = ephemeral_key();
    node::api::pb::ReadRequest request;
    request.set_query(ledger::make_balance_query(ephemeral, account, 1));
    const auto query_id = ledger::tx_id(request.query());
    const std::string id = id_bytes(query_id);
    const uint32_t quorum = target ? 1 : accept_.fast_read;  // kLocal: one replica's word
    const auto now = link_->now();
    PendingRead pending{crypto::seal(ephemeral, crypto::MessageType::kReadRequest,
                                     request.SerializeAsString()),
                        ReplyQuorum(QuorumKind::kRead, std::min(quorum, config_.n()), config_.n(),
                                    ExpectedRequest{query_id, ephemeral.public_key(), 1, true}),
                        target, deadline, now + options_.retransmit_interval, false, made_++};
    auto [it, inserted] = reads_.emplace(id, std::move(pending));
    TALLY_ASSERT(inserted);  // a fresh key's query: a collision means SHA-256 broke
    if (target) {
        send_to(*target, it->second.frame);
    } else {
        send_to_all(it->second.frame);
    }
    next_timer_ = std::min({next_timer_, deadline, it->second.next_send});

    wait_until([&] { return reads_.at(id).finished; }, deadline);
    auto node = reads_.extract(id);
    auto& done = node.mapped();
    counters_ += done.quorum.counters();
    if (!done.quorum.done()) return make_error("timeout", "no quorum of read replies");
    if (digest) *digest = done.quorum.accepted_state_digest();
    return *done.quorum.accepted();
}

Result<BalanceResult> Client::balance(const crypto::PublicKey& account, Consistency consistency,
                                      Duration timeout, uint32_t node) {
    if (!link_) return make_error("not_connected", "the client is not connected");
    const auto deadline = deadline_after(link_->now(), timeout);
    switch (consistency) {
        case Consistency::kLinearizable: {
            auto r = ordered_balance(account, deadline);
            if (!r && r.error().code == "timeout") return timeout_error("balance query", timeout);
            return r;
        }
        case Consistency::kFast: {
            const auto fast_deadline =
                std::min(deadline, deadline_after(link_->now(), options_.fast_read_wait));
            auto reply = unordered_read(account, std::nullopt, fast_deadline, nullptr);
            // Raft: a majority agreeing at one seq may all lag the leader, which answered this
            // client's own writes alone (followers learn the commit index with its next
            // append): a fast read older than what this client saw committed is not believed
            // (else `transfer` would reuse a nonce). Under PBFT the 2f+1 include one of the f+1
            // that answered the write, so an honest answer is never older.
            const bool fresh = !accept_.follows_leader() || (reply && reply->seq() >= session_seq_);
            if (reply && fresh) return balance_from_reply(account, *reply, Consistency::kFast);
            // No 2f+1 agreement (replicas at different points, some down, or lying): ask
            // through consensus instead.
            auto r = ordered_balance(account, deadline);
            if (!r && r.error().code == "timeout") return timeout_error("balance query", timeout);
            return r;
        }
        case Consistency::kLocal: {
            if (node >= config_.n())
                return make_error("bad_request", "no replica " + std::to_string(node) +
                                                     " (the network has " +
                                                     std::to_string(config_.n()) + ")");
            auto reply = unordered_read(account, node, deadline, nullptr);
            if (!reply)
                return make_error("timeout", "replica " + std::to_string(node) +
                                                 " did not answer within " +
                                                 std::to_string(timeout.count()) + " ms");
            auto r = balance_from_reply(account, *reply, Consistency::kLocal);
            if (r) r->replica = node;
            return r;
        }
    }
    return make_error("bad_request", "unknown consistency");
}

Result<TxResult> Client::tx(const crypto::Hash& tx_id, Duration timeout) {
    if (!link_) return make_error("not_connected", "the client is not connected");
    const auto ephemeral = ephemeral_key();
    auto result = submit(ledger::make_tx_query(ephemeral, tx_id, 1), timeout);
    if (!result) {
        if (result.error().code == "timeout") return timeout_error("transaction query", timeout);
        return result.error();
    }
    TxResult out;
    out.tx_id = tx_id;
    out.result = result->result;
    out.seq = result->seq;
    return out;
}

Result<std::vector<ReplicaStatus>> Client::status(std::optional<Duration> wait,
                                                  const std::optional<crypto::Hash>& explain_tx,
                                                  uint32_t recent_seqs) {
    if (!link_) return make_error("not_connected", "the client is not connected");
    const auto ephemeral = ephemeral_key();
    PendingStatus pending;
    pending.nonce = random_();
    pending.replies.resize(config_.n());
    status_ = std::move(pending);
    node::api::pb::StatusRequest request;
    request.set_nonce(status_->nonce);
    if (explain_tx) request.set_explain_tx(std::string(crypto::as_bytes(*explain_tx)));
    request.set_recent_seqs(recent_seqs);
    send_to_all(crypto::seal(ephemeral, crypto::MessageType::kStatusRequest,
                             request.SerializeAsString()));
    const auto deadline = deadline_after(link_->now(), wait.value_or(options_.status_wait));
    wait_until([&] { return status_->answered == config_.n(); }, deadline);

    std::vector<ReplicaStatus> out(config_.n());
    for (uint32_t i = 0; i < config_.n(); ++i) {
        out[i].id = i;
        if (status_->replies[i]) {
            out[i].up = true;
            out[i].reply = std::move(*status_->replies[i]);
        }
    }
    status_.reset();
    return out;
}

ReplyCounters Client::counters() const {
    ReplyCounters total = counters_;
    for (const auto& [id, pending] : ordered_) total += pending.quorum.counters();
    for (const auto& [id, read] : reads_) total += read.quorum.counters();
    return total;
}

}  // namespace tally::client
