// `tally tx` for a transfer the network ordered and executed as nonce_too_high: the ledger keeps
// no final record of it (its bytes may still apply later, ledger/tx.h), yet the lookup must say
// it was ordered at its seq and moved nothing — not "unknown_tx", which tells the sender it was
// never ordered. Through the client library (Client::tx) and the CLI, under PBFT and Raft.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ledger/tx.h"
#include "tests/integration/live_network.h"

namespace tally::integration {
namespace {

// carol's nonce 2 before her nonce 1 (within admission's window: ordered, once) executes as
// nonce_too_high at the next block; then the lookup of its id, by the library and by `tally tx`.
void expect_nonce_too_high_found_at_its_seq(LiveNetwork& net) {
    const auto carol = net.account("carol");
    const auto bob = net.account("bob");
    client::Client c;
    ASSERT_TRUE(c.connect(net.config()));

    const std::string early = ledger::make_transfer(carol, bob.public_key(), 1, 2);
    const crypto::Hash id = ledger::tx_id(early);
    auto sent = c.submit(early, 20s);
    ASSERT_TRUE(sent.ok()) << sent.error().message;
    ASSERT_EQ(sent->result, static_cast<uint32_t>(ledger::ResultCode::kNonceTooHigh));
    // Its seq when the answering replicas executed it; 0 when they refused a copy that came
    // after they had (admission_test.cc says why either is true). Then wait for every replica
    // to have executed it, and ask its seq of the ledger.
    ASSERT_TRUE(net.wait_for(
        [&](const auto& s) {
            for (const auto& r : s)
                if (!r.up || r.reply.executed() < std::max<uint64_t>(sent->seq, 1)) return false;
            return true;
        },
        30s));

    client::Client lookup;
    ASSERT_TRUE(lookup.connect(net.config()));
    auto found = lookup.tx(id, 20s);
    ASSERT_TRUE(found.ok()) << found.error().message;
    EXPECT_EQ(found->result, static_cast<uint32_t>(ledger::ResultCode::kNonceTooHigh))
        << "an executed nonce_too_high transfer was looked up as "
        << ledger::result_name(static_cast<ledger::ResultCode>(found->result));
    EXPECT_GT(found->seq, 0u);
    if (sent->seq != 0) {
        EXPECT_EQ(found->seq, sent->seq);
    }

    // The CLI: the same answer, exit code 4 (not final: it may still apply), and the advice.
    const std::string tally = bin_dir() + "/tally --dir " + net.dir() + " tx " + crypto::to_hex(id);
    auto json = run_command(tally + " --json");
    EXPECT_EQ(json.exit_code, 4) << json.output;
    // (stdout's JSON, then stderr's advice: run_command joins them.)
    const size_t open = json.output.find('{'), close = json.output.rfind('}');
    ASSERT_TRUE(open != std::string::npos && close != std::string::npos) << json.output;
    auto j = nlohmann::json::parse(json.output.substr(open, close - open + 1), nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << json.output;
    EXPECT_EQ(j["result"], "nonce_too_high");
    EXPECT_EQ(j["seq"].get<uint64_t>(), found->seq);
    EXPECT_EQ(j["status"], "executed_not_applied_may_still_apply");
    auto text = run_command(tally);
    EXPECT_EQ(text.exit_code, 4) << text.output;
    EXPECT_NE(text.output.find("moved no money"), std::string::npos) << text.output;

    // Once its turn comes, the same bytes apply, and the lookup says so.
    auto first = c.transfer(carol, bob.public_key(), 1, 1, 20s);
    ASSERT_TRUE(first.ok()) << first.error().message;
    ASSERT_TRUE(first->ok());
    // (From a client that holds no late replies to the first round, which answer these very
    // bytes truly and could make a quorum first.)
    auto applied = lookup.submit(early, 20s);
    ASSERT_TRUE(applied.ok()) << applied.error().message;
    ASSERT_EQ(applied->result, static_cast<uint32_t>(ledger::ResultCode::kOk));
    auto after = lookup.tx(id, 20s);
    ASSERT_TRUE(after.ok()) << after.error().message;
    EXPECT_EQ(after->result, static_cast<uint32_t>(ledger::ResultCode::kOk));
    EXPECT_EQ(after->seq, applied->seq);
}

TEST(TxLookup, PbftReportsATransferExecutedAsNonceTooHighAtItsSeqNotAsUnknown) {
    LiveNetwork net;
    ASSERT_TRUE(net.ok());
    expect_nonce_too_high_found_at_its_seq(net);
}

// With lease reads on, so that the lookup runs through the leader's lease, and `net status`
// says the setting under its table (and in its JSON).
TEST(TxLookup, RaftWithLeaseReadsReportsATransferExecutedAsNonceTooHighAtItsSeqNotAsUnknown) {
    client::NetUpOptions options;
    options.protocol = "raft";
    options.nodes = 3;
    options.lease_reads = true;
    LiveNetwork net(options);
    ASSERT_TRUE(net.ok());
    expect_nonce_too_high_found_at_its_seq(net);

    const std::string status = bin_dir() + "/tally --dir " + net.dir() + " net status";
    auto text = run_command(status);
    EXPECT_EQ(text.exit_code, 0) << text.output;
    EXPECT_NE(text.output.find("\nlease reads: on"), std::string::npos) << text.output;
    auto json = run_command(status + " --json");
    EXPECT_EQ(json.exit_code, 0) << json.output;
    auto j = nlohmann::json::parse(json.output.substr(json.output.find('{')), nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << json.output;
    EXPECT_EQ(j["lease_reads"], true);
}

}  // namespace
}  // namespace tally::integration
