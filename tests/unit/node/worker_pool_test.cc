// WorkerPool: every frame ends as exactly one verified event or one counted rejection, by
// reason; replies are signed (a batch's under one root); a full queue drops and counts.
#include "node/worker_pool.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <set>

#include "bft/pbft/messages.h"
#include "bft/pbft/pbft.pb.h"
#include "crypto/envelope.h"
#include "crypto/reply_batch.h"
#include "ledger/tx.h"
#include "node/api/client.pb.h"
#include "node/host.h"

namespace tally::node {
namespace {

using namespace std::chrono_literals;

crypto::KeyPair key_n(uint8_t n) {
    crypto::Seed seed{};
    seed[0] = n;
    seed[1] = 0x77;
    return crypto::KeyPair::from_seed(seed);
}

class WorkerPoolTest : public ::testing::Test {
protected:
    WorkerPoolTest() {
        for (uint8_t i = 0; i < 4; ++i) replicas_.push_back(key_n(i).public_key());
    }

    std::unique_ptr<WorkerPool> make_pool(WorkerPoolOptions options = {}) {
        return std::make_unique<WorkerPool>(options, self_key_, replicas_, 0, auth_, rejections_);
    }

    // A frame as it arrives: on the connection of the replica it names as its sender (as the
    // transport hands those out, node/host.h), or on another one.
    VerifyJob job(std::string frame) const {
        std::string routing_id = "rid";
        crypto::OpenOptions header_only;
        header_only.verify_signature = false;
        if (auto env = crypto::open(frame, header_only))
            for (bft::ReplicaId i = 0; i < replicas_.size(); ++i)
                if (replicas_[i] == env->sender) routing_id = replica_routing_id(i, "rid");
        return job(std::move(frame), std::move(routing_id));
    }
    static VerifyJob job(std::string frame, std::string routing_id) {
        return VerifyJob{std::move(routing_id), zmq::message_t(frame.data(), frame.size())};
    }

    // Waits (on the pool's wake-up fd, with a deadline) until `want` events arrived or
    // `rejected` rejections were counted.
    std::vector<Event> wait_for(WorkerPool& pool, size_t want, uint64_t rejected = 0) {
        std::vector<Event> out;
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (std::chrono::steady_clock::now() < deadline) {
            pool.take_events(out);
            if (out.size() >= want && total_rejected() >= rejected) break;
            pollfd fd{pool.wake_fd(), POLLIN, 0};
            ::poll(&fd, 1, 20);
        }
        return out;
    }

    // Submits `frame` and waits for the one event it becomes, which must be a PeerMessage.
    PeerMessage peer_message_of(WorkerPool& pool, const std::string& frame) {
        EXPECT_TRUE(pool.submit_verify(job(frame)));
        auto events = wait_for(pool, 1);
        EXPECT_EQ(events.size(), 1u);
        auto* m = events.size() == 1 ? std::get_if<PeerMessage>(&events[0]) : nullptr;
        EXPECT_NE(m, nullptr) << "not a peer message";
        return m ? std::move(*m) : PeerMessage{};
    }

    // Takes the ConnectionFault events out of `events`: the routing ids they charge.
    static std::vector<std::string> take_faults(std::vector<Event>& events) {
        std::vector<std::string> faults;
        std::erase_if(events, [&](Event& e) {
            auto* fault = std::get_if<ConnectionFault>(&e);
            if (fault) faults.push_back(fault->routing_id);
            return fault != nullptr;
        });
        return faults;
    }

    uint64_t total_rejected() const {
        uint64_t total = 0;
        for (const auto& [reason, count] : rejections_.snapshot()) total += count;
        return total;
    }

    crypto::KeyPair self_key_ = key_n(0);
    std::vector<crypto::PublicKey> replicas_;
    TxAuthenticator auth_;
    Rejections rejections_;
};

TEST_F(WorkerPoolTest, AValidRequestBecomesARequestEventWithItsIdAndClient) {
    auto pool = make_pool();
    const auto alice = key_n(9);
    const std::string tx = ledger::make_transfer(alice, key_n(8).public_key(), 3, 1);
    ASSERT_TRUE(pool->submit_verify(job(tx, "alice-conn")));
    auto events = wait_for(*pool, 1);
    ASSERT_EQ(events.size(), 1u);
    auto* in = std::get_if<RequestIn>(&events[0]);
    ASSERT_NE(in, nullptr);
    EXPECT_EQ(in->routing_id, "alice-conn");
    EXPECT_EQ(in->request.info.client, alice.public_key());
    EXPECT_EQ(in->request.info.nonce, 1u);
    EXPECT_EQ(in->request.payload, tx);
    EXPECT_EQ(in->tx_id, ledger::tx_id(tx));
    // The verdict is cached for the engine's look inside a pre-prepare.
    EXPECT_TRUE(auth_.authenticate(tx).ok());
    EXPECT_EQ(auth_.stats().hits, 1u);
}

TEST_F(WorkerPoolTest, AReplicaMessageBecomesAPeerMessageFromItsSender) {
    auto pool = make_pool();
    const std::string frame = crypto::seal(key_n(2), crypto::MessageType::kPrepare, "vote");
    const PeerMessage m = peer_message_of(*pool, frame);
    EXPECT_EQ(m.from, 2u);
    EXPECT_EQ(m.envelope.type, crypto::MessageType::kPrepare);
    EXPECT_EQ(m.envelope.body, "vote");
    EXPECT_EQ(m.raw.to_string(), frame);
}

// Raft's replicas authenticate their messages to each other with pairwise MACs (crypto/keys.h).
TEST_F(WorkerPoolTest, WithPeerMacsAReplicasMacForThisReplicaIsAcceptedAndAnyOtherRefused) {
    WorkerPoolOptions options;
    options.peer_macs = true;
    auto pool = make_pool(options);
    const auto two = key_n(2);
    const auto for_us = crypto::PairwiseKey::derive(two, self_key_.public_key()).value();
    const auto for_three = crypto::PairwiseKey::derive(two, key_n(3).public_key()).value();
    const PeerMessage m = peer_message_of(
        *pool, crypto::seal_for_peer(two, for_us, crypto::MessageType::kRaftAppend, "entries"));
    EXPECT_EQ(m.from, 2u);
    EXPECT_TRUE(m.envelope.pairwise);
    EXPECT_EQ(m.envelope.body, "entries");
    // A MAC made for replica 3, and a signed frame, from the same sender.
    ASSERT_TRUE(pool->submit_verify(
        job(crypto::seal_for_peer(two, for_three, crypto::MessageType::kRaftAppend, "entries"))));
    ASSERT_TRUE(pool->submit_verify(job(crypto::seal(two, crypto::MessageType::kRaftAppend, "signed"))));
    auto events = wait_for(*pool, 2, 1);
    // The MAC that fails is charged to the replica whose connection it came on.
    EXPECT_EQ(take_faults(events), std::vector<std::string>{replica_routing_id(2, "rid")});
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(std::get<PeerMessage>(events[0]).envelope.body, "signed");
    EXPECT_EQ(rejections_.get("bad_signature"), 1u);
}

TEST_F(WorkerPoolTest, WithoutPeerMacsAReplicasMacIsRefused) {
    auto pool = make_pool();  // PBFT: every replica message must carry a signature
    const auto two = key_n(2);
    const auto for_us = crypto::PairwiseKey::derive(two, self_key_.public_key()).value();
    ASSERT_TRUE(pool->submit_verify(job(crypto::seal_for_peer(two, for_us, crypto::MessageType::kPrepare, "vote"))));
    auto events = wait_for(*pool, 1, 1);
    EXPECT_EQ(take_faults(events), std::vector<std::string>{replica_routing_id(2, "rid")});
    EXPECT_TRUE(events.empty());
    EXPECT_EQ(rejections_.get("bad_signature"), 1u);
}

TEST_F(WorkerPoolTest, StatusAndReadRequestsBecomeTheirEvents) {
    auto pool = make_pool();
    api::pb::StatusRequest status;
    status.set_nonce(77);
    ASSERT_TRUE(pool->submit_verify(
        job(crypto::seal(key_n(9), crypto::MessageType::kStatusRequest, status.SerializeAsString()))));
    api::pb::ReadRequest read;
    read.set_query(ledger::make_balance_query(key_n(9), key_n(8).public_key(), 5));
    ASSERT_TRUE(pool->submit_verify(
        job(crypto::seal(key_n(9), crypto::MessageType::kReadRequest, read.SerializeAsString()))));
    auto events = wait_for(*pool, 2);
    ASSERT_EQ(events.size(), 2u);
    size_t statuses = 0, reads = 0;
    for (auto& e : events) {
        if (auto* s = std::get_if<StatusIn>(&e)) {
            EXPECT_EQ(s->nonce, 77u);
            ++statuses;
        }
        if (auto* r = std::get_if<ReadIn>(&e)) {
            EXPECT_EQ(r->client, key_n(9).public_key());
            EXPECT_EQ(r->nonce, 5u);
            EXPECT_EQ(r->query, read.query());
            ++reads;
        }
    }
    EXPECT_EQ(statuses, 1u);
    EXPECT_EQ(reads, 1u);
}

TEST_F(WorkerPoolTest, EachBadFrameIsCountedUnderItsOwnReason) {
    auto pool = make_pool();
    std::string bad_signature = crypto::seal(key_n(9), crypto::MessageType::kStatusRequest, "");
    bad_signature.back() = static_cast<char>(bad_signature.back() ^ 1);
    std::string forged_replica = crypto::seal(key_n(9), crypto::MessageType::kCommit, "x");
    std::copy(replicas_[1].begin(), replicas_[1].end(), forged_replica.begin() + 2);
    std::string unknown_type = crypto::seal(key_n(9), crypto::MessageType::kStatusRequest, "");
    unknown_type[1] = static_cast<char>(99);
    std::string bad_tx = ledger::make_transfer(key_n(9), key_n(8).public_key(), 3, 1);
    bad_tx[bad_tx.size() - 5] = static_cast<char>(bad_tx[bad_tx.size() - 5] ^ 4);
    // A pre-prepare is authenticated by its header (bft/pbft/messages.h): replica 1's, with
    // replica 2's header inside.
    auto pp = bft::pbft::read_pre_prepare(bft::pbft::seal_pre_prepare(key_n(2), 1, 1, {}, {}));
    const std::string foreign_header = crypto::seal(key_n(1), crypto::MessageType::kPrePrepare, pp->SerializeAsString());

    const std::vector<std::pair<std::string, std::string>> cases = {
        {"truncated", "short"},
        {"malformed", crypto::seal(key_n(9), crypto::MessageType::kStatusRequest, "") + "x"},
        {"unknown_type", unknown_type},
        {"bad_signature", bad_signature},
        {"bad_signature", forged_replica},
        {"bad_signature", bad_tx},
        {"bad_signature", foreign_header},
        {"malformed_body", crypto::seal(key_n(1), crypto::MessageType::kPrePrepare, "\xff\xff")},
        {"wrong_sender", crypto::seal(key_n(9), crypto::MessageType::kPrePrepare, "")},
        {"from_self", crypto::seal(self_key_, crypto::MessageType::kPrepare, "")},
        {"unexpected_type", crypto::seal(key_n(9), crypto::MessageType::kReply, "")},
        {"malformed_request", crypto::seal(key_n(9), crypto::MessageType::kRequest, "junk")},
        {"malformed_body", crypto::seal(key_n(9), crypto::MessageType::kStatusRequest, "\xff\xff")},
    };
    for (const auto& [reason, frame] : cases) ASSERT_TRUE(pool->submit_verify(job(frame)));
    auto events = wait_for(*pool, 2, cases.size());
    // Replica 1's two frames that fail their checks on its own connection are charged to it
    // (ConnectionFault); the others came on no client's or replica's connection.
    EXPECT_EQ(take_faults(events), std::vector<std::string>(2, replica_routing_id(1, "rid")));
    EXPECT_TRUE(events.empty());
    std::map<std::string, uint64_t> want;
    for (const auto& [reason, frame] : cases) ++want[reason];
    for (const auto& [reason, count] : want) EXPECT_EQ(rejections_.get(reason), count) << reason;
    EXPECT_EQ(total_rejected(), cases.size());
}

// A replica's message is held to the connection it came on before its signature is checked:
// one naming replica 1, even validly signed (a replay), is refused on replica 2's connection
// and on a connection that is no replica's; on replica 1's own it gets through.
TEST_F(WorkerPoolTest, AReplicasMessageOnAnotherConnectionIsRefusedBeforeItsSignatureIsChecked) {
    auto pool = make_pool();
    const std::string commit = crypto::seal(key_n(1), crypto::MessageType::kCommit, "x");
    ASSERT_TRUE(pool->submit_verify(job(commit, replica_routing_id(2, "rid"))));
    ASSERT_TRUE(pool->submit_verify(job(commit, "prid")));
    EXPECT_TRUE(wait_for(*pool, 0, 2).empty());
    EXPECT_EQ(rejections_.get("wrong_connection"), 2u);
    EXPECT_EQ(total_rejected(), 2u);
    ASSERT_TRUE(pool->submit_verify(job(commit, replica_routing_id(1, "rid"))));
    auto events = wait_for(*pool, 1);
    ASSERT_EQ(events.size(), 1u);
    auto* m = std::get_if<PeerMessage>(&events[0]);
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->from, 1u);
    EXPECT_EQ(total_rejected(), 2u);
}

TEST_F(WorkerPoolTest, SignJobsComeBackAsSealedEnvelopes) {
    auto pool = make_pool();
    ASSERT_TRUE(pool->submit_sign(SignJob{"client-7", crypto::MessageType::kReply, "body"}));
    auto events = wait_for(*pool, 1);
    ASSERT_EQ(events.size(), 1u);
    auto* out = std::get_if<SignedOut>(&events[0]);
    ASSERT_NE(out, nullptr);
    EXPECT_EQ(out->routing_id, "client-7");
    crypto::OpenOptions options;
    options.expected_sender = self_key_.public_key();
    auto env = crypto::open(out->envelope, options);
    ASSERT_TRUE(env.ok()) << env.error().message;
    EXPECT_EQ(env->type, crypto::MessageType::kReply);
    EXPECT_EQ(env->body, "body");
}

TEST_F(WorkerPoolTest, ABatchSignJobComesBackAsOneFramePerReplyUnderOneRoot) {
    auto pool = make_pool();
    BatchSignJob batch;
    batch.batch = 12;
    for (int i = 0; i < 5; ++i) {
        batch.routing_ids.push_back("client-" + std::to_string(i));
        batch.bodies.push_back("reply " + std::to_string(i));
    }
    ASSERT_TRUE(pool->submit_sign_batch(batch));
    auto events = wait_for(*pool, 5);
    ASSERT_EQ(events.size(), 5u);
    std::set<std::string> statements;
    for (size_t i = 0; i < events.size(); ++i) {
        auto* out = std::get_if<SignedOut>(&events[i]);
        ASSERT_NE(out, nullptr);
        EXPECT_EQ(out->routing_id, batch.routing_ids[i]);
        crypto::OpenOptions options;
        options.expected_sender = self_key_.public_key();
        auto env = crypto::open(out->envelope, options);  // checks the path and the root's signature
        ASSERT_TRUE(env.ok()) << env.error().message;
        EXPECT_EQ(env->type, crypto::MessageType::kBatchReply);
        auto reply = crypto::decode_reply_batch(env->body);
        ASSERT_TRUE(reply.ok());
        EXPECT_EQ(reply->batch, 12u);
        EXPECT_EQ(reply->leaf, batch.bodies[i]);
        statements.insert(crypto::reply_batch_claim(*reply).value());
    }
    EXPECT_EQ(statements.size(), 1u);  // one root, one signature, for all five
}

TEST_F(WorkerPoolTest, AFullQueueDropsAndCounts) {
    WorkerPoolOptions options;
    options.threads = 1;
    options.verify_jobs_max = 0;  // nothing fits
    auto pool = make_pool(options);
    EXPECT_FALSE(pool->submit_verify(job("x")));
    std::vector<VerifyJob> jobs;
    jobs.push_back(job("y"));
    jobs.push_back(job("z"));
    pool->submit_verify_all(jobs);
    EXPECT_TRUE(jobs.empty());
    EXPECT_EQ(rejections_.get("queue_full"), 3u);
}

// A pre-prepare's requests cost a signature check each: a worker checks them ahead of the
// engine only for the primary of the pre-prepare's view, which a header read tells.
TEST_F(WorkerPoolTest, AWorkerPreAuthenticatesAPrePreparesRequestsOnlyFromThePrimaryOfItsView) {
    auto pool = make_pool();
    const auto alice = key_n(9);
    std::vector<std::string> batch;
    for (uint64_t nonce = 1; nonce <= 8; ++nonce)
        batch.push_back(ledger::make_transfer(alice, key_n(8).public_key(), 3, nonce));
    const crypto::Hash digest = bft::pbft::batch_digest(batch);
    std::vector<Event> out;
    // View 0 (primary: replica 0), sent by replica 2.
    auto not_primary = job(bft::pbft::seal_pre_prepare(key_n(2), 0, 1, digest, batch));
    pool->verify_here(not_primary, out);
    ASSERT_EQ(out.size(), 1u) << "the engine still gets it, and counts it";
    EXPECT_EQ(auth_.stats().misses, 0u) << "requests checked for a replica that is not the primary";
    // View 2: now replica 2 is the primary of the pre-prepare's view.
    auto primary = job(bft::pbft::seal_pre_prepare(key_n(2), 2, 1, digest, batch));
    pool->verify_here(primary, out);
    EXPECT_EQ(auth_.stats().misses, 8u);
}

// One signature check per pre-prepare, its header's (bft/pbft/messages.h): a pre-prepare whose
// envelope signature is wrong but whose header binds it is the primary's, and goes to the
// engine; one whose header signature is wrong does not, whatever its envelope's.
TEST_F(WorkerPoolTest, APrePrepareIsCheckedByItsHeadersSignatureAlone) {
    auto pool = make_pool();
    std::vector<std::string> batch{ledger::make_transfer(key_n(9), key_n(8).public_key(), 3, 1)};
    std::string raw = bft::pbft::seal_pre_prepare(key_n(1), 1, 1, bft::pbft::batch_digest(batch), batch);
    raw.back() = static_cast<char>(raw.back() ^ 1);
    std::vector<Event> out;
    auto bad_envelope = job(raw);
    pool->verify_here(bad_envelope, out);
    ASSERT_EQ(out.size(), 1u);
    auto* in = std::get_if<PeerMessage>(&out[0]);
    ASSERT_NE(in, nullptr);
    EXPECT_EQ(in->from, 1u);
    EXPECT_EQ(in->envelope.type, crypto::MessageType::kPrePrepare);
    EXPECT_EQ(total_rejected(), 0u);

    auto pp = bft::pbft::read_pre_prepare(raw);
    std::string header = pp->header();
    header.back() = static_cast<char>(header.back() ^ 1);
    pp->set_header(header);
    auto bad_header = job(crypto::seal(key_n(1), crypto::MessageType::kPrePrepare, pp->SerializeAsString()));
    pool->verify_here(bad_header, out);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_NE(std::get_if<ConnectionFault>(&out[1]), nullptr) << "replica 1 was not charged for it";
    EXPECT_EQ(rejections_.get("bad_signature"), 1u);
}

// threads = 0 (the simulator's): every job is done inside its submit_*, in order, with no
// thread and no waiting; the wake-up fd is readable exactly while events wait.
TEST_F(WorkerPoolTest, WithNoThreadsEachJobIsDoneAsItIsSubmittedInOrder) {
    WorkerPoolOptions options;
    options.threads = 0;
    auto pool = make_pool(options);
    EXPECT_TRUE(pool->idle());
    const auto readable = [&] {
        pollfd fd{pool->wake_fd(), POLLIN, 0};
        return ::poll(&fd, 1, 0) == 1;
    };
    EXPECT_FALSE(readable());

    const auto alice = key_n(9);
    std::vector<std::string> frames;
    for (uint64_t nonce = 1; nonce <= 3; ++nonce) {
        frames.push_back(ledger::make_transfer(alice, key_n(8).public_key(), 3, nonce));
        frames.push_back(crypto::seal(key_n(static_cast<uint8_t>(nonce)), crypto::MessageType::kPrepare,
                                      "vote " + std::to_string(nonce)));
    }
    std::vector<VerifyJob> jobs;
    for (size_t i = 0; i < frames.size(); ++i)  // the prepares on their replicas' connections
        jobs.push_back(i % 2 ? job(frames[i]) : job(frames[i], "conn-" + std::to_string(i)));
    jobs.push_back(job("not a frame"));
    pool->submit_verify_all(jobs);
    EXPECT_TRUE(jobs.empty());
    EXPECT_TRUE(pool->submit_verify(job(frames[1], replica_routing_id(1, "last"))));
    ASSERT_TRUE(pool->submit_sign(SignJob{"client-7", crypto::MessageType::kReply, "body"}));
    BatchSignJob batch{12, {"b-0", "b-1"}, {"reply 0", "reply 1"}};
    ASSERT_TRUE(pool->submit_sign_batch(batch));
    EXPECT_TRUE(pool->idle());
    EXPECT_EQ(pool->pending_jobs(), 0u);
    EXPECT_EQ(total_rejected(), 1u);  // "not a frame", counted at once
    EXPECT_TRUE(readable());

    std::vector<Event> events;
    pool->take_events(events);  // no waiting: all of it is there already
    EXPECT_FALSE(readable());
    ASSERT_EQ(events.size(), frames.size() + 1 + 1 + 2);
    for (size_t i = 0; i < frames.size(); ++i) {
        if (i % 2 == 0) {
            auto* in = std::get_if<RequestIn>(&events[i]);
            ASSERT_NE(in, nullptr) << i;
            EXPECT_EQ(in->routing_id, "conn-" + std::to_string(i));
            EXPECT_EQ(in->request.payload, frames[i]);
        } else {
            auto* m = std::get_if<PeerMessage>(&events[i]);
            ASSERT_NE(m, nullptr) << i;
            EXPECT_EQ(m->from, i / 2 + 1);
            EXPECT_EQ(m->raw.to_string(), frames[i]);
        }
    }
    auto* last = std::get_if<PeerMessage>(&events[frames.size()]);
    ASSERT_NE(last, nullptr);
    EXPECT_EQ(last->raw.to_string(), frames[1]);
    std::vector<std::string> signed_for;
    for (size_t i = frames.size() + 1; i < events.size(); ++i) {
        auto* out = std::get_if<SignedOut>(&events[i]);
        ASSERT_NE(out, nullptr) << i;
        crypto::OpenOptions open_options;
        open_options.expected_sender = self_key_.public_key();
        EXPECT_TRUE(crypto::open(out->envelope, open_options).ok());
        signed_for.push_back(out->routing_id);
    }
    EXPECT_EQ(signed_for, (std::vector<std::string>{"client-7", "b-0", "b-1"}));
}

}  // namespace
}  // namespace tally::node
