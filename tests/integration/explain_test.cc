// `tally explain` with real processes: every replica traces a transfer through pre-prepare,
// prepared and committed with the votes it counted, in time order, and its execution; a
// transfer ordered across a view change shows the view change; the CLI puts it together. The
// live view's timeline (StatusRequest.recent_seqs): the recent seqs' phases at every replica,
// never more than 64 of them whatever a client asks.
#include "client/explain.h"

#include <gtest/gtest.h>

#include "node/traces.h"
#include "tests/integration/live_network.h"

namespace tally::integration {
namespace {

const node::api::pb::TraceStep* step(const node::api::pb::TxTrace& t, const std::string& phase) {
    for (const auto& s : t.steps())
        if (s.phase() == phase) return &s;
    return nullptr;
}

// Every replica's status with its trace of `tx`, once each of `ids` executed it.
std::vector<client::ReplicaStatus> traces_once_executed(const LiveNetwork& net, const crypto::Hash& tx,
                                                        const std::vector<uint32_t>& ids) {
    client::Client c;
    EXPECT_TRUE(c.connect(net.config()));
    std::vector<client::ReplicaStatus> last;
    const auto until = Clock::now() + 20s;
    while (Clock::now() < until) {
        auto s = c.status(1000ms, tx);
        if (!s) continue;
        last = *s;
        bool all = true;
        for (uint32_t id : ids) all = all && last[id].up && last[id].reply.trace().seq() != 0;
        if (all) return last;
    }
    ADD_FAILURE() << "not every replica executed it in time";
    return last;
}

TEST(Explain, EveryReplicaTracesATransferThroughEachPhaseWithTheVotesItCounted) {
    LiveNetwork net;
    ASSERT_TRUE(net.ok());
    const auto alice = net.account("alice");
    const auto bob = net.account("bob");
    client::Client c;
    ASSERT_TRUE(c.connect(net.config()));
    auto r = c.transfer(alice, bob.public_key(), 5, 1, 20s);
    ASSERT_TRUE(r.ok()) << r.error().message;

    const auto statuses = traces_once_executed(net, r->tx_id, {0, 1, 2, 3});
    ASSERT_EQ(statuses.size(), 4u);
    int received = 0;
    int caught_up = 0;
    for (const auto& s : statuses) {
        SCOPED_TRACE("replica " + std::to_string(s.id));
        const auto& t = s.reply.trace();
        ASSERT_TRUE(t.known());
        EXPECT_EQ(t.seq(), r->seq);
        EXPECT_EQ(t.result(), static_cast<uint32_t>(ledger::ResultCode::kOk));
        // The client sends it to every replica; its copy may arrive after the primary's
        // pre-prepare (then the replica knew it from the batch first), even after execution.
        received += t.received_ms() > 0;
        // A replica that fell behind may learn the batch from a peer's commit certificate
        // before its own votes got there: "caught-up" instead of its own phases.
        if (step(t, "caught-up") != nullptr && step(t, "committed") == nullptr) {
            ++caught_up;
            continue;
        }
        const auto* pre = step(t, "pre-prepare");
        const auto* prepared = step(t, "prepared");
        const auto* committed = step(t, "committed");
        ASSERT_TRUE(pre && prepared && committed);
        EXPECT_EQ(pre->seq(), r->seq);
        ASSERT_EQ(pre->votes_size(), 1);
        // Its view's primary proposed it (view 0's, unless a slow start changed the view).
        EXPECT_EQ(pre->votes(0), pre->view() % 4) << "not proposed by the primary of view " << pre->view();
        // Prepared: the pre-prepare and 2f prepares; committed-local: 2f+1 commits.
        EXPECT_EQ(prepared->votes_size(), 3);
        EXPECT_EQ(committed->votes_size(), 3);
        EXPECT_LE(pre->at_ms(), prepared->at_ms());
        EXPECT_LE(prepared->at_ms(), committed->at_ms());
        EXPECT_LE(committed->at_ms(), t.executed_ms());
    }
    EXPECT_GE(received, 1) << "no replica recorded the client's copy";
    EXPECT_LE(caught_up, 1) << "more than f replicas learned it only from their peers";
}

TEST(Explain, ATransferOrderedAcrossAViewChangeShowsTheViewChange) {
    LiveNetwork net;
    ASSERT_TRUE(net.ok());
    const auto alice = net.account("alice");
    const auto bob = net.account("bob");
    net.kill(0);  // view 0's primary: the transfer waits for a view change
    client::Client c;
    ASSERT_TRUE(c.connect(net.config()));
    auto r = c.transfer(alice, bob.public_key(), 5, 1, 30s);
    ASSERT_TRUE(r.ok()) << r.error().message;

    const auto statuses = traces_once_executed(net, r->tx_id, {1, 2, 3});
    for (uint32_t id = 1; id < 4; ++id) {
        SCOPED_TRACE("replica " + std::to_string(id));
        const auto& t = statuses[id].reply.trace();
        const auto* asked = step(t, "view-change");
        const auto* entered = step(t, "new-view");
        ASSERT_TRUE(asked && entered);
        EXPECT_GE(asked->view(), 1u);
        EXPECT_LE(asked->at_ms(), entered->at_ms());
        const auto* pre = step(t, "pre-prepare");
        ASSERT_TRUE(pre);
        EXPECT_GE(pre->view(), 1u) << "ordered in a later view";
        EXPECT_NE(pre->votes(0), 0u) << "not by the dead primary";
    }

    // The CLI tells it as text: replica 0 down, the view change, and whose replies counted.
    const std::string tx = crypto::to_hex(r->tx_id);
    auto run = run_command(bin_dir() + "/tally explain --dir " + net.dir() + " " + tx);
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("replica 0  down"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("view-change  asks for view"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("A client waiting for 2 matching replies accepted replica"), std::string::npos)
        << run.output;
    // An id no replica saw: the ledger says it does not have it, and the exit code says so.
    run = run_command(bin_dir() + "/tally explain --dir " + net.dir() + " " + std::string(64, 'a'));
    EXPECT_EQ(run.exit_code, 1) << run.output;
    EXPECT_NE(run.output.find("The ledger does not have it"), std::string::npos) << run.output;
}

TEST(Explain, AStatusRequestForTenThousandRecentSeqsGetsAtMost64WithTheirPhasesAndExecution) {
    LiveNetwork net;
    ASSERT_TRUE(net.ok());
    const auto alice = net.account("alice");
    const auto bob = net.account("bob");
    client::Client c;
    ASSERT_TRUE(c.connect(net.config()));
    // One at a time: each its own batch, so the replicas hold more seqs than the cap.
    constexpr uint64_t kTransfers = 80;
    for (uint64_t nonce = 1; nonce <= kTransfers; ++nonce) {
        auto r = c.transfer(alice, bob.public_key(), 1, nonce, 20s);
        ASSERT_TRUE(r.ok()) << r.error().message;
    }
    ASSERT_TRUE(net.wait_for(
        [](const std::vector<client::ReplicaStatus>& statuses) {
            for (const auto& s : statuses)
                if (!s.up || s.reply.executed() <= node::kRecentSeqsMax) return false;
            return true;
        },
        20s))
        << "every replica executed more batches than the cap";

    auto statuses = c.status(1000ms, std::nullopt, 10'000);
    ASSERT_TRUE(statuses.ok()) << statuses.error().message;
    for (const auto& s : *statuses) {
        SCOPED_TRACE("replica " + std::to_string(s.id));
        ASSERT_TRUE(s.up);
        const auto& recent = s.reply.recent();
        EXPECT_EQ(static_cast<size_t>(recent.size()), node::kRecentSeqsMax) << "capped, not 10,000";
        for (int i = 1; i < recent.size(); ++i)
            EXPECT_LT(recent[i - 1].seq(), recent[i].seq()) << "ascending";
        // The newest executed seqs, each with its phases in order here and its execution after.
        int full = 0;
        for (const auto& seq : recent) {
            if (seq.executed_ms() == 0) continue;
            EXPECT_GE(seq.requests(), 1u);
            std::vector<std::string> phases;
            int64_t last_ms = 0;
            for (const auto& step : seq.steps()) {
                phases.push_back(step.phase());
                EXPECT_LE(last_ms, step.at_ms());
                last_ms = step.at_ms();
            }
            EXPECT_LE(last_ms, seq.executed_ms());
            full += phases == std::vector<std::string>{"pre-prepare", "prepared", "committed"};
        }
        EXPECT_GE(full, 1) << "no seq went through pre-prepare, prepared and committed here";
    }
    // A status request without it carries none: the plain `tally net status` stays small.
    auto plain = c.status(1000ms);
    ASSERT_TRUE(plain.ok());
    for (const auto& s : *plain) EXPECT_EQ(s.reply.recent_size(), 0);
}

}  // namespace
}  // namespace tally::integration
