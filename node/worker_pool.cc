// WorkerPool: envelope opening, signature checks and reply signing on worker threads
// (worker_pool.h).
#include "node/worker_pool.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bft/pbft/messages.h"
#include "bft/pbft/pbft.pb.h"
#include "crypto/assert.h"
#include "crypto/hash.h"
#include "crypto/reply_batch.h"
#include "node/api/client.pb.h"
#include "node/transport.h"

namespace tally::node {

namespace {

constexpr size_t kSignatureBytes = 64;

std::string_view view_of(const zmq::message_t& m) {
    return std::string_view(static_cast<const char*>(m.data()), m.size());
}

bool is_replica_type(crypto::MessageType type) { return static_cast<uint8_t>(type) >= 16; }

// A short, printable label for a client connection (ROUTER routing ids are binary).
std::string peer_label(std::string_view routing_id) {
    return "client " + crypto::to_hex(routing_id);
}

}  // namespace

WorkerPool::WorkerPool(const WorkerPoolOptions& options, const crypto::KeyPair& key,
                       std::vector<crypto::PublicKey> replicas, bft::ReplicaId self,
                       TxAuthenticator& authenticator, Rejections& rejections)
    : options_(options),
      key_(key),
      replicas_(std::move(replicas)),
      self_(self),
      authenticator_(authenticator),
      rejections_(rejections) {
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    TALLY_ASSERT(wake_fd_ >= 0);  // only fails when the process is out of fds at startup
    events_.reserve(1024);
    if (options_.peer_macs) pairwise_ = crypto::pairwise_keys(key_, replicas_);
    for (uint32_t i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { run(); });
}

WorkerPool::~WorkerPool() {
    {
        std::lock_guard lock(jobs_mutex_);
        stopping_ = true;
    }
    jobs_ready_.notify_all();
    for (auto& t : threads_) t.join();
    ::close(wake_fd_);
}

bool WorkerPool::submit_verify(VerifyJob job) {
    if (on_caller_thread()) {
        verify(job, nullptr);
        return true;
    }
    {
        std::lock_guard lock(jobs_mutex_);
        if (verify_jobs_.size() < options_.verify_jobs_max &&
            verify_bytes_ + job.frame.size() <= options_.verify_bytes_max) {
            verify_bytes_ += job.frame.size();
            verify_jobs_.push_back(std::move(job));
            jobs_ready_.notify_one();
            return true;
        }
    }
    reject("queue_full", "the verification queue is full; dropped a frame from " +
                             peer_label(job.routing_id));
    return false;
}

void WorkerPool::submit_verify_all(std::vector<VerifyJob>& jobs) {
    if (on_caller_thread()) {
        for (auto& job : jobs) verify(job, nullptr);
        jobs.clear();
        return;
    }
    size_t queued = 0;
    {
        std::lock_guard lock(jobs_mutex_);
        for (auto& job : jobs) {
            if (verify_jobs_.size() >= options_.verify_jobs_max ||
                verify_bytes_ + job.frame.size() > options_.verify_bytes_max)
                break;
            verify_bytes_ += job.frame.size();
            verify_jobs_.push_back(std::move(job));
            ++queued;
        }
    }
    if (queued == 1) jobs_ready_.notify_one();
    if (queued > 1) jobs_ready_.notify_all();
    for (size_t i = queued; i < jobs.size(); ++i)
        reject("queue_full", "the verification queue is full; dropped a frame from " +
                                 peer_label(jobs[i].routing_id));
    jobs.clear();
}

bool WorkerPool::submit_sign(SignJob job) {
    if (on_caller_thread()) {
        sign(job);
        return true;
    }
    {
        std::lock_guard lock(jobs_mutex_);
        if (sign_jobs_.size() + batch_sign_jobs_.size() < options_.sign_jobs_max) {
            sign_jobs_.push_back(std::move(job));
            jobs_ready_.notify_one();
            return true;
        }
    }
    reject("reply_queue_full", "the signing queue is full; dropped a reply");
    return false;
}

bool WorkerPool::submit_sign_batch(BatchSignJob job) {
    TALLY_ASSERT(!job.bodies.empty() && job.routing_ids.size() == job.bodies.size());
    if (on_caller_thread()) {
        sign_batch(job);
        return true;
    }
    {
        std::lock_guard lock(jobs_mutex_);
        if (sign_jobs_.size() + batch_sign_jobs_.size() < options_.sign_jobs_max) {
            batch_sign_jobs_.push_back(std::move(job));
            jobs_ready_.notify_one();
            return true;
        }
    }
    reject("reply_queue_full", "the signing queue is full; dropped a batch's replies");
    return false;
}

size_t WorkerPool::pending_jobs() const {
    std::lock_guard lock(jobs_mutex_);
    return verify_jobs_.size() + sign_jobs_.size() + batch_sign_jobs_.size();
}

size_t WorkerPool::pending_verifies() const {
    std::lock_guard lock(jobs_mutex_);
    return verify_jobs_.size();
}

void WorkerPool::run() {
    for (;;) {
        std::optional<SignJob> sign_job;
        std::optional<BatchSignJob> batch_sign_job;
        std::optional<VerifyJob> verify_job;
        {
            std::unique_lock lock(jobs_mutex_);
            jobs_ready_.wait(lock, [&] {
                return stopping_ || !sign_jobs_.empty() || !batch_sign_jobs_.empty() ||
                       !verify_jobs_.empty();
            });
            if (stopping_) return;
            if (!batch_sign_jobs_.empty()) {
                batch_sign_job.emplace(std::move(batch_sign_jobs_.front()));
                batch_sign_jobs_.pop_front();
            } else if (!sign_jobs_.empty()) {
                sign_job.emplace(std::move(sign_jobs_.front()));
                sign_jobs_.pop_front();
            } else {
                verify_job.emplace(std::move(verify_jobs_.front()));
                verify_jobs_.pop_front();
                verify_bytes_ -= verify_job->frame.size();
            }
        }
        if (batch_sign_job) sign_batch(*batch_sign_job);
        if (sign_job) sign(*sign_job);
        if (verify_job) verify(*verify_job, nullptr);
    }
}

void WorkerPool::take_events(std::vector<Event>& out) {
    // Acknowledge first, then take: an event queued after the take re-arms the wake-up.
    wake_pending_.store(false, std::memory_order_seq_cst);
    uint64_t ignored = 0;
    while (::read(wake_fd_, &ignored, sizeof(ignored)) > 0) {
    }
    std::lock_guard lock(events_mutex_);
    if (out.empty()) {
        out.swap(events_);
    } else {
        for (auto& e : events_) out.push_back(std::move(e));
        events_.clear();
    }
}

void WorkerPool::emit(Event event) {
    {
        std::lock_guard lock(events_mutex_);
        if (events_.size() >= options_.events_max) {
            // The consensus thread is far behind; dropping here is like a lost message.
            rejections_.count("queue_full", "the consensus thread's event queue is full");
            return;
        }
        events_.push_back(std::move(event));
    }
    if (!wake_pending_.exchange(true, std::memory_order_seq_cst)) {
        const uint64_t one = 1;
        // Cannot fail short of a counter overflow (2^64 wake-ups): ignore the result.
        [[maybe_unused]] auto written = ::write(wake_fd_, &one, sizeof(one));
    }
}

void WorkerPool::deliver(std::vector<Event>* here, Event event) {
    if (here) {
        here->push_back(std::move(event));
    } else {
        emit(std::move(event));
    }
}

void WorkerPool::verify_here(VerifyJob& job, std::vector<Event>& out) { verify(job, &out); }

bool WorkerPool::idle() const {
    std::lock_guard lock(jobs_mutex_);
    return verify_jobs_.empty() && sign_jobs_.empty() && batch_sign_jobs_.empty();
}

void WorkerPool::reject(std::string_view reason, std::string_view detail) {
    rejections_.count(reason, detail);
}

void WorkerPool::sign(SignJob& job) {
    emit(SignedOut{std::move(job.routing_id), crypto::seal(key_, job.type, job.body)});
}

void WorkerPool::sign_batch(BatchSignJob& job) {
    auto frames = crypto::seal_reply_batch(key_, job.batch, job.bodies);
    for (size_t i = 0; i < frames.size(); ++i)
        emit(SignedOut{std::move(job.routing_ids[i]), std::move(frames[i])});
}

// Requests inside a pre-prepare or a forward: check their signatures here, in parallel, so the
// engine's own checks on the consensus thread are cache hits. The verdicts are only cached;
// the engine decides. A pre-prepare's requests only when its sender is the primary of its view
// (a cheap check first: any other replica's pre-prepare is dropped by the engine unread, and
// must not cost a signature check per request).
void WorkerPool::pre_authenticate_batch(bft::ReplicaId from, crypto::MessageType type,
                                        std::string_view body) {
    const int size = static_cast<int>(body.size());
    if (type == crypto::MessageType::kForward) {
        bft::pbft::pb::Forward forward;
        if (!forward.ParseFromArray(body.data(), size)) return;
        for (const auto& request : forward.requests()) (void)authenticator_.authenticate(request);
        return;
    }
    bft::pbft::pb::PrePrepare pp;
    if (!pp.ParseFromArray(body.data(), size)) return;
    if (replicas_.empty() || pp.view() % replicas_.size() != from) return;
    for (const auto& request : pp.requests()) (void)authenticator_.authenticate(request);
}

// The steps a frame goes through, cheapest first, so that a frame refused early costs no
// signature check; each step counts what it refuses and says so by what it returns.
void WorkerPool::verify(VerifyJob& job, std::vector<Event>* here) {
    const std::string_view frame = view_of(job.frame);
    auto opened = open_unverified(job, frame);
    if (!opened) return;
    crypto::Envelope& env = *opened;
    if (env.type == crypto::MessageType::kRequest) return accept_request(job, frame, here);
    std::optional<bft::ReplicaId> from;
    if (is_replica_type(env.type)) {
        from = replica_sender(job, env);
        if (!from) return;
    }
    if (!signature_holds(job, env, frame, from, here)) return;
    switch (env.type) {
        case crypto::MessageType::kReadRequest:
            return accept_read(job, env, here);
        case crypto::MessageType::kStatusRequest:
            return accept_status_request(job, env, here);
        default:
            return accept_from_replica(job, std::move(env), from, here);
    }
}

// Sizes, version, type first, and the port it came in on: no signature work for a frame that
// is not one, or is not for this socket.
std::optional<crypto::Envelope> WorkerPool::open_unverified(const VerifyJob& job,
                                                            std::string_view frame) {
    crypto::OpenOptions header_only;
    header_only.verify_signature = false;
    auto opened = crypto::open(frame, header_only);
    if (!opened) {
        reject(opened.error().code, peer_label(job.routing_id) + ": " + opened.error().message);
        return std::nullopt;
    }
    const crypto::MessageType type = opened->type;
    if (options_.clients_have_own_port && is_replica_type(type) == on_client_port(job.routing_id)) {
        reject("wrong_port",
               peer_label(job.routing_id) + ": a " + std::string(crypto::type_name(type)) +
                   (is_replica_type(type) ? " on the clients' port" : " on the replicas' port"));
        return std::nullopt;
    }
    return std::move(opened).value();
}

// A client's transfer or query. One signature serves the envelope and the transaction: the
// authenticator checks it (and caches the verdict for when this request comes back inside a
// pre-prepare).
void WorkerPool::accept_request(VerifyJob& job, std::string_view frame, std::vector<Event>* here) {
    auto tx = authenticator_.authenticate_tx(frame);
    if (!tx) {
        const bool bad_signature = tx.error().code == "bad_signature";
        reject(bad_signature ? "bad_signature" : "malformed_request",
               peer_label(job.routing_id) + ": " + tx.error().message);
        if (bad_signature && on_client_port(job.routing_id))
            deliver(here, ConnectionFault{std::move(job.routing_id)});
        return;
    }
    const bool query = tx->kind != ledger::TxKind::kTransfer;
    bft::ClientRequest request{bft::RequestInfo{tx->sender, tx->nonce}, std::move(tx->envelope)};
    deliver(here, RequestIn{std::move(job.routing_id), std::move(request), tx->id, query});
}

// The id of the replica whose key signed a replica message: none (and counted) when the key is
// no replica's, or is this replica's own (a frame of its own that came back).
std::optional<bft::ReplicaId> WorkerPool::replica_sender(const VerifyJob& job, const crypto::Envelope& env) {
    std::optional<bft::ReplicaId> from;
    for (bft::ReplicaId i = 0; i < replicas_.size(); ++i)
        if (replicas_[i] == env.sender) from = i;
    if (!from) {
        reject("wrong_sender", crypto::key_to_hex(env.sender).substr(0, 16) +
                                   "… is not a replica's key (" +
                                   std::string(crypto::type_name(env.type)) + ")");
        return std::nullopt;
    }
    if (*from == self_) {
        reject("from_self", "a " + std::string(crypto::type_name(env.type)) +
                                " signed by this replica's own key came back");
        return std::nullopt;
    }
    // Only the replica it names may send it, over its own connection (node/host.h): a frame
    // naming another replica is a forgery or a replay, and costs no signature check.
    const auto connection = replica_connection(job.routing_id);
    if (connection != from) {
        reject("wrong_connection",
               "a " + std::string(crypto::type_name(env.type)) + " naming replica " + std::to_string(*from) +
                   " as its sender came on " +
                   (connection ? "replica " + std::to_string(*connection) + "'s connection"
                               : "a connection that is no replica's"));
        return std::nullopt;
    }
    return from;
}

// The envelope's signature, over everything but itself (envelope.h); a PBFT pre-prepare's
// header's instead, which is what authenticates it (bft/pbft/messages.h: one check, not two).
// A client, or a replica over its own connection, whose frame fails it is reported to the
// consensus thread (ConnectionFault), which may cut it off for a while.
bool WorkerPool::signature_holds(VerifyJob& job, const crypto::Envelope& env,
                                 std::string_view frame, std::optional<bft::ReplicaId> from,
                                 std::vector<Event>* here) {
    if (env.type == crypto::MessageType::kPrePrepare && from) {
        bft::pbft::pb::PrePrepare pp;
        if (!bft::pbft::decode(env.body, pp)) {
            reject("malformed_body", "replica " + std::to_string(*from) + ": a pre_prepare's body");
            return false;
        }
        if (bft::pbft::header_binds(pp, env.sender, /*check_signature=*/true)) return true;
        reject("bad_signature", "replica " + std::to_string(*from) +
                                    ": a pre_prepare whose signed header does not verify, or does "
                                    "not name its view, seq and digest");
        deliver(here, ConnectionFault{std::move(job.routing_id)});
        return false;
    }
    const std::string_view covered = frame.substr(0, frame.size() - kSignatureBytes);
    const bool pairwise_key = from && *from < pairwise_.size() && pairwise_[*from];
    if (env.pairwise ? pairwise_key && crypto::verify_peer_mac(*pairwise_[*from], covered, env.signature)
                     : crypto::verify(env.sender, crypto::kDomainEnvelope, covered, env.signature))
        return true;
    reject("bad_signature",
           (from ? "replica " + std::to_string(*from) : peer_label(job.routing_id)) + ": " +
               std::string(crypto::type_name(env.type)) +
               (env.pairwise && !pairwise_key ? " with a MAC where a signature is required" : ""));
    if (on_client_port(job.routing_id) || replica_connection(job.routing_id))
        deliver(here, ConnectionFault{std::move(job.routing_id)});
    return false;
}

void WorkerPool::accept_read(VerifyJob& job, const crypto::Envelope& env,
                             std::vector<Event>* here) {
    api::pb::ReadRequest read;
    if (!read.ParseFromString(env.body)) {
        reject("malformed_body", peer_label(job.routing_id) + ": a read request's body");
        return;
    }
    auto query = ledger::decode_tx(read.query());
    if (!query) {
        reject("malformed_request",
               peer_label(job.routing_id) + ": read: " + query.error().message);
        return;
    }
    deliver(here, ReadIn{std::move(job.routing_id), std::move(*read.mutable_query()), query->sender,
                         query->nonce});
}

void WorkerPool::accept_status_request(VerifyJob& job, const crypto::Envelope& env,
                                       std::vector<Event>* here) {
    api::pb::StatusRequest status;
    if (!status.ParseFromString(env.body)) {
        reject("malformed_body", peer_label(job.routing_id) + ": a status request's body");
        return;
    }
    std::optional<crypto::Hash> explain_tx;
    if (!status.explain_tx().empty()) {
        if (status.explain_tx().size() != crypto::Hash{}.size()) {
            reject("malformed_body", peer_label(job.routing_id) + ": explain_tx is not 32 bytes");
            return;
        }
        explain_tx.emplace();
        std::memcpy(explain_tx->data(), status.explain_tx().data(), explain_tx->size());
    }
    deliver(here,
            StatusIn{std::move(job.routing_id), status.nonce(), explain_tx, status.recent_seqs()});
}

// Everything else is for the engine, from a replica (`from`, none for a client's frame).
void WorkerPool::accept_from_replica(VerifyJob& job, crypto::Envelope env,
                                     std::optional<bft::ReplicaId> from, std::vector<Event>* here) {
    if (!from) {
        // kReply, kReadReply, kStatusReply: replicas send those, they never receive them.
        reject("unexpected_type", peer_label(job.routing_id) + ": a replica does not accept " +
                                      std::string(crypto::type_name(env.type)));
        return;
    }
    if (env.type == crypto::MessageType::kPrePrepare || env.type == crypto::MessageType::kForward)
        pre_authenticate_batch(*from, env.type, env.body);
    deliver(here, PeerMessage{*from, std::move(env), std::move(job.frame)});
}

}  // namespace tally::node
