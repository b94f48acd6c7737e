// A real 4-replica network of tallyd processes on loopback, fed garbage.
//
// Each test starts its own network: fresh keys and network.json in a temporary folder, free
// ports, four `tallyd` processes, and waits (with a deadline) until each answers a signed
// status request. It then sends one kind of bad input at a time to replica 0's ROUTER socket —
// exactly what any process on the network could send — and reads replica 0's status to show
// that the input was refused and counted under its own reason, and that the replica still
// serves. The last steps commit a real transfer through the client library.
//
// TearDown always stops every process (SIGTERM, then SIGKILL after a deadline). On a failure
// the folder with the replicas' logs is kept and its path printed.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "client/client.h"
#include "client/curve.h"
#include "client/net.h"
#include "crypto/envelope.h"
#include "crypto/hash.h"
#include "crypto/key_file.h"
#include "crypto/keys.h"
#include "ledger/tx.h"
#include "node/api/network_config.h"
#include "node/api/client.pb.h"

extern char** environ;

namespace tally {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr uint32_t kReplicas = 4;
constexpr auto kStartDeadline = 20s;  // generous: sanitizer builds start slowly
constexpr auto kCountDeadline = 10s;

// A raw connection to one replica's ROUTER: a DEALER like any client's, that can send any
// bytes at all.
class RawPeer {
public:
    // To `replica`'s own port (this network has no client ports, so clients share it and it
    // takes any CURVE key), under an ephemeral key, as a client's.
    RawPeer(zmq::context_t& context, const node::api::ReplicaConfig& replica)
        : socket_(context, zmq::socket_type::dealer) {
        socket_.set(zmq::sockopt::linger, 0);
        EXPECT_TRUE(client::secure_to_replica(socket_, replica).ok());
        socket_.connect(replica.endpoint());
    }

    void send(std::string_view frame) {
        socket_.send(zmq::const_buffer(frame.data(), frame.size()), zmq::send_flags::none);
    }
    void send_multipart(const std::vector<std::string>& frames) {
        for (size_t i = 0; i < frames.size(); ++i) {
            const auto flags = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
            socket_.send(zmq::const_buffer(frames[i].data(), frames[i].size()), flags);
        }
    }

    // Asks for the replica's status until a reply signed by `replica_key` echoes the nonce.
    std::optional<node::api::pb::StatusReply> status(const crypto::PublicKey& replica_key,
                                                std::chrono::milliseconds deadline) {
        const auto until = Clock::now() + deadline;
        const auto client = crypto::KeyPair::generate();
        while (Clock::now() < until) {
            node::api::pb::StatusRequest request;
            request.set_nonce(++nonce_);
            send(crypto::seal(client, crypto::MessageType::kStatusRequest, request.SerializeAsString()));
            const auto resend_at = std::min(until, Clock::now() + 300ms);
            while (Clock::now() < resend_at) {
                zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
                auto left = std::chrono::duration_cast<std::chrono::milliseconds>(resend_at - Clock::now());
                if (zmq::poll(&item, 1, std::max(left, 1ms)) == 0) continue;
                zmq::message_t message;
                if (!socket_.recv(message, zmq::recv_flags::dontwait)) continue;
                crypto::OpenOptions options;
                options.expected_sender = replica_key;
                auto env = crypto::open(message.to_string_view(), options);
                if (!env || env->type != crypto::MessageType::kStatusReply) continue;
                node::api::pb::StatusReply reply;
                if (reply.ParseFromString(env->body) && reply.nonce() == nonce_) return reply;
            }
        }
        return std::nullopt;
    }

private:
    zmq::socket_t socket_;
    uint64_t nonce_ = 0;
};

std::map<std::string, uint64_t> rejected_counts(const node::api::pb::StatusReply& status) {
    std::map<std::string, uint64_t> out;
    for (const auto& r : status.rejected()) out[r.kind()] = r.count();
    return out;
}

class GarbageTest : public ::testing::Test {
protected:
    void SetUp() override {
        const char* tmp = std::getenv("TMPDIR");
        std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                           "/tally-garbage-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;

        // Keys, genesis and network.json, as `tally net up` would write them.
        const auto found = client::free_ports(kReplicas, dir_);
        ASSERT_TRUE(found.ok()) << found.error().message;
        const auto& ports = *found;
        config_.protocol = bft::Protocol::kPbft;
        config_.f = 1;
        config_.dir = dir_;
        std::filesystem::create_directories(dir_ + "/keys");
        for (uint32_t i = 0; i < kReplicas; ++i) {
            auto key = crypto::KeyPair::generate();
            node::api::ReplicaConfig r;
            r.id = i;
            r.port = ports[i];
            r.public_key = key.public_key();
            r.key_file = dir_ + "/keys/replica-" + std::to_string(i) + ".key";
            r.data_dir = dir_ + "/data/" + std::to_string(i);
            ASSERT_TRUE(crypto::write_key_file(r.key_file, key).ok());
            config_.replicas.push_back(r);
        }
        config_.genesis.accounts.push_back(ledger::Account{alice_.public_key(), 1'000'000, 0});
        config_.consensus.tick_ms = 10;
        config_.consensus.checkpoint_interval = 16;
        config_.consensus.watermark_window = 64;
        config_path_ = dir_ + "/network.json";
        ASSERT_TRUE(node::api::save_network_config(config_, config_path_).ok());

        for (uint32_t i = 0; i < kReplicas; ++i) spawn(i);
        for (uint32_t i = 0; i < kReplicas; ++i) {
            RawPeer peer(context_, config_.replicas[i]);
            ASSERT_TRUE(peer.status(config_.replicas[i].public_key,
                                    std::chrono::duration_cast<std::chrono::milliseconds>(kStartDeadline)))
                << "replica " << i << " did not answer a status request in time; logs in " << dir_;
        }
    }

    void TearDown() override {
        for (pid_t pid : pids_) stop(pid);
        pids_.clear();
        if (HasFailure()) {
            std::printf("kept the network's folder (logs, data) for inspection: %s\n", dir_.c_str());
        } else {
            std::error_code ec;
            std::filesystem::remove_all(dir_, ec);
        }
    }

    void spawn(uint32_t id) {
        const std::string bin = TALLY_BIN_DIR "/tallyd";
        const std::string out = dir_ + "/tallyd-" + std::to_string(id) + ".out";
        std::vector<std::string> args = {bin, "--config", config_path_, "--id", std::to_string(id)};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                         O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
        pid_t pid = 0;
        const int rc = posix_spawn(&pid, bin.c_str(), &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        ASSERT_EQ(rc, 0) << "cannot start " << bin;
        pids_.push_back(pid);
    }

    // SIGTERM, wait up to a deadline, then SIGKILL. Returns the exit status (or -1).
    static int stop(pid_t pid) {
        ::kill(pid, SIGTERM);
        const auto until = Clock::now() + 10s;
        int status = 0;
        while (Clock::now() < until) {
            pid_t done = ::waitpid(pid, &status, WNOHANG);
            if (done == pid) return status;
            std::this_thread::sleep_for(10ms);  // polling a child's exit; not synchronisation
        }
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        return -1;
    }

    node::api::pb::StatusReply status_of(uint32_t replica) {
        RawPeer peer(context_, config_.replicas[replica]);
        auto status = peer.status(config_.replicas[replica].public_key, 5s);
        EXPECT_TRUE(status.has_value()) << "replica " << replica << " stopped answering status";
        return status.value_or(node::api::pb::StatusReply{});
    }

    // Sends `send` (through a fresh connection) and waits until replica 0 counts one more
    // rejection for `reason`. Returns whether it did before the deadline.
    template <typename Send>
    ::testing::AssertionResult counted(const std::string& reason, Send send) {
        const uint64_t before = rejected_counts(status_of(0))[reason];
        {
            RawPeer attacker(context_, config_.replicas[0]);
            send(attacker);
            const auto until = Clock::now() + kCountDeadline;
            while (Clock::now() < until) {
                auto now = rejected_counts(status_of(0));
                if (now[reason] > before) return ::testing::AssertionSuccess();
            }
        }
        std::string seen;
        for (const auto& [k, v] : rejected_counts(status_of(0))) seen += " " + k + "=" + std::to_string(v);
        return ::testing::AssertionFailure()
               << "replica 0 did not count a \"" << reason << "\" rejection; it counts:" << seen;
    }

    // A validly sealed envelope of `type` from a key that is nobody in particular.
    std::string sealed(crypto::MessageType type, std::string_view body = "") const {
        return crypto::seal(stranger_, type, body);
    }

    std::string dir_;
    std::string config_path_;
    node::api::NetworkConfig config_;
    std::vector<pid_t> pids_;
    zmq::context_t context_{1};
    crypto::KeyPair alice_ = crypto::KeyPair::generate();
    crypto::KeyPair stranger_ = crypto::KeyPair::generate();
};

// --- Step 1: bytes that are not an envelope at all, or are damaged ones. -------------------

TEST_F(GarbageTest, RandomBytesAreRejectedAsNotAFrame) {
    // 37 bytes: shorter than any envelope.
    EXPECT_TRUE(counted("truncated", [](RawPeer& p) { p.send("this is not an envelope at all!!!!!!!"); }));
}

TEST_F(GarbageTest, ATruncatedEnvelopeIsRejectedAsTruncated) {
    std::string frame = sealed(crypto::MessageType::kStatusRequest, std::string(100, 'x'));
    frame.resize(frame.size() - 10);  // its body length now claims more than follows
    EXPECT_TRUE(counted("truncated", [&](RawPeer& p) { p.send(frame); }));
}

TEST_F(GarbageTest, BytesAfterTheSignatureAreRejectedAsMalformed) {
    std::string frame = sealed(crypto::MessageType::kStatusRequest) + "trailing";
    EXPECT_TRUE(counted("malformed", [&](RawPeer& p) { p.send(frame); }));
}

TEST_F(GarbageTest, AnOversizedFrameIsRejectedAsOversized) {
    // A header that says "empty body", followed by more than kEnvelopeMaxBytes of padding.
    std::string frame = sealed(crypto::MessageType::kStatusRequest);
    frame.resize(crypto::kEnvelopeMaxBytes + 1, '\0');
    EXPECT_TRUE(counted("oversized", [&](RawPeer& p) { p.send(frame); }));
}

TEST_F(GarbageTest, AFrameAboveTheTransportLimitIsDroppedAndTheReplicaStillServes) {
    // Larger than ZeroMQ's per-message limit: ZeroMQ drops the connection before the
    // replica sees a byte. What matters is that nothing else is disturbed.
    {
        RawPeer attacker(context_, config_.replicas[0]);
        attacker.send(std::string(crypto::kEnvelopeMaxBytes + 256 * 1024, 'x'));
    }
    for (uint32_t i = 0; i < kReplicas; ++i) EXPECT_EQ(status_of(i).replica(), i);
}

TEST_F(GarbageTest, AnEnvelopeOfUnknownTypeIsRejectedAsUnknownType) {
    std::string frame = sealed(crypto::MessageType::kStatusRequest);
    frame[1] = static_cast<char>(99);  // the type byte: no MessageType has this number
    EXPECT_TRUE(counted("unknown_type", [&](RawPeer& p) { p.send(frame); }));
}

TEST_F(GarbageTest, AMultiFrameMessageIsRejectedAsBadFraming) {
    const std::string frame = sealed(crypto::MessageType::kStatusRequest);
    EXPECT_TRUE(counted("bad_framing", [&](RawPeer& p) { p.send_multipart({frame, frame}); }));
}

// --- Step 2: well-formed envelopes that lie about who sent them or what they are. ----------

TEST_F(GarbageTest, AWronglySignedEnvelopeIsRejectedAsBadSignature) {
    node::api::pb::StatusRequest request;
    request.set_nonce(7);
    std::string frame = sealed(crypto::MessageType::kStatusRequest, request.SerializeAsString());
    frame[frame.size() - 1] = static_cast<char>(frame.back() ^ 0x01);
    EXPECT_TRUE(counted("bad_signature", [&](RawPeer& p) { p.send(frame); }));
}

TEST_F(GarbageTest, AConsensusMessageFromANonReplicaKeyIsRejectedAsWrongSender) {
    EXPECT_TRUE(counted("wrong_sender",
                        [&](RawPeer& p) { p.send(sealed(crypto::MessageType::kPrepare, "x")); }));
}

TEST_F(GarbageTest, AConsensusMessageNamingAReplicaFromAnotherConnectionIsRejectedAsWrongConnection) {
    // Claims replica 1 as its sender, but is signed by someone else, and comes on a client's
    // connection: refused for the connection, before its signature costs a check.
    std::string frame = sealed(crypto::MessageType::kCommit, "x");
    const auto& replica1 = config_.replicas[1].public_key;
    std::copy(replica1.begin(), replica1.end(), frame.begin() + 2);
    EXPECT_TRUE(counted("wrong_connection", [&](RawPeer& p) { p.send(frame); }));
}

TEST_F(GarbageTest, AReplyTypeSentToAReplicaIsRejectedAsUnexpectedType) {
    EXPECT_TRUE(counted("unexpected_type",
                        [&](RawPeer& p) { p.send(sealed(crypto::MessageType::kReply)); }));
}

TEST_F(GarbageTest, ASignedRequestThatIsNotATransactionIsRejectedAsMalformedRequest) {
    EXPECT_TRUE(counted("malformed_request", [&](RawPeer& p) {
        p.send(sealed(crypto::MessageType::kRequest, "not a TxBody"));
    }));
}

TEST_F(GarbageTest, ATransferWithAForgedSignatureIsRejectedAsBadSignature) {
    std::string tx = ledger::make_transfer(alice_, stranger_.public_key(), 5, 1);
    tx[tx.size() - 3] = static_cast<char>(tx[tx.size() - 3] ^ 0x10);
    EXPECT_TRUE(counted("bad_signature", [&](RawPeer& p) { p.send(tx); }));
}

// --- Step 3: after all of that, the network still works. -----------------------------------

TEST_F(GarbageTest, AfterAFloodOfGarbageTheNetworkStillCommitsATransfer) {
    // A burst of every kind of garbage at replica 0 (the primary of view 0)...
    {
        RawPeer attacker(context_, config_.replicas[0]);
        std::mt19937_64 random(42);
        for (int i = 0; i < 200; ++i) {
            std::string junk(static_cast<size_t>(random() % 400), '\0');
            for (auto& c : junk) c = static_cast<char>(random());
            attacker.send(junk);
            std::string bad = sealed(crypto::MessageType::kPrepare, junk);
            attacker.send(bad);
        }
        // Wait for the count while the attacker's socket is open: closing it may discard
        // frames not yet sent, and the status request travels on another connection.
        const auto until = Clock::now() + kCountDeadline;
        while (Clock::now() < until) {
            uint64_t total = 0;
            for (const auto& [reason, count] : rejected_counts(status_of(0))) total += count;
            if (total > 0) break;
        }
    }
    uint64_t total = 0;
    for (const auto& [reason, count] : rejected_counts(status_of(0))) total += count;
    EXPECT_GT(total, 0u) << "the flood was not counted at all";

    // ...and a transfer still commits, with f+1 matching signed replies.
    client::Client client;
    ASSERT_TRUE(client.connect(config_).ok());
    const auto bob = crypto::KeyPair::generate();
    auto result = client.transfer(alice_, bob.public_key(), 250, 1, 20s);
    ASSERT_TRUE(result.ok()) << result.error().code << ": " << result.error().message;
    EXPECT_EQ(result->result, static_cast<uint32_t>(ledger::ResultCode::kOk));
    EXPECT_GE(result->seq, 1u);

    // Every replica executes it (their status says so, and their state digests agree).
    const auto until = Clock::now() + kCountDeadline;
    std::vector<node::api::pb::StatusReply> statuses(kReplicas);
    bool all = false;
    while (!all && Clock::now() < until) {
        all = true;
        for (uint32_t i = 0; i < kReplicas; ++i) {
            statuses[i] = status_of(i);
            all = all && statuses[i].executed() >= result->seq;
        }
    }
    ASSERT_TRUE(all) << "not every replica executed seq " << result->seq;

    // A retransmission of the very same transfer is answered from the reply cache: same result,
    // same sequence number, nothing executed twice.
    auto again = client.submit(ledger::make_transfer(alice_, bob.public_key(), 250, 1), 20s);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(again->seq, result->seq);
    EXPECT_EQ(again->result, static_cast<uint32_t>(ledger::ResultCode::kOk));
    auto balance = client.balance(bob.public_key(), client::Consistency::kLinearizable, 20s);
    ASSERT_TRUE(balance.ok()) << balance.error().message;
    EXPECT_EQ(balance->balance, 250u);
}

TEST_F(GarbageTest, SigtermStopsAReplicaCleanly) {
    ASSERT_FALSE(pids_.empty());
    const int status = stop(pids_.back());
    pids_.pop_back();
    ASSERT_TRUE(WIFEXITED(status)) << "tallyd did not exit by itself on SIGTERM";
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace tally
