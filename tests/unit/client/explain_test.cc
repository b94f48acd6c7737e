// `tally explain`: whose replies a client accepted, and the text and JSON from the traces.
#include "client/explain.h"

#include <gtest/gtest.h>

namespace tally::client {
namespace {

// Replica `id`, up, which executed the transaction at `seq` with `result` at `executed_ms`
// (seq 0: it refused it with `refused`).
ReplicaStatus replica(uint32_t id, uint64_t seq, uint32_t result, int64_t executed_ms,
                      const std::string& refused = "") {
    ReplicaStatus r;
    r.id = id;
    r.up = true;
    r.reply.set_role(id == 0 ? "primary" : "backup");
    auto* t = r.reply.mutable_trace();
    t->set_known(true);
    t->set_received_ms(1000);
    t->set_seq(seq);
    t->set_result(result);
    t->set_executed_ms(executed_ms);
    t->set_refused(refused);
    if (seq != 0) {
        auto* s = t->add_steps();
        s->set_at_ms(1001);
        s->set_seq(seq);
        s->set_phase("pre-prepare");
        s->add_votes(0);
    }
    return r;
}

Explained network(std::vector<ReplicaStatus> replicas) {
    Explained e;
    e.tx[0] = 0xab;
    e.f = 1;
    e.ordered_quorum = 2;
    e.replicas = std::move(replicas);
    return e;
}

TEST(Explain, TheClientAcceptedTheFirstQuorumToAnswerAlikeNotTheFirstToAnswer) {
    // Replica 3 (a liar) answers first with another result; 2 and 0 agree after it.
    ReplicaStatus down;
    down.id = 1;
    auto e = network({replica(0, 5, 0, 1030), down, replica(2, 5, 0, 1020), replica(3, 5, 7, 1010)});
    EXPECT_EQ(accepted_replies(e), (std::vector<uint32_t>{2, 0}));
    const std::string text = explain_text(e);
    EXPECT_NE(text.find("accepted replica 2 (+20.0 ms) and replica 0 (+30.0 ms): seq 5, result ok"), std::string::npos)
        << text;
    EXPECT_NE(text.find("replica 1  down"), std::string::npos) << text;
    EXPECT_NE(text.find("pre-prepare  seq 5"), std::string::npos) << text;
    const auto json = explain_json(e);
    EXPECT_EQ(json["accepted_from"], nlohmann::json::array({2, 0}));
    EXPECT_EQ(json["replicas"][0]["trace"]["seq"], 5);
    EXPECT_EQ(json["replicas"][1]["up"], false);
}

TEST(Explain, RefusalsAlikeAreAnAnswerAndTooFewAgreeingIsNone) {
    auto refused = network({replica(0, 0, 0, 0, "unknown_sender"), replica(1, 0, 0, 0, "unknown_sender")});
    EXPECT_EQ(accepted_replies(refused), (std::vector<uint32_t>{0, 1}));
    EXPECT_NE(explain_text(refused).find("refused, unknown_sender"), std::string::npos);

    auto split = network({replica(0, 5, 0, 1010), replica(1, 6, 0, 1020)});
    EXPECT_TRUE(accepted_replies(split).empty());
    EXPECT_NE(explain_text(split).find("a client would still be waiting"), std::string::npos);
}

TEST(Explain, WithoutATraceTheLedgersAnswerStandsIn) {
    ReplicaStatus blank;
    blank.up = true;
    auto e = network({blank});
    e.ledger = TxResult{e.tx, 0, 42};
    EXPECT_NE(explain_text(e).find("The ledger has it: block 42, result ok"), std::string::npos) << explain_text(e);
    e.ledger->result = static_cast<uint32_t>(ledger::ResultCode::kUnknownTx);
    EXPECT_NE(explain_text(e).find("The ledger does not have it"), std::string::npos);
    EXPECT_FALSE(found_in_ledger(*e.ledger));
}

}  // namespace
}  // namespace tally::client
