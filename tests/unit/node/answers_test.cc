// Answers (node/answers.h): what a replica tells clients and peers outside consensus. The
// honest ones change nothing; a traitor's lie there (wrong-reply, lying-snapshot), so the
// replica itself never asks whether it is a traitor.
#include "node/answers.h"

#include <gtest/gtest.h>

#include <vector>

#include "ledger/ledger.pb.h"
#include "ledger/state.h"
#include "ledger/tx.h"
#include "node/traitor.h"

namespace tally::node {
namespace {

using namespace std::chrono_literals;

api::pb::Reply a_reply() {
    api::pb::Reply r;
    r.set_result(static_cast<uint32_t>(ledger::ResultCode::kOk));
    r.set_seq(5);
    r.set_value(100);
    r.set_account_nonce(3);
    return r;
}

// A replica's snapshot side over a real ledger at one checkpoint, recording what is sent.
class FakeServer final : public SnapshotServer {
public:
    FakeServer() {
        ledger::Genesis genesis;
        for (uint8_t i = 0; i < 3; ++i) {
            crypto::Seed seed{};
            seed[0] = static_cast<uint8_t>(i + 1);
            genesis.accounts.push_back({crypto::KeyPair::from_seed(seed).public_key(), 1000, 0});
        }
        auto state = ledger::State::open(":memory:", genesis);
        EXPECT_TRUE(state.ok());
        state_ = std::move(state).value();
        point_ = state_->snapshot_point();
    }
    bool serves(uint64_t seq) const override { return serving && seq == kSeq; }
    std::optional<std::string> snapshot_piece(uint64_t seq, const std::string& cursor) override {
        if (!serves(seq)) return std::nullopt;
        auto chunk = state_->snapshot_chunk(point_, cursor, 1 << 20);
        if (!chunk) return std::nullopt;
        return *chunk;
    }
    void send_snapshot_piece(bft::ReplicaId to, uint64_t seq, const std::string& cursor,
                             std::string chunk) override {
        sent.push_back({to, seq, cursor, std::move(chunk)});
    }
    std::string first_cursor() const {
        ledger::pb::SnapshotCursor cursor;
        cursor.set_since_seq(0);
        return cursor.SerializeAsString();
    }

    static constexpr uint64_t kSeq = 128;
    struct Sent {
        bft::ReplicaId to;
        uint64_t seq;
        std::string cursor;
        std::string chunk;
    };
    std::vector<Sent> sent;
    bool serving = true;

private:
    std::unique_ptr<ledger::State> state_;
    ledger::SnapshotPoint point_;
};

TEST(Answers, AnHonestReplicaSaysWhatItsStateSays) {
    auto answers = make_answers({bft::Behaviour::kEquivocate}, 128);  // lies in consensus only
    api::pb::Reply ordered = a_reply(), read = a_reply();
    answers->on_reply(ReplyKind::kOrdered, ordered);
    answers->on_reply(ReplyKind::kRead, read);
    EXPECT_EQ(ordered.SerializeAsString(), a_reply().SerializeAsString());
    EXPECT_EQ(read.SerializeAsString(), a_reply().SerializeAsString());
    FakeServer server;
    const auto now = Answers::Clock::now();
    const std::string piece = *server.snapshot_piece(FakeServer::kSeq, server.first_cursor());
    EXPECT_EQ(answers->on_snapshot_piece(2, FakeServer::kSeq, server.first_cursor(), piece, now), piece);
    answers->on_turn(server, now);
    EXPECT_TRUE(server.sent.empty());
}

TEST(Answers, AWrongReplyTraitorLiesInEveryReplyButNotInItsSnapshots) {
    auto answers = make_answers({bft::Behaviour::kWrongReply}, 128);
    api::pb::Reply ordered = a_reply();
    answers->on_reply(ReplyKind::kOrdered, ordered);
    EXPECT_EQ(ordered.result(), static_cast<uint32_t>(ledger::ResultCode::kInsufficientFunds));
    EXPECT_EQ(ordered.seq(), 6u);
    EXPECT_EQ(ordered.value(), 107u);
    api::pb::Reply read = a_reply();
    answers->on_reply(ReplyKind::kRead, read);
    EXPECT_EQ(read.result(), a_reply().result());
    EXPECT_EQ(read.seq(), 5u);  // the seq it answered at is true; the value is not
    EXPECT_EQ(read.value(), 107u);
    FakeServer server;
    const std::string piece = *server.snapshot_piece(FakeServer::kSeq, server.first_cursor());
    EXPECT_EQ(answers->on_snapshot_piece(2, FakeServer::kSeq, server.first_cursor(), piece,
                                         Answers::Clock::now()),
              piece);
}

TEST(Answers, ALyingSnapshotTraitorServesForgedPiecesAndRacesThemToTheAskerForAWhile) {
    auto answers = make_answers({bft::Behaviour::kLyingSnapshot}, 128);
    api::pb::Reply ordered = a_reply();
    answers->on_reply(ReplyKind::kOrdered, ordered);
    EXPECT_EQ(ordered.SerializeAsString(), a_reply().SerializeAsString());

    FakeServer server;
    const auto start = Answers::Clock::now();
    answers->on_turn(server, start);
    EXPECT_TRUE(server.sent.empty()) << "nobody asked: nothing to race";
    const std::string piece = *server.snapshot_piece(FakeServer::kSeq, server.first_cursor());
    const std::string served =
        answers->on_snapshot_piece(2, FakeServer::kSeq, server.first_cursor(), piece, start);
    EXPECT_NE(served, piece);

    // It races forged pieces to replica 2, from the first cursor on.
    answers->on_turn(server, start);
    ASSERT_FALSE(server.sent.empty());
    EXPECT_EQ(server.sent[0].to, 2u);
    EXPECT_EQ(server.sent[0].seq, FakeServer::kSeq);
    EXPECT_EQ(server.sent[0].cursor, server.first_cursor());
    EXPECT_NE(server.sent[0].chunk, piece);
    // Again a little later; no longer once it stopped serving that checkpoint.
    const size_t first_round = server.sent.size();
    answers->on_turn(server, start + 50ms);
    EXPECT_EQ(server.sent.size(), 2 * first_round);
    server.serving = false;
    answers->on_turn(server, start + 100ms);
    server.serving = true;
    answers->on_turn(server, start + 150ms);
    EXPECT_EQ(server.sent.size(), 2 * first_round) << "a race ends with the checkpoint served";
}

TEST(Answers, ALyingSnapshotTraitorStopsRacingSecondsAfterItWasLastAsked) {
    auto answers = make_answers({bft::Behaviour::kLyingSnapshot}, 128);
    FakeServer server;
    const auto start = Answers::Clock::now();
    const std::string piece = *server.snapshot_piece(FakeServer::kSeq, server.first_cursor());
    answers->on_snapshot_piece(1, FakeServer::kSeq, server.first_cursor(), piece, start);
    answers->on_turn(server, start + 10s);
    EXPECT_TRUE(server.sent.empty());
}

}  // namespace
}  // namespace tally::node
