// The `tally` command line's helpers: what a user types becomes accounts, keys, amounts and
// ids, or one clear sentence and exit code 2; the JSON shapes commands print.
#include "client/cli.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "crypto/key_file.h"

namespace tally::client {
namespace {
namespace fs = std::filesystem;

class CliTest : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/tally-cli-test-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        dir_ = pattern;
        fs::create_directories(dir_ + "/accounts");
        alice_ = crypto::KeyPair::generate();
        ASSERT_TRUE(crypto::write_key_file(dir_ + "/accounts/alice.key", *alice_).ok());
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string dir_;
    std::optional<crypto::KeyPair> alice_;
};

TEST_F(CliTest, AnAccountIsHexAKeyFileOrANameInTheNetworkFolder) {
    const auto hex = crypto::key_to_hex(alice_->public_key());
    auto by_hex = resolve_account(hex, dir_);
    ASSERT_TRUE(by_hex.ok()) << by_hex.error().message;
    EXPECT_EQ(*by_hex, alice_->public_key());

    auto by_file = resolve_account(dir_ + "/accounts/alice.key", dir_);
    ASSERT_TRUE(by_file.ok()) << by_file.error().message;
    EXPECT_EQ(*by_file, alice_->public_key());

    auto by_name = resolve_account("alice", dir_);
    ASSERT_TRUE(by_name.ok()) << by_name.error().message;
    EXPECT_EQ(*by_name, alice_->public_key());
}

TEST_F(CliTest, MalformedHexSaysHowManyDigitsItGot) {
    auto r = resolve_account(std::string(63, 'a'), dir_);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "usage");
    EXPECT_NE(r.error().message.find("expected 64 hex digits, got 63"), std::string::npos)
        << r.error().message;
    EXPECT_EQ(exit_code_for(r.error()), kExitUsage);
}

TEST_F(CliTest, AnUnknownAccountNameListsTheKnownOnes) {
    auto r = resolve_account("mallory", dir_);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("unknown account 'mallory'"), std::string::npos);
    EXPECT_NE(r.error().message.find("alice"), std::string::npos) << r.error().message;
    // Sixty-four characters that are not all hex are not an id either.
    auto z = resolve_account(std::string(64, 'z'), dir_);
    ASSERT_FALSE(z.ok());
    EXPECT_NE(z.error().message.find("unknown account"), std::string::npos);
}

TEST_F(CliTest, ANameCannotEscapeTheAccountsFolder) {
    auto r = resolve_account("../accounts/alice", dir_);
    EXPECT_FALSE(r.ok());
}

TEST_F(CliTest, ABadKeyFileIsNamedInTheError) {
    const std::string path = dir_ + "/loose.key";
    ASSERT_TRUE(crypto::write_key_file(path, crypto::KeyPair::generate()).ok());
    ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
    auto r = resolve_key(path, dir_);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "usage");
    EXPECT_NE(r.error().message.find("bad key file " + path), std::string::npos) << r.error().message;

    const std::string garbage = dir_ + "/garbage.key";
    {
        std::ofstream out(garbage);
        out << "hello\n";
    }
    ::chmod(garbage.c_str(), 0600);
    auto g = resolve_account(garbage, dir_);
    ASSERT_FALSE(g.ok());
    EXPECT_NE(g.error().message.find("bad key file"), std::string::npos);
}

TEST_F(CliTest, AKeyIsAFileOrANameAndAMissingOneIsAUsageError) {
    auto by_name = resolve_key("alice", dir_);
    ASSERT_TRUE(by_name.ok()) << by_name.error().message;
    EXPECT_EQ(by_name->public_key(), alice_->public_key());
    auto missing = resolve_key("nobody", dir_);
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(exit_code_for(missing.error()), kExitUsage);
    EXPECT_NE(missing.error().message.find("alice"), std::string::npos);
}

TEST(Cli, NumbersAreWholeAndInRange) {
    EXPECT_EQ(*parse_u64("10", "--amount", 1), 10u);
    EXPECT_EQ(*parse_u64("18446744073709551615", "--amount"), UINT64_MAX);
    for (const char* bad : {"", "-1", "1.5", "abc", " 1", "1e3", "18446744073709551616",
                            "99999999999999999999"}) {
        auto r = parse_u64(bad, "--amount", 1);
        EXPECT_FALSE(r.ok()) << bad;
        if (!r.ok()) {
            EXPECT_EQ(exit_code_for(r.error()), kExitUsage);
        }
    }
    auto zero = parse_u64("0", "--amount", 1);
    ASSERT_FALSE(zero.ok());
    EXPECT_NE(zero.error().message.find("at least 1"), std::string::npos);
}

TEST(Cli, ATimeoutOutOfRangeNamesTheOptionItCameFrom) {
    EXPECT_EQ(*parse_timeout_s(1.5), Duration{1'500});
    for (double bad : {0.0, -1.0, 86'401.0}) {
        auto wait = parse_timeout_s(bad, "--wait");
        ASSERT_FALSE(wait.ok()) << bad;
        EXPECT_EQ(wait.error().message, "--wait must be between 0 and 86400 seconds");
        EXPECT_EQ(exit_code_for(wait.error()), kExitUsage);
    }
    EXPECT_NE(parse_timeout_s(0).error().message.find("--timeout"), std::string::npos);
}

TEST(Cli, TransactionIdsAreSixtyFourHexDigits) {
    const auto id = crypto::sha256("x");
    auto ok = parse_tx_id(crypto::to_hex(id));
    ASSERT_TRUE(ok.ok());
    EXPECT_EQ(*ok, id);
    EXPECT_FALSE(parse_tx_id("abc").ok());
    EXPECT_FALSE(parse_tx_id(std::string(64, 'g')).ok());
}

TEST(Cli, ExitCodesFollowTheKindOfError) {
    EXPECT_EQ(exit_code_for(make_error("timeout", "")), kExitUnreachable);
    EXPECT_EQ(exit_code_for(make_error("network", "")), kExitUnreachable);
    EXPECT_EQ(exit_code_for(make_error("failed", "")), kExitFailed);
    EXPECT_EQ(exit_code_for(make_error("usage", "")), kExitUsage);
    EXPECT_EQ(exit_code_for(make_error("not_found", "")), kExitUsage);
}

// Issue 11 §5: nonce_too_high and unknown_sender are "not yet", not "no": the signed bytes may
// still apply, so the CLI must not call them failed (a user who then pays again with the next
// nonce pays twice when the first copy applies).
TEST(Cli, ATransferNotOrderedForGoodIsReportedAsMayStillApplyNotAsFailed) {
    TransferResult t;
    t.nonce = 3;
    for (auto code : {ledger::ResultCode::kNonceTooHigh, ledger::ResultCode::kUnknownSender}) {
        t.result = static_cast<uint32_t>(code);
        EXPECT_FALSE(t.final());
        const auto j = transfer_json(t);
        EXPECT_EQ(j["final"], false);
        EXPECT_EQ(j["status"], "not_ordered_may_still_apply");
        const std::string advice = not_final_advice(t);
        EXPECT_NE(advice.find("may still apply"), std::string::npos) << advice;
        EXPECT_NE(advice.find("--nonce 3"), std::string::npos) << advice;
        EXPECT_NE(advice.find("was not ordered"), std::string::npos) << advice;
        // Executed at a seq (nonce_too_high in a block): ordered, yet it moved nothing.
        TransferResult executed = t;
        executed.seq = 12;
        const std::string at_seq = not_final_advice(executed);
        EXPECT_NE(at_seq.find("ordered at seq 12 but moved no money, and may still apply"), std::string::npos)
            << at_seq;
        EXPECT_EQ(at_seq.find("not ordered"), std::string::npos) << at_seq;
    }
    for (auto code : {ledger::ResultCode::kInsufficientFunds, ledger::ResultCode::kNonceTooLow,
                      ledger::ResultCode::kBadSignature}) {
        t.result = static_cast<uint32_t>(code);
        EXPECT_TRUE(t.final());
        EXPECT_EQ(transfer_json(t)["status"], "failed");
    }
    t.result = static_cast<uint32_t>(ledger::ResultCode::kOk);
    EXPECT_EQ(transfer_json(t)["status"], "applied");
    EXPECT_NE(kExitNotFinal, kExitFailed);
}

TEST(Cli, ConsistencyNamesRoundTrip) {
    for (auto c : {Consistency::kLinearizable, Consistency::kFast, Consistency::kLocal})
        EXPECT_EQ(consistency_from_name(consistency_name(c)), c);
    EXPECT_FALSE(consistency_from_name("eventual").has_value());
}

TEST(Cli, ResultCodesPrintByName) {
    EXPECT_EQ(result_text(0), "ok");
    EXPECT_EQ(result_text(4), "insufficient_funds");
    EXPECT_EQ(result_text(200), "result_200");
}

TEST(Cli, MissingNetworkSaysHowToStartOne) {
    auto r = load_network("/tmp/definitely-not-a-tally-network");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("tally net up"), std::string::npos);
}

TEST(Cli, StatusJsonHasOneEntryPerReplicaWithFullDigests) {
    std::vector<ReplicaStatus> statuses(2);
    statuses[0].id = 0;
    statuses[0].up = true;
    statuses[0].reply.set_role("primary");
    statuses[0].reply.set_view(2);
    statuses[0].reply.set_executed(77);
    statuses[0].reply.set_state_digest(std::string(32, '\xab'));
    statuses[0].reply.set_low_water_mark(64);
    statuses[0].reply.set_stable_checkpoint(64);
    statuses[0].reply.add_traitor("silent");
    statuses[0].reply.set_catching_up_to(128);
    auto* d = statuses[0].reply.add_detected();
    d->set_kind("bad_signature");
    d->set_count(3);
    statuses[1].id = 1;
    const auto j = status_json(statuses);
    ASSERT_EQ(j["replicas"].size(), 2u);
    const auto& r0 = j["replicas"][0];
    EXPECT_EQ(r0["id"], 0);
    EXPECT_EQ(r0["up"], true);
    EXPECT_EQ(r0["role"], "primary");
    EXPECT_EQ(r0["view"], 2);
    EXPECT_EQ(r0["executed"], 77);
    std::string full_digest;
    for (int i = 0; i < 32; ++i) full_digest += "ab";
    EXPECT_EQ(r0["digest"], full_digest);
    EXPECT_EQ(r0["low_water_mark"], 64);
    EXPECT_EQ(r0["stable_checkpoint"], 64);
    EXPECT_EQ(r0["traitor"][0], "silent");
    EXPECT_EQ(r0["catching_up_to"], 128);
    EXPECT_EQ(r0["detected"]["bad_signature"], 3);
    EXPECT_EQ(j["replicas"][1]["up"], false);

    const auto table = status_table(statuses);
    EXPECT_NE(table.find("primary"), std::string::npos);
    EXPECT_NE(table.find("abababababab"), std::string::npos);  // 12 hex digits in the table
    EXPECT_EQ(table.find(std::string(14, 'a')), std::string::npos);
    EXPECT_NE(table.find("down"), std::string::npos);
    EXPECT_NE(table.find("stable(h)"), std::string::npos);
    EXPECT_NE(table.find("detected:bad_signature=3"), std::string::npos);
    EXPECT_NE(table.find("traitor:silent"), std::string::npos);
    EXPECT_NE(table.find("catching-up-to:128"), std::string::npos);
}

// `n` replicas, all up, with ids 0..n-1 and empty replies.
std::vector<ReplicaStatus> up_replicas(uint32_t n) {
    std::vector<ReplicaStatus> statuses(n);
    for (uint32_t i = 0; i < n; ++i) {
        statuses[i].id = i;
        statuses[i].up = true;
    }
    return statuses;
}

// After --recover: silent while recovering, then (PBFT) no VIEW-CHANGE until a checkpoint.
TEST(Cli, TheStatusSaysWhileAReplicaRecoversAndWhileItWithholdsViewChanges) {
    std::vector<ReplicaStatus> statuses = up_replicas(2);
    for (auto& s : statuses) s.reply.set_role("backup");
    statuses[0].reply.set_recovering(true);
    statuses[0].reply.set_view_changes_withheld_through(UINT64_MAX);
    statuses[1].reply.set_view_changes_withheld_through(640);
    const auto j = status_json(statuses);
    EXPECT_EQ(j["replicas"][0]["recovering"], true);
    EXPECT_EQ(j["replicas"][1]["recovering"], false);
    EXPECT_EQ(j["replicas"][1]["view_changes_withheld_through"], 640);
    const auto table = status_table(statuses);
    EXPECT_NE(table.find("recovering"), std::string::npos);
    EXPECT_NE(table.find("no-view-change-until-checkpoint:640"), std::string::npos);
    EXPECT_EQ(table.find("no-view-change-until-checkpoint:1844"), std::string::npos)
        << "while recovering the seq is not known yet";
}

// Replicas at one seq with different state digests: the table says the network forked, and
// under Raft that Raft cannot tell; replicas at different seqs are only lagging.
TEST(Cli, TheStatusTableSaysSoWhenReplicasHoldDifferentStatesAtOneSeq) {
    std::vector<ReplicaStatus> statuses = up_replicas(3);
    for (uint32_t i = 0; i < 3; ++i) {
        statuses[i].reply.set_protocol("raft");
        statuses[i].reply.set_role(i == 0 ? "leader" : "follower");
        statuses[i].reply.set_executed(13);
        statuses[i].reply.set_state_digest(std::string(32, i == 1 ? '\x9d' : '\x36'));
    }
    auto table = status_table(statuses);
    EXPECT_NE(table.find("FORK: at seq 13 the replicas hold 2 different states: {0,2} 363636363636; {1} "
                         "9d9d9d9d9d9d."),
              std::string::npos)
        << table;
    EXPECT_NE(table.find("Raft trusts every replica and does not detect this"), std::string::npos) << table;

    statuses[1].reply.set_executed(12);  // behind, not forked
    EXPECT_EQ(status_table(statuses).find("FORK"), std::string::npos);
    statuses[1].reply.set_executed(13);
    for (auto& st : statuses) st.reply.set_protocol("pbft");
    EXPECT_NE(status_table(statuses).find("More than f replicas are faulty"), std::string::npos);
}

// `net status` says under a Raft network's table whether reads use the leader's lease; a PBFT
// network's output gains nothing (it has no lease).
TEST(Cli, TheStatusSaysWhetherARaftNetworkServesReadsFromTheLeadersLease) {
    node::api::NetworkConfig config;
    config.protocol = bft::Protocol::kRaft;
    EXPECT_EQ(lease_reads_line(config).rfind("lease reads: off", 0), 0u) << lease_reads_line(config);
    config.consensus.lease_reads = true;
    EXPECT_EQ(lease_reads_line(config).rfind("lease reads: on", 0), 0u) << lease_reads_line(config);
    EXPECT_EQ(lease_reads_line(config).back(), '\n');
    config.protocol = bft::Protocol::kPbft;
    config.consensus.lease_reads = false;
    EXPECT_EQ(lease_reads_line(config), "");
}

// `tally tx`: an id executed as nonce_too_high is neither applied nor unknown.
TEST(Cli, TxJsonSaysWhetherTheTransactionAppliedFailedWasExecutedNotYetOrIsUnknown) {
    TxResult r;
    r.seq = 7;
    EXPECT_EQ(tx_json(r)["status"], "applied");
    r.result = static_cast<uint32_t>(ledger::ResultCode::kInsufficientFunds);
    EXPECT_EQ(tx_json(r)["status"], "failed");
    r.result = static_cast<uint32_t>(ledger::ResultCode::kNonceTooHigh);
    EXPECT_EQ(tx_json(r)["status"], "executed_not_applied_may_still_apply");
    EXPECT_EQ(tx_json(r)["seq"], 7);
    EXPECT_NE(tx_not_final_advice(r).find("ordered at seq 7 and executed as nonce_too_high"), std::string::npos)
        << tx_not_final_advice(r);
    r.result = static_cast<uint32_t>(ledger::ResultCode::kUnknownTx);
    EXPECT_EQ(tx_json(r)["status"], "unknown");
}

TEST(Cli, TransferAndBenchJsonKeys) {
    TransferResult t;
    t.seq = 9;
    t.block = 9;
    t.result = 4;
    const auto tj = transfer_json(t);
    for (const char* key : {"tx", "seq", "block", "result"}) EXPECT_TRUE(tj.contains(key)) << key;
    EXPECT_EQ(tj["result"], "insufficient_funds");

    BenchResult b;
    b.committed = 10;
    const auto bj = bench_json(b);
    for (const char* key : {"tps", "committed", "p50_ms", "p99_ms", "clients", "duration_s", "failed"})
        EXPECT_TRUE(bj.contains(key)) << key;
}

TEST(Bench, PercentileIsNearestRank) {
    std::vector<double> v;
    for (int i = 100; i >= 1; --i) v.push_back(i);
    EXPECT_EQ(percentile(v, 50), 50);
    EXPECT_EQ(percentile(v, 99), 99);
    EXPECT_EQ(percentile(v, 100), 100);
    std::vector<double> none;
    EXPECT_EQ(percentile(none, 50), 0);
}

}  // namespace
}  // namespace tally::client
