// Admission with real processes: a flooder sends every replica thousands of signed transfers
// from keys that have no account, and replays one transfer that executed as nonce_too_high,
// over and over. Nothing of it is ordered (replicas answer at once, seq 0, and count it under
// its reason in `tally net status`), and an honest client keeps committing meanwhile.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <zmq.hpp>

#include "client/curve.h"
#include "crypto/envelope.h"
#include "crypto/keys.h"
#include "node/api/client.pb.h"
#include "tests/integration/live_network.h"

namespace tally::integration {
namespace {

uint64_t rejected(const client::ReplicaStatus& s, const std::string& reason) {
    for (const auto& r : s.reply.rejected())
        if (r.kind() == reason) return r.count();
    return 0;
}

// One DEALER per replica, like a client's, that sends whatever it is given and reads nothing.
// With `only`, to those replicas alone.
class Flooder {
public:
    explicit Flooder(const node::api::NetworkConfig& config, std::vector<uint32_t> only = {}) {
        for (const auto& r : config.replicas) {
            if (!only.empty() && std::find(only.begin(), only.end(), r.id) == only.end()) continue;
            sockets_.emplace_back(context_, zmq::socket_type::dealer);
            sockets_.back().set(zmq::sockopt::linger, 0);
            sockets_.back().set(zmq::sockopt::sndhwm, 100'000);
            EXPECT_TRUE(client::secure_to_replica(sockets_.back(), r).ok());
            sockets_.back().connect(r.client_endpoint());
        }
    }
    void send_all(std::string_view frame) {
        for (auto& s : sockets_) (void)s.send(zmq::const_buffer(frame.data(), frame.size()), zmq::send_flags::none);
    }

private:
    zmq::context_t context_{1};
    std::vector<zmq::socket_t> sockets_;
};

// An honest client's transfers (nonces 1..count) during a flood: each must commit, ok.
void commit_honest_transfers(client::Client& c, const crypto::KeyPair& from, const crypto::PublicKey& to,
                             uint64_t count) {
    for (uint64_t nonce = 1; nonce <= count; ++nonce) {
        auto r = c.transfer(from, to, 5, nonce, 20s);
        ASSERT_TRUE(r.ok()) << "honest transfer " << nonce << ": " << r.error().message;
        EXPECT_EQ(r->result, static_cast<uint32_t>(ledger::ResultCode::kOk));
    }
}

TEST(Admission, AFlooderWithUnfundedKeysAndReplayedBytesIsNeverOrderedAndHonestClientsCommit) {
    LiveNetwork net;
    ASSERT_TRUE(net.ok());
    const auto alice = net.account("alice");
    const auto bob = net.account("bob");
    const auto carol = net.account("carol");
    client::Client c;
    ASSERT_TRUE(c.connect(net.config()));

    // A transfer from a key without an account is answered unknown_sender by a quorum, at
    // seq 0: refused, not ordered (before: ordered and executed, a block slot each time).
    const auto nobody = crypto::KeyPair::generate();
    auto unfunded = c.submit(ledger::make_transfer(nobody, bob.public_key(), 1, 1), 20s);
    ASSERT_TRUE(unfunded.ok()) << unfunded.error().message;
    EXPECT_EQ(unfunded->result, static_cast<uint32_t>(ledger::ResultCode::kUnknownSender));
    EXPECT_EQ(unfunded->seq, 0u) << "a transfer from a key without an account was ordered";

    // carol's nonce 2 before her nonce 1: within the window, so ordered once, and it executes
    // as nonce_too_high. The very same bytes again are refused without ordering.
    // The client may be told either truth: the copies that reached replicas before they
    // executed it are answered with its seq; a copy that reaches a replica after (the primary's
    // pre-prepare can outrun the client's own copy to a backup) is refused there, at seq 0,
    // as a replay of bytes it executed as nonce_too_high. Which f+1 come first is timing; that
    // it was ordered is the replicas' height to say: nothing else was sent since the last
    // block, so every replica's next block is this transfer.
    const uint64_t height = net.status()[0].reply.executed();
    const std::string early = ledger::make_transfer(carol, bob.public_key(), 1, 2);
    auto first = c.submit(early, 20s);
    ASSERT_TRUE(first.ok()) << first.error().message;
    EXPECT_EQ(first->result, static_cast<uint32_t>(ledger::ResultCode::kNonceTooHigh));
    if (first->seq != 0) {
        EXPECT_EQ(first->seq, height + 1);
    }
    // (Every replica executed it first: a lagging one would still answer the copy it holds.)
    ASSERT_TRUE(net.wait_for(
        [&](const auto& s) {
            for (const auto& r : s)
                if (!r.up || r.reply.executed() < height + 1) return false;
            return true;
        },
        30s))
        << "the transfer within the nonce window was not ordered";
    // From another client: `c` still holds the first round's late replies (seq 1, from the
    // replicas beyond its f+1), which answer these very bytes truly and would make its quorum
    // before any replica could refuse the copy.
    client::Client fresh;
    ASSERT_TRUE(fresh.connect(net.config()));
    auto replay = fresh.submit(early, 20s);
    ASSERT_TRUE(replay.ok()) << replay.error().message;
    EXPECT_EQ(replay->result, static_cast<uint32_t>(ledger::ResultCode::kNonceTooHigh));
    EXPECT_EQ(replay->seq, 0u) << "replayed bytes were ordered again with nothing changed";

    auto before = net.status();
    ASSERT_EQ(before.size(), 4u);
    const uint64_t executed_before = before[0].reply.executed();

    // The flood: 3,000 signed transfers from keys without accounts, and the replay 1,000 times,
    // to every replica, while alice commits transfers one after another.
    constexpr int kUnfunded = 3000;
    constexpr int kReplays = 1000;
    std::vector<std::string> flood;
    for (int i = 0; i < kUnfunded; ++i)
        flood.push_back(ledger::make_transfer(crypto::KeyPair::generate(), bob.public_key(), 1, 1));
    Flooder flooder(net.config());
    for (int i = 0; i < kUnfunded; ++i) {
        flooder.send_all(flood[static_cast<size_t>(i)]);
        if (i < kReplays) flooder.send_all(early);
    }
    constexpr int kHonest = 10;
    commit_honest_transfers(c, alice, bob.public_key(), kHonest);

    // Every replica counted the flood under its reasons, and ordered none of it: the blocks
    // executed since are the honest transfers' (one block each at most).
    EXPECT_TRUE(net.wait_for(
        [&](const auto& s) {
            for (const auto& r : s)
                if (!r.up || rejected(r, "unknown_sender") < kUnfunded ||
                    rejected(r, "nonce_too_high") < kReplays)
                    return false;
            return true;
        },
        30s))
        << "not every replica counted the flood as refused";
    auto after = net.status();
    ASSERT_EQ(after.size(), 4u);
    // (A view change, which a slow run may take under the flood, adds blocks of its own: the
    // null batches that fill its gaps. The count is exact only within one view.)
    if (after[0].reply.view() == before[0].reply.view()) {
        EXPECT_LE(after[0].reply.executed(), executed_before + kHonest)
            << "the flood was ordered: blocks executed beyond the honest transfers'";
    }
}

// A replica that executed a transfer as nonce_too_high refuses its bytes again whether or not a
// client of its own waited for it. Here the transfer reaches the primary alone, so the backups
// hold it only from the pre-prepare; then its very bytes reach one backup. Before, that backup
// had remembered nothing (only a waiting client's reply did), admitted the copy, forwarded it,
// and the primary ordered it again: a block for bytes that cost their sender nothing (seen
// once in CI as a flood's extra block, from a copy that reached a backup after its batch).
TEST(Admission, ABackupRefusesTheReplayOfANotYetTransferItOnlySawInABatch) {
    LiveNetwork net;
    ASSERT_TRUE(net.ok());
    const auto bob = net.account("bob");
    const auto carol = net.account("carol");
    auto primary = net.status();
    ASSERT_EQ(primary.size(), 4u);
    const uint32_t primary_id = primary[0].reply.leader();  // PBFT: the primary of view 0
    ASSERT_EQ(primary[0].reply.view(), 0u);
    const uint32_t backup = (primary_id + 1) % 4;

    const std::string early = ledger::make_transfer(carol, bob.public_key(), 1, 2);
    Flooder to_primary(net.config(), {primary_id});
    to_primary.send_all(early);
    ASSERT_TRUE(net.wait_for(
        [&](const auto& s) {
            for (const auto& r : s)
                if (!r.up || r.reply.executed() < 1) return false;
            return true;
        },
        30s))
        << "the transfer sent to the primary alone was not ordered";
    const uint64_t executed = net.status()[0].reply.executed();

    Flooder to_backup(net.config(), {backup});
    to_backup.send_all(early);
    EXPECT_TRUE(net.wait_for(
        [&](const auto& s) {
            for (const auto& r : s)
                if (r.id == backup && r.up && rejected(r, "nonce_too_high") >= 1) return true;
            return false;
        },
        20s))
        << "the backup did not refuse the replay of bytes it executed as nonce_too_high";
    // Had it forwarded the copy, the primary would have ordered it by now (a forward is sent
    // within a tick): one block more than the one the transfer took.
    for (const auto& r : net.status()) EXPECT_EQ(r.reply.executed(), executed) << "replica " << r.id;
}

// Per-connection limits with real processes: a connection that sends transfers with bad
// signatures, each new bytes (so none is a cached verdict), has a few checked and is then
// silenced by its charge (client_rate_limited), while an honest client commits meanwhile. Every
// frame is accounted for: each replica counts each one under one reason or the other.
TEST(Admission, AConnectionSendingBadSignaturesIsSilencedAfterAFewChecksAndEveryFrameIsCounted) {
    LiveNetwork net;
    ASSERT_TRUE(net.ok());
    const auto alice = net.account("alice");
    const auto bob = net.account("bob");
    client::Client c;
    ASSERT_TRUE(c.connect(net.config()));

    constexpr uint64_t kFlood = 20'000;
    std::string frame = ledger::make_transfer(crypto::KeyPair::generate(), bob.public_key(), 1, 1);
    Flooder flooder(net.config());
    for (uint64_t i = 1; i <= kFlood; ++i) {
        // Into the signature's first half (R): a counter there keeps the frame well-formed and
        // costs a full check (in the second half, S, libsodium would refuse it unchecked).
        std::memcpy(frame.data() + frame.size() - sizeof(crypto::Signature), &i, sizeof(i));
        flooder.send_all(frame);
    }
    commit_honest_transfers(c, alice, bob.public_key(), 5);
    EXPECT_TRUE(net.wait_for(
        [&](const auto& s) {
            for (const auto& r : s)
                if (!r.up || rejected(r, "bad_signature") + rejected(r, "client_rate_limited") < kFlood)
                    return false;
            return true;
        },
        30s))
        << "a replica did not account for every flood frame";
    for (const auto& r : net.status()) {
        // Without the charge, a connection's byte rate alone lets through its first burst (1 MiB:
        // ~4,500 of these frames) and then 4 MiB/s: thousands of checks in all.
        EXPECT_LT(rejected(r, "bad_signature"), kFlood / 10) << "replica " << r.id;
        EXPECT_GT(rejected(r, "client_rate_limited"), 0u) << "replica " << r.id;
        EXPECT_EQ(rejected(r, "bad_signature") + rejected(r, "client_rate_limited"), kFlood)
            << "replica " << r.id;
    }
}

// CurveZMQ's allowlist with real processes (`tally net up` gives every replica a client port):
// a DEALER under a CURVE key that is no replica's, on replica 0's replicas' port, gets no
// answer to a validly signed status request, and `net status` counts the refused connection;
// the same request under an ephemeral key on the clients' port is answered.
TEST(Admission, AConnectionUnderAKeyThatIsNoReplicasIsRefusedAndCountedInNetStatus) {
    LiveNetwork net;
    ASSERT_TRUE(net.ok());
    const auto& replica0 = net.config().replicas[0];
    ASSERT_NE(replica0.client_port, 0);
    const auto stranger = crypto::KeyPair::generate();
    const auto server = crypto::transport_public_key(replica0.public_key);
    ASSERT_TRUE(server.ok());
    const auto stranger_public = crypto::transport_public_key(stranger.public_key());
    const crypto::TransportSecret stranger_secret(stranger);
    auto as_view = [](const uint8_t* p, size_t n) { return std::string_view(reinterpret_cast<const char*>(p), n); };

    zmq::context_t context(1);
    zmq::socket_t intruder(context, zmq::socket_type::dealer);
    intruder.set(zmq::sockopt::linger, 0);
    intruder.set(zmq::sockopt::curve_serverkey, as_view(server->data(), server->size()));
    intruder.set(zmq::sockopt::curve_publickey, as_view(stranger_public->data(), stranger_public->size()));
    intruder.set(zmq::sockopt::curve_secretkey, as_view(stranger_secret.data(), stranger_secret.size()));
    intruder.connect(replica0.endpoint());
    zmq::socket_t client(context, zmq::socket_type::dealer);
    client.set(zmq::sockopt::linger, 0);
    ASSERT_TRUE(client::secure_to_replica(client, replica0).ok());
    client.connect(replica0.client_endpoint());

    node::api::pb::StatusRequest request;
    request.set_nonce(7);
    const std::string frame =
        crypto::seal(stranger, crypto::MessageType::kStatusRequest, request.SerializeAsString());
    intruder.send(zmq::buffer(frame), zmq::send_flags::dontwait);
    client.send(zmq::buffer(frame), zmq::send_flags::dontwait);
    zmq::pollitem_t answered{client.handle(), 0, ZMQ_POLLIN, 0};
    ASSERT_EQ(zmq::poll(&answered, 1, std::chrono::milliseconds(10000)), 1) << "the client got no answer";

    EXPECT_TRUE(net.wait_for(
        [&](const auto& s) { return s[0].up && rejected(s[0], "refused_connection") >= 1; }, 20s))
        << "replica 0 did not count the refused connection in net status";
    zmq::pollitem_t item{intruder.handle(), 0, ZMQ_POLLIN, 0};
    EXPECT_EQ(zmq::poll(&item, 1, std::chrono::milliseconds(0)), 0) << "the intruder got an answer";
    for (uint32_t i = 1; i < net.config().n(); ++i)
        EXPECT_EQ(rejected(net.status()[i], "refused_connection"), 0u) << "replica " << i;
}

}  // namespace
}  // namespace tally::integration
