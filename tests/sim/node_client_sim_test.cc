// The real client's synchronous calls in the simulator on the real node (sim/node_cluster.h):
// Client::balance at each consistency, transfer (its nonce from its own read), tx and status,
// each waiting in virtual time while the replicas and the other clients run on under it.
#include <gtest/gtest.h>

#include "sim/node_checks.h"
#include "sim/node_cluster.h"
#include "sim/seeds.h"

namespace tally::sim {
namespace {

using client::Consistency;

NodeSimConfig sync_config(uint64_t seed, bft::Protocol protocol) {
    NodeSimConfig c;
    c.seed = seed;
    c.protocol = protocol;
    c.faults.drop = 0.02;
    c.faults.delay_max_ticks = 3;
    return c;
}

uint64_t ledger_balance(const NodeCluster& cluster, bft::ReplicaId id, uint32_t of) {
    auto a = cluster.ledger(id).account(cluster.client_key(of).public_key());
    return a ? a->balance : 0;
}

class NodeClientSim : public ::testing::TestWithParam<bft::Protocol> {};

INSTANTIATE_TEST_SUITE_P(Protocols, NodeClientSim, ::testing::Values(bft::Protocol::kPbft, bft::Protocol::kRaft),
                         [](const auto& info) { return std::string(bft::protocol_name(info.param)); });

// A linearizable read and a transfer made synchronously, while the other clients keep writing:
// both complete, the transfer is in every ledger at the seq the client was told, the reads
// agree with the ledgers, and the whole history (theirs included) is linearizable.
TEST_P(NodeClientSim, SynchronousCallsCompleteAndAgreeWithTheLedgers) {
    for_each_seed(3, [&](uint64_t seed) {
        NodeCluster cluster(sync_config(seed, GetParam()));
        ASSERT_TRUE(cluster.run_until([&] { return cluster.clients_done(); }, 20000)) << node_report(cluster, seed);
        cluster.add_requests(6);  // the others write while client 0 waits

        const uint64_t invoked = cluster.now();
        auto before = cluster.balance(0, 1, Consistency::kLinearizable);
        ASSERT_TRUE(before.ok()) << before.error().message << "\n" << node_report(cluster, seed);
        EXPECT_GT(cluster.now(), invoked) << "the call waited in virtual time";
        EXPECT_EQ(before->served, Consistency::kLinearizable);
        EXPECT_TRUE(before->exists);
        EXPECT_GT(before->seq, 0u);

        auto sent = cluster.transfer(0, 1, 123);
        ASSERT_TRUE(sent.ok()) << sent.error().message << "\n" << node_report(cluster, seed);
        EXPECT_TRUE(sent->ok()) << client::result_text(sent->result);
        EXPECT_GT(sent->seq, before->seq);

        // The transaction's own ordered query tells the seq the transfer reply told.
        auto looked_up = cluster.client(0).tx(sent->tx_id);
        ASSERT_TRUE(looked_up.ok()) << looked_up.error().message << "\n" << node_report(cluster, seed);
        EXPECT_EQ(looked_up->result, static_cast<uint32_t>(ledger::ResultCode::kOk));
        // (Raft answers it through ReadIndex, which once set every reply's seq to the ledger's
        // height, a tx query's too.)
        EXPECT_EQ(looked_up->seq, sent->seq);

        auto after = cluster.balance(0, 1, Consistency::kLinearizable);
        ASSERT_TRUE(after.ok()) << after.error().message;
        EXPECT_GE(after->seq, sent->seq);

        expect_node_live_and_safe(cluster, seed);
        for (bft::ReplicaId i = 0; i < cluster.n(); ++i) {
            auto t = cluster.ledger(i).transaction(sent->tx_id);
            ASSERT_TRUE(t.has_value()) << "replica " << i << "\n" << node_report(cluster, seed);
            EXPECT_EQ(t->code, ledger::ResultCode::kOk);
            EXPECT_EQ(t->seq, sent->seq) << "replica " << i;
        }
        // Quiet and converged: a read at every level says what the ledgers say.
        const uint64_t settled = ledger_balance(cluster, 0, 1);
        for (auto level : {Consistency::kLinearizable, Consistency::kFast, Consistency::kLocal}) {
            auto read = cluster.balance(0, 1, level, client::kDefaultTimeout, /*node=*/cluster.n() - 1);
            ASSERT_TRUE(read.ok()) << client::consistency_name(level) << ": " << read.error().message;
            EXPECT_EQ(read->balance, settled) << client::consistency_name(level);
            EXPECT_EQ(read->served, level) << client::consistency_name(level) << " was served otherwise";
        }
        auto statuses = cluster.client(2).status();
        ASSERT_TRUE(statuses.ok());
        ASSERT_EQ(statuses->size(), cluster.n());
        for (const auto& s : *statuses) {
            EXPECT_TRUE(s.up) << "replica " << s.id;
            EXPECT_EQ(s.reply.executed(), cluster.ledger(s.id).last_seq()) << "replica " << s.id;
        }
        const auto lin = cluster.check_linearizable();
        EXPECT_TRUE(lin.linearizable) << lin.explanation << "\n" << node_report(cluster, seed);
    });
}

// A synchronous call waits only as long as it is asked to: with every replica down, a read
// gives up at its deadline, in virtual time.
TEST_P(NodeClientSim, ASynchronousCallTimesOutInVirtualTime) {
    NodeCluster cluster(sync_config(1, GetParam()));
    for (bft::ReplicaId i = 0; i < cluster.n(); ++i) cluster.crash(i);
    const uint64_t invoked = cluster.now();
    auto read = cluster.balance(0, 1, Consistency::kLinearizable, client::Duration{2'000});
    ASSERT_FALSE(read.ok());
    EXPECT_EQ(read.error().code, "timeout");
    const uint64_t waited_ms = (cluster.now() - invoked) * NodeSimConfig::default_consensus().tick_ms;
    EXPECT_GE(waited_ms, 2'000u);
    EXPECT_LE(waited_ms, 3'100u);  // the request's deadline, and the second submit() adds
}

// Synchronous calls replay too: the same seed gives the same answers at the same ticks.
TEST_P(NodeClientSim, SynchronousCallsReplayWithTheSeed) {
    auto run = [&](uint64_t seed) {
        NodeCluster cluster(sync_config(seed, GetParam()));
        cluster.run_until([&] { return cluster.clients_done(); }, 20000);
        cluster.add_requests(4);
        std::vector<std::tuple<uint64_t, uint64_t, uint64_t>> seen;
        for (int i = 0; i < 3; ++i) {
            auto r = cluster.balance(0, 1 + i % 2, i % 2 ? Consistency::kFast : Consistency::kLinearizable);
            auto t = cluster.transfer(0, 2, 10 + i);
            EXPECT_TRUE(r.ok() && t.ok() && t->ok()) << node_report(cluster, seed);
            seen.emplace_back(cluster.now(), r ? r->balance : 0, t ? t->seq : 0);
        }
        return std::make_pair(seen, cluster.ledger(0).state_digest());
    };
    const auto first = run(5);
    EXPECT_EQ(run(5), first);
}

}  // namespace
}  // namespace tally::sim
