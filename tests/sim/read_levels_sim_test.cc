// What each read level promises, shown on the stale case in the simulator on the real node
// (sim/node_cluster.h), through the real client's reads (client::Client::balance; issue 11 §6).
//
// Replicas 2 and 3 hear commits late (30 and 70 ticks), so while clients keep writing they lag
// at different points of the log; replica 1 takes part in consensus honestly but lies in every
// reply (`--traitor wrong-reply`, node/traitor.h: another value for a read, another result and
// seq for an ordered reply). A write W completes on f+1 = 2 matching replies — replica 0's and
// lagging replica 2's, the liar's do not match. The moment it does, while replica 3 still shows
// the recipient's balance from before W, a reader (client 0, through its synchronous calls)
// asks for that balance at each level, the quickest first:
//   - local: one replica's signed word is accepted as it is: replica 3's is stale (a seq below
//     W, the balance before it, but true at that seq) and replica 1's false (its balance plus
//     7), and both verify. That is all `local` promises.
//   - fast: replicas 0 and 2 agree (or not, if 0 moved on), 1 lies, 3 is behind: no 2f+1 = 3
//     replies match on (seq, value, digest), and the client falls back to an ordered read
//     (BalanceResult::served says so), which sees W. Every fast read that is served fast, here
//     and at other moments of the run, says the balance the ledger held at the seq it names.
//   - linearizable: every ordered read of the run, the reader's and the clients' own, lagging
//     replicas and liar and all, passes the linearizability check.
// Once the replicas agree at one seq again, a fast read is served fast, at their seq.
// The real liar adds to the truth; a liar that copies a lagging replica's stale answer (three
// old balances at different seqs, which matched when replies were matched on the value alone)
// is ReplyQuorum's unit test FLiarsAndFPlusOneLaggingReplicasCannotMakeAFastReadStale.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "sim/node_checks.h"
#include "sim/node_cluster.h"
#include "sim/seeds.h"

namespace tally::sim {
namespace {

using client::Consistency;
using crypto::MessageType;

constexpr bft::ReplicaId kLiar = 1;
constexpr uint32_t kReader = 0;

uint64_t current_balance(const NodeCluster& cluster, bft::ReplicaId id, uint32_t of) {
    auto a = cluster.ledger(id).account(cluster.client_key(of).public_key());
    return a ? a->balance : 0;
}

// Client `of`'s balance as of seq `seq`: its genesis balance moved by every ok transfer of the
// run executed at or below `seq`, as `ledger` (an up-to-date honest one) recorded them.
uint64_t balance_at_seq(const NodeCluster& cluster, const ledger::State& ledger, uint32_t of, uint64_t seq) {
    uint64_t balance = kClientBalance;
    for (const auto& op : cluster.history()) {
        if (op.is_read) continue;
        auto t = ledger.transaction(op.tx_id);
        if (!t || t->code != ledger::ResultCode::kOk || t->seq > seq) continue;
        if (op.to_client == of) balance += op.amount;
        if (op.client == of) balance -= op.amount;
    }
    return balance;
}

// What client `of`'s balance may read inside block `seq`: the balance after block seq - 1 moved
// by any subset of the block's own ok transfers. An ordered read executes at its place in its
// batch, between the block's transfers, and names the block's seq; this ledger does not keep
// the order within a block, so any subset is allowed here (the linearizability check, which
// knows the order, is the strict one).
std::vector<uint64_t> balances_within_block(const NodeCluster& cluster, const ledger::State& ledger, uint32_t of,
                                            uint64_t seq) {
    std::vector<uint64_t> balances{balance_at_seq(cluster, ledger, of, seq - 1)};
    for (const auto& op : cluster.history()) {
        if (op.is_read || (op.to_client != of && op.client != of)) continue;
        auto t = ledger.transaction(op.tx_id);
        if (!t || t->code != ledger::ResultCode::kOk || t->seq != seq) continue;
        const size_t n = balances.size();
        for (size_t i = 0; i < n; ++i) {
            uint64_t b = balances[i];
            if (op.to_client == of) b += op.amount;
            if (op.client == of) b -= op.amount;
            balances.push_back(b);
        }
    }
    return balances;
}

// A read to judge once the run is over and every seq it names is in the ledgers.
struct Seen {
    std::string what;
    uint32_t of = 0;
    client::BalanceResult read;
    uint64_t lie = 0;  // what the answering replica adds to the truth (the liar's local word)
};

TEST(ReadLevelsSim, TheStaleCaseOfEachReadLevel) {
    for_each_seed(3, [](uint64_t seed) {
        NodeSimConfig config;
        config.seed = seed;
        config.clients = 4;
        config.ops_per_client = 40;
        config.read_fraction = 0.25;                      // ordered reads, checked for linearizability
        config.consensus.view_change_timeout_ticks = 600;  // lagging is not a faulty primary
        config.consensus.watermark_window = 64;
        config.traitors[kLiar] = "wrong-reply";
        NodeCluster cluster(config);
        cluster.slow_to(2, 30, {MessageType::kCommit});
        cluster.slow_to(3, 70, {MessageType::kCommit});
        std::vector<Seen> seen;

        // The moment a write completes while replica 3 lags below it, still showing the
        // recipient's old balance.
        std::optional<ClientOp> write;
        const auto stale_moment = [&] {
            for (auto it = cluster.history().rbegin(); it != cluster.history().rend(); ++it) {
                const ClientOp& op = *it;
                if (op.return_tick != cluster.now()) continue;
                if (op.is_read || op.result != ledger::ResultCode::kOk) continue;
                if (!(cluster.ledger(3).last_seq() < op.seq && cluster.ledger(0).last_seq() >= op.seq)) continue;
                if (current_balance(cluster, 3, op.to_client) == current_balance(cluster, 0, op.to_client)) continue;
                write = op;
                return true;
            }
            return false;
        };
        ASSERT_TRUE(cluster.run_until(stale_moment, 20000))
            << "no write completed while replica 3 lagged below it\n" << node_report(cluster, seed);
        const uint32_t of = write->to_client;

        // local: one replica's signed word, taken as it is — stale (3) or false (the liar).
        auto stale = cluster.balance(kReader, of, Consistency::kLocal, client::kDefaultTimeout, 3);
        ASSERT_TRUE(stale.ok()) << stale.error().message << "\n" << node_report(cluster, seed);
        EXPECT_EQ(stale->served, Consistency::kLocal);
        EXPECT_EQ(stale->replica, std::optional<uint32_t>(3));
        EXPECT_LT(stale->seq, write->seq) << "replica 3 answered from before the write\n" << node_report(cluster, seed);
        seen.push_back({"local from replica 3", of, *stale, 0});
        auto lied = cluster.balance(kReader, of, Consistency::kLocal, client::kDefaultTimeout, kLiar);
        ASSERT_TRUE(lied.ok()) << lied.error().message << "\n" << node_report(cluster, seed);
        EXPECT_EQ(lied->served, Consistency::kLocal);
        seen.push_back({"local from the liar", of, *lied, 7});

        // fast: no three replies match; the client falls back to an ordered read.
        auto fast = cluster.balance(kReader, of, Consistency::kFast);
        ASSERT_TRUE(fast.ok()) << fast.error().message << "\n" << node_report(cluster, seed);
        EXPECT_EQ(fast->served, Consistency::kLinearizable)
            << "a fast read was served at seq " << fast->seq << " (write at " << write->seq
            << ") with replica 3 behind and replica 1 lying\n" << node_report(cluster, seed);
        EXPECT_GE(fast->seq, write->seq) << "the ordered read it fell back to sees the write";
        seen.push_back({"fast, fallen back", of, *fast, 0});

        // linearizable: through consensus, whatever the lagging replicas and the liar say.
        auto ordered = cluster.balance(kReader, of, Consistency::kLinearizable);
        ASSERT_TRUE(ordered.ok()) << ordered.error().message << "\n" << node_report(cluster, seed);
        EXPECT_EQ(ordered->served, Consistency::kLinearizable);
        EXPECT_GE(ordered->seq, write->seq);
        seen.push_back({"linearizable", of, *ordered, 0});

        // The run goes on with 2 and 3 lagging and fast reads at other moments: whichever are
        // served fast say what 2f+1 replicas agreed on, which the liar alone cannot make.
        for (uint32_t i = 0; i < 12 && !cluster.clients_done(); ++i) {
            cluster.run_until([] { return false; }, 40);
            const uint32_t account = 1 + i % (config.clients - 1);
            auto read = cluster.balance(kReader, account, Consistency::kFast);
            ASSERT_TRUE(read.ok()) << read.error().message << "\n" << node_report(cluster, seed);
            seen.push_back({"fast during the run", account, *read, 0});
        }
        expect_node_live_and_safe(cluster, seed, 40000);
        EXPECT_GT(cluster.client_counters().mismatch, 0u) << "the liar's replies were outvoted";
        size_t reads = 0;
        for (const auto& op : cluster.history()) reads += op.is_read ? 1 : 0;
        EXPECT_GT(reads, 2u);

        // fast, once the replicas agree at one seq: served fast, with the seq 2f+1 signed.
        auto agreed = cluster.balance(kReader, of, Consistency::kFast);
        ASSERT_TRUE(agreed.ok()) << agreed.error().message;
        EXPECT_EQ(agreed->served, Consistency::kFast) << node_report(cluster, seed);
        EXPECT_EQ(agreed->seq, cluster.ledger(0).last_seq());
        EXPECT_EQ(agreed->balance, current_balance(cluster, 0, of));
        seen.push_back({"fast, agreed", of, *agreed, 0});

        // Every answer was true at the seq it named (plus the liar's 7 in its local word); an
        // ordered one, at its place inside that seq's block.
        const ledger::State& truth = cluster.ledger(0);
        for (const auto& s : seen) {
            ASSERT_LE(s.read.seq, truth.last_seq()) << s.what;
            if (s.read.served == Consistency::kLinearizable) {
                const auto allowed = balances_within_block(cluster, truth, s.of, s.read.seq);
                EXPECT_NE(std::find(allowed.begin(), allowed.end(), s.read.balance), allowed.end())
                    << s.what << " at seq " << s.read.seq << ": " << s.read.balance << "\n"
                    << node_report(cluster, seed);
                continue;
            }
            EXPECT_EQ(s.read.balance, balance_at_seq(cluster, truth, s.of, s.read.seq) + s.lie)
                << s.what << " (served " << client::consistency_name(s.read.served) << ") at seq " << s.read.seq
                << "\n" << node_report(cluster, seed);
        }
    });
}

}  // namespace
}  // namespace tally::sim
