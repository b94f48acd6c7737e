// WorkerPool: the threads that do a replica's signature work off the consensus thread.
//
// Input: raw frames from the ROUTER socket (VerifyJob), reply bodies to sign one by one
// (SignJob), and the replies of an executed batch to sign under one root (BatchSignJob).
// A worker opens each frame (crypto::open's checks), requires replica message types to come
// from a replica's key, checks the signature (for a client request, through the
// TxAuthenticator, which caches the verdict for the engine), pre-checks the requests inside a
// pre-prepare the same way, and queues a verified Event for the consensus thread, which it
// wakes through an eventfd (poll()-able next to the ZeroMQ sockets). Every refused frame is
// counted in Rejections by reason.
//
// Bounds: both job queues and the event queue are bounded; what does not fit is dropped and
// counted ("queue_full", "reply_queue_full"). Sign jobs go first: they finish work already done.
//
// Threads: submit_* and take_events are called by the consensus thread; the workers run
// their own. Nothing here touches a ZeroMQ socket.
//
// With WorkerPoolOptions::threads = 0 (the deterministic simulator) there are no workers:
// every submit_* does its job at once, on the caller's thread, before it returns, and queues
// its events as a worker would, so take_events() returns them in submission order. Nothing
// waits (idle() is always true, pending_* 0); only the event queue's bound applies.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "crypto/keys.h"
#include "node/authenticator.h"
#include "node/events.h"
#include "node/rejections.h"

namespace tally::node {

struct VerifyJob {
    std::string routing_id;
    zmq::message_t frame;
};

struct SignJob {
    std::string routing_id;
    crypto::MessageType type{};
    std::string body;
};

// The replies of one executed batch: sealed together under one signature over their Merkle
// root (crypto/reply_batch.h), each frame then sent to its own client.
// Invariant: routing_ids.size() == bodies.size() >= 1.
struct BatchSignJob {
    uint64_t batch = 0;  // the batch's sequence number
    std::vector<std::string> routing_ids;
    std::vector<std::string> bodies;
};

struct WorkerPoolOptions {
    // Worker threads. 0: none, all work is done on the caller's thread as it is submitted
    // (see the header comment).
    uint32_t threads = 2;
    size_t verify_jobs_max = 16384;
    size_t verify_bytes_max = 64u << 20;  // frames waiting for a worker, in bytes
    size_t sign_jobs_max = 65536;  // SignJobs and BatchSignJobs together
    size_t events_max = 65536;  // verified events waiting for the consensus thread
    // Clients have a port of their own (transport.h): replica messages on it, and client
    // messages on the peers' port, are refused ("wrong_port").
    bool clients_have_own_port = false;
    // Raft: replicas authenticate what they send each other with a MAC under the key the two
    // share (crypto/keys.h, PairwiseKey), and this pool checks it; a replica's frame with a MAC
    // is refused ("bad_signature") when this is off (PBFT, whose votes must convince others).
    bool peer_macs = false;
};

class WorkerPool {
public:
    // `replicas` are the replicas' public keys by id; `self` is this replica's id. `key`,
    // `authenticator` and `rejections` must outlive the pool.
    WorkerPool(const WorkerPoolOptions& options, const crypto::KeyPair& key,
               std::vector<crypto::PublicKey> replicas, bft::ReplicaId self,
               TxAuthenticator& authenticator, Rejections& rejections);
    ~WorkerPool();  // stops and joins the workers
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    // Queue work; false (and counted) when the queue is full.
    bool submit_verify(VerifyJob job);
    // Queues every job of `jobs` (those that fit) under one lock and one wake-up; clears it.
    void submit_verify_all(std::vector<VerifyJob>& jobs);
    bool submit_sign(SignJob job);
    bool submit_sign_batch(BatchSignJob job);

    // The fd the consensus thread polls for "events are ready" (readable until acknowledged).
    // Always a valid eventfd, with threads = 0 too: there it is readable exactly when a submit_*
    // on the caller's thread queued events that take_events() has not taken yet, so a loop that
    // polls it never waits with events ready (and one that does not poll it loses nothing).
    int wake_fd() const { return wake_fd_; }
    // Acknowledges the wake-up and moves every ready event to the end of `out`.
    void take_events(std::vector<Event>& out);

    // Jobs waiting (for tests and status).
    size_t pending_jobs() const;
    // Frames waiting for a worker to check them (not counting those being checked).
    size_t pending_verifies() const;
    // True when no job waits for a worker.
    bool idle() const;

    // The same checks as a worker's, run on the calling thread; the event (if the frame is
    // accepted) is appended to `out`. For a caller that has so little to check that handing it
    // over would cost more than doing it (see ReplicaOptions::inline_verify_frames_max).
    void verify_here(VerifyJob& job, std::vector<Event>& out);

private:
    bool on_caller_thread() const { return options_.threads == 0; }
    void run();
    // Verifies one frame; its event goes to `here` when given, else to the event queue.
    void verify(VerifyJob& job, std::vector<Event>* here);
    // verify's steps, in order (worker_pool.cc). Each counts what it refuses.
    std::optional<crypto::Envelope> open_unverified(const VerifyJob& job, std::string_view frame);
    void accept_request(VerifyJob& job, std::string_view frame, std::vector<Event>* here);
    std::optional<bft::ReplicaId> replica_sender(const VerifyJob& job, const crypto::Envelope& env);
    bool signature_holds(VerifyJob& job, const crypto::Envelope& env, std::string_view frame,
                         std::optional<bft::ReplicaId> from, std::vector<Event>* here);
    void accept_read(VerifyJob& job, const crypto::Envelope& env, std::vector<Event>* here);
    void accept_status_request(VerifyJob& job, const crypto::Envelope& env,
                               std::vector<Event>* here);
    void accept_from_replica(VerifyJob& job, crypto::Envelope env,
                             std::optional<bft::ReplicaId> from, std::vector<Event>* here);
    void deliver(std::vector<Event>* here, Event event);
    void sign(SignJob& job);
    void sign_batch(BatchSignJob& job);
    void emit(Event event);
    void reject(std::string_view reason, std::string_view detail);
    void pre_authenticate_batch(bft::ReplicaId from, crypto::MessageType type, std::string_view body);

    const WorkerPoolOptions options_;
    const crypto::KeyPair& key_;
    const std::vector<crypto::PublicKey> replicas_;
    // By replica id, when options_.peer_macs: the key this replica shares with each (none for
    // itself, or for a key that derives none).
    std::vector<std::optional<crypto::PairwiseKey>> pairwise_;
    const bft::ReplicaId self_;
    TxAuthenticator& authenticator_;
    Rejections& rejections_;

    mutable std::mutex jobs_mutex_;
    std::condition_variable jobs_ready_;
    std::deque<VerifyJob> verify_jobs_;  // guarded by jobs_mutex_
    size_t verify_bytes_ = 0;            // guarded by jobs_mutex_
    std::deque<SignJob> sign_jobs_;      // guarded by jobs_mutex_
    std::deque<BatchSignJob> batch_sign_jobs_;  // guarded by jobs_mutex_
    bool stopping_ = false;              // guarded by jobs_mutex_

    std::mutex events_mutex_;
    std::vector<Event> events_;  // guarded by events_mutex_
    std::atomic<bool> wake_pending_{false};
    int wake_fd_ = -1;

    std::vector<std::thread> threads_;
};

}  // namespace tally::node
