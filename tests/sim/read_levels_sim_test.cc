// What each read level promises, shown on the stale case in the simulator (issue 11 §6).
//
// Replicas 2 and 3 hear commits late (30 and 70 ticks), so while clients keep writing they lag
// at different points of the log; replica 1 takes part in consensus honestly but lies to
// readers. The moment a write W completes (f+1 = 2 replies, from 0 and 1), a reader asks every
// replica for the recipient's balance, answered from each replica's real ledger:
//   - fast: 1 (the liar, copying replica 2's answer), 2 and 3 give the old balance, 0 the new.
//     Three old balances made a "2f+1 matching" quorum when replies matched on the value
//     alone; matched on (seq, value, digest) they are three groups, agreement is impossible,
//     and the client falls back to an ordered read.
//   - local: one replica's signed word is accepted as it is: replica 3's is stale and replica
//     1's false, and both verify. That is all `local` promises.
//   - linearizable: every ordered read of the run, lagging replicas and all, passes the
//     linearizability check.
#include <gtest/gtest.h>

#include "client/reply_quorum.h"
#include "ledger/tx.h"
#include "node/api/client.pb.h"
#include "sim/cluster.h"
#include "sim/seeds.h"

namespace tally::sim {
namespace {

using crypto::MessageType;

// A replica's signed answer to a balance query, from its ledger as it is now (what tallyd's
// Replica::on_read sends: node/replica_clients.cc).
std::string read_reply(const Cluster& cluster, bft::ReplicaId id, const std::string& query,
                       const crypto::PublicKey& asker, uint64_t nonce = 1) {
    const ledger::State& ledger = cluster.ledger(id);
    const ledger::Outcome outcome = ledger.query(query);
    node::api::pb::ReadReply read;
    node::api::pb::Reply& r = *read.mutable_reply();
    r.set_tx_id(std::string(crypto::as_bytes(outcome.tx_id)));
    r.set_client(std::string(crypto::as_bytes(asker)));
    r.set_nonce(nonce);
    r.set_result(static_cast<uint32_t>(outcome.code));
    r.set_seq(ledger.last_seq());
    r.set_value(outcome.value);
    r.set_account_nonce(outcome.nonce);
    r.set_view(cluster.status(id).view);
    r.set_replica(id);
    const crypto::Hash digest = ledger.state_digest();
    read.set_state_digest(std::string(crypto::as_bytes(digest)));
    return crypto::seal(cluster.replica_key(id), MessageType::kReadReply, read.SerializeAsString());
}

// `from`'s lie: `other`'s answer, signed as its own.
std::string copy_as(const Cluster& cluster, bft::ReplicaId from, const std::string& other) {
    auto env = crypto::open(other);
    node::api::pb::ReadReply read;
    read.ParseFromString(env->body);
    read.mutable_reply()->set_replica(from);
    return crypto::seal(cluster.replica_key(from), MessageType::kReadReply, read.SerializeAsString());
}

uint64_t balance_at(const Cluster& cluster, bft::ReplicaId id, const crypto::PublicKey& account) {
    const auto reader = crypto::KeyPair::from_seed(crypto::Seed{});
    return cluster.ledger(id).query(ledger::make_balance_query(reader, account, 1)).value;
}

TEST(ReadLevelsSim, TheStaleCaseOfEachReadLevel) {
    for_each_seed(3, [](uint64_t seed) {
        SimConfig config;
        config.seed = seed;
        config.clients = 4;
        config.transfers_per_client = 40;
        config.read_fraction = 0.25;           // ordered reads, checked for linearizability
        config.view_change_timeout_ticks = 600;  // lagging is not a faulty primary
        config.watermark_window = 64;
        Cluster cluster(config);
        cluster.slow_to(2, 30, {MessageType::kCommit});
        cluster.slow_to(3, 70, {MessageType::kCommit});

        // Find the moment a write completes while 2 and 3 lag below it, at different seqs,
        // both still showing the recipient's old balance.
        std::optional<ClientOp> write;
        const auto stale_moment = [&] {
            for (auto it = cluster.history().rbegin(); it != cluster.history().rend(); ++it) {
                const ClientOp& op = *it;
                if (op.return_tick != cluster.now()) continue;
                if (op.is_read || op.result != ledger::ResultCode::kOk) continue;
                const auto account = cluster.client_key(op.to_client).public_key();
                const uint64_t s2 = cluster.ledger(2).last_seq(), s3 = cluster.ledger(3).last_seq();
                if (!(s3 < s2 && s2 < op.seq && cluster.ledger(0).last_seq() >= op.seq)) continue;
                const uint64_t now0 = balance_at(cluster, 0, account);
                if (balance_at(cluster, 2, account) != balance_at(cluster, 3, account) ||
                    balance_at(cluster, 2, account) == now0)
                    continue;
                write = op;
                return true;
            }
            return false;
        };
        ASSERT_TRUE(cluster.run_until(stale_moment, 20000))
            << "no write completed while replicas 2 and 3 lagged apart\n" << replay(cluster, seed);

        const auto account = cluster.client_key(write->to_client).public_key();
        crypto::Seed reader_seed{};
        reader_seed[0] = 0x77;
        reader_seed[1] = static_cast<uint8_t>(seed);
        const auto reader = crypto::KeyPair::from_seed(reader_seed);
        const std::string query = ledger::make_balance_query(reader, account, 1);
        const client::ExpectedRequest expected{ledger::tx_id(query), reader.public_key(), 1};
        const std::string from2 = read_reply(cluster, 2, query, reader.public_key());
        const std::string from3 = read_reply(cluster, 3, query, reader.public_key());
        const std::string from0 = read_reply(cluster, 0, query, reader.public_key());
        const std::string lie = copy_as(cluster, 1, from2);
        const uint64_t old_balance = balance_at(cluster, 2, account);
        const uint64_t new_balance = balance_at(cluster, 0, account);

        // fast: three replies carry the old balance, but not at one seq: no quorum; the client
        // falls back to an ordered read.
        client::ReplyQuorum fast(client::QuorumKind::kRead, 3, 4, expected);
        const bft::ReplicaId order[] = {1, 2, 3, 0};
        const std::string* frames[] = {&lie, &from2, &from3, &from0};
        for (size_t i = 0; i < 4; ++i)
            fast.add(order[i], cluster.replica_key(order[i]).public_key(), *frames[i]);
        EXPECT_FALSE(fast.done()) << "a fast read accepted the balance before write " << write->seq
                                  << ": " << (fast.done() ? fast.accepted()->value() : 0) << " (old "
                                  << old_balance << ", new " << new_balance << ")\n"
                                  << replay(cluster, seed);
        EXPECT_TRUE(fast.impossible());

        // local: one replica's signed word, taken as it is — stale (3) or false (1).
        client::ReplyQuorum stale(client::QuorumKind::kRead, 1, 4, expected);
        EXPECT_EQ(stale.add(3, cluster.replica_key(3).public_key(), from3), client::Vote::kAccepted);
        EXPECT_EQ(stale.accepted()->value(), old_balance);
        EXPECT_LT(stale.accepted()->seq(), write->seq);
        client::ReplyQuorum lied(client::QuorumKind::kRead, 1, 4, expected);
        auto env = crypto::open(from0);
        node::api::pb::ReadReply false_word;
        false_word.ParseFromString(env->body);
        false_word.mutable_reply()->set_replica(1);
        false_word.mutable_reply()->set_value(new_balance + 7);  // no ledger ever held this
        EXPECT_EQ(lied.add(1, cluster.replica_key(1).public_key(),
                           crypto::seal(cluster.replica_key(1), MessageType::kReadReply,
                                        false_word.SerializeAsString())),
                  client::Vote::kAccepted);
        EXPECT_EQ(lied.accepted()->value(), new_balance + 7);

        // linearizable: the run goes on with 2 and 3 lagging, then they catch up; every
        // ordered read of it was linearizable.
        cluster.run_until([&] { return cluster.clients_done(); }, 40000);
        cluster.heal();
        ASSERT_TRUE(cluster.run_until([&] { return cluster.clients_done(); }, 40000)) << replay(cluster, seed);
        ASSERT_TRUE(cluster.run_until([&] { return cluster.check_converged().empty(); }, 20000))
            << replay(cluster, seed);
        auto lin = cluster.check_linearizable();
        EXPECT_TRUE(lin.linearizable) << lin.explanation << "\n" << replay(cluster, seed);
        size_t reads = 0;
        for (const auto& op : cluster.history()) reads += op.is_read ? 1 : 0;
        EXPECT_GT(reads, 0u);

        // fast, once the replicas agree at one seq: accepted, with the seq and digest 2f+1 signed.
        const std::string query2 = ledger::make_balance_query(reader, account, 2);
        client::ReplyQuorum agreed(client::QuorumKind::kRead, 3, 4,
                                   client::ExpectedRequest{ledger::tx_id(query2), reader.public_key(), 2});
        for (bft::ReplicaId id = 0; id < 3; ++id)
            agreed.add(id, cluster.replica_key(id).public_key(),
                       read_reply(cluster, id, query2, reader.public_key(), 2));
        ASSERT_TRUE(agreed.done());
        EXPECT_EQ(agreed.accepted()->seq(), cluster.ledger(0).last_seq());
        EXPECT_EQ(agreed.accepted()->value(), balance_at(cluster, 0, account));
    });
}

}  // namespace
}  // namespace tally::sim
