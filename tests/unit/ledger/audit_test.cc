// `tally audit`'s check of a ledger file (ledger/audit.h) and backfill (State's missing
// blocks): a chain whose blocks carry real PBFT commit certificates, made here with four
// replica keys, passes; a block altered, a broken hash link, a certificate with too few or
// forged commits and a gap each fail, naming the first bad block. A ledger that installed a
// snapshot lacks the blocks below it until they are added back, each checked against the
// block above it.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "bft/pbft/certificate.h"
#include "bft/pbft/messages.h"
#include "ledger/audit.h"
#include "tests/unit/ledger/ledger_test_util.h"

namespace tally::ledger::testing {
namespace {

constexpr size_t kReplicas = 4;
constexpr size_t kQuorum = 3;  // 2f+1 at f = 1

crypto::KeyPair replica_key(size_t i) { return key(static_cast<uint8_t>(200 + i)); }

std::vector<crypto::PublicKey> replica_keys() {
    std::vector<crypto::PublicKey> keys;
    for (size_t i = 0; i < kReplicas; ++i) keys.push_back(replica_key(i).public_key());
    return keys;
}

// The commit certificate of `requests` at (view, seq): the primary's pre-prepare and the
// commits of `committers`, each signed by `signers[i]` when given (a forger's key).
std::string certificate(uint64_t view, uint64_t seq, const std::vector<std::string>& requests,
                        std::vector<size_t> committers = {0, 1, 2},
                        std::optional<std::pair<size_t, crypto::KeyPair>> forged = std::nullopt) {
    const crypto::Hash digest = bft::pbft::batch_digest(requests);
    bft::pbft::pb::CommittedProof proof;
    proof.set_pre_prepare(bft::pbft::seal_pre_prepare(replica_key(view % kReplicas), view, seq, digest, requests));
    bft::pbft::pb::Vote vote;
    vote.set_view(view);
    vote.set_seq(seq);
    vote.set_digest(bft::pbft::hash_bytes(digest));
    for (size_t i : committers) {
        std::string commit = crypto::seal(replica_key(i), crypto::MessageType::kCommit, vote.SerializeAsString());
        if (forged && forged->first == i) {
            // Replica i's header, another key's signature.
            std::string other = crypto::seal(forged->second, crypto::MessageType::kCommit, vote.SerializeAsString());
            commit.replace(commit.size() - 64, 64, other.substr(other.size() - 64));
        }
        proof.add_commits(std::move(commit));
    }
    return proof.SerializeAsString();
}

AuditOptions audit_options(const Genesis& g) {
    AuditOptions options;
    options.genesis = g;
    options.checkpoint_interval = 4;
    options.check_certificate = [keys = replica_keys()](uint64_t seq, std::string_view bytes)
        -> Result<std::vector<std::string>> {
        auto batch = bft::pbft::check_commit_certificate(bytes, keys, kQuorum);
        if (!batch) return batch.error();
        if (batch->seq != seq) return make_error("bad_certificate", "it certifies seq " + std::to_string(batch->seq));
        return std::move(batch->requests);
    };
    return options;
}

void exec_sql(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK) << (error ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
}

// A ledger of `blocks` blocks of two transfers each (and an empty one at 3), every block
// with its certificate; the batches, by seq, in `batches`.
struct Chain {
    Genesis g = genesis(4, 1'000'000);
    std::vector<std::vector<std::string>> batches{{}};  // [0]: genesis
    std::vector<std::string> certificates{""};

    void build(State& ledger, uint64_t blocks) {
        uint64_t nonce = 0;
        for (uint64_t seq = 1; seq <= blocks; ++seq) {
            std::vector<std::string> txs;
            if (seq != 3) {
                ++nonce;
                txs.push_back(make_transfer(key(1), key(2).public_key(), seq, nonce));
                txs.push_back(make_transfer(key(3), key(4).public_key(), 2 * seq, nonce));
            }
            const uint64_t view = seq >= 6 ? 1 : 0;  // a view change on the way
            certificates.push_back(certificate(view, seq, txs));
            batches.push_back(txs);
            auto applied = ledger.apply_block(seq, view, txs, Verify::kCheck, certificates.back());
            ASSERT_TRUE(applied.ok()) << applied.error().message;
        }
    }
};

class AuditTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto ledger = State::open(path, chain.g);
        ASSERT_TRUE(ledger.ok()) << ledger.error().message;
        chain.build(**ledger, 10);
    }
    Result<AuditReport> audit() { return audit_ledger(path, audit_options(chain.g)); }
    void expect_failure(const std::string& needle) {
        auto report = audit();
        ASSERT_FALSE(report.ok()) << "the audit passed";
        EXPECT_EQ(report.error().code, "audit_failed");
        EXPECT_NE(report.error().message.find(needle), std::string::npos) << report.error().message;
    }

    TempDir dir;
    std::string path = dir.file("ledger.db");
    Chain chain;
};

TEST_F(AuditTest, AWholeChainOfCertifiedBlocksPasses) {
    auto report = audit();
    ASSERT_TRUE(report.ok()) << report.error().message;
    EXPECT_EQ(report->last_seq, 10u);
    EXPECT_EQ(report->blocks, 11u);
    EXPECT_EQ(report->certificates, 10u);
    EXPECT_EQ(report->transactions, 18u);
    EXPECT_EQ(report->checkpoints, 2u);  // 4 and 8
    EXPECT_EQ(report->histories, 10u);
    EXPECT_EQ(report->accounts, 4u);
    EXPECT_EQ(report->records, 18u);
}

TEST_F(AuditTest, AChangedRecordFailsTheAuditInTheLogAndInTheTable) {
    exec_sql(path, "UPDATE tx_log SET value = value + 1 WHERE seq = 2");
    expect_failure("transaction records");
    exec_sql(path, "UPDATE tx_log SET value = value - 1 WHERE seq = 2");
    ASSERT_TRUE(audit().ok());
    // The same record once the log has joined the table (as a merge leaves it).
    exec_sql(path,
             "INSERT INTO transactions(id, code, seq, value) SELECT id, code, seq, value FROM tx_log;"
             "DELETE FROM tx_log; UPDATE transactions SET code = code + 1 WHERE seq = 2");
    expect_failure("transaction records");
}

TEST_F(AuditTest, ABlockWhoseFieldsWereChangedFailsAtThatBlock) {
    exec_sql(path, "UPDATE blocks SET state_digest = zeroblob(32) WHERE height = 5");
    expect_failure("block 5: its fields do not hash to its stored hash");
}

TEST_F(AuditTest, ABrokenHashLinkFailsAtTheBlockThatDoesNotLink) {
    // Block 5 rewritten consistently with itself (another prev_hash, its hash recomputed): it
    // no longer links to block 4.
    auto ledger = State::open(path, chain.g);
    ASSERT_TRUE(ledger.ok());
    BlockHeader forged = *(*ledger)->block(5);
    ledger->reset();
    forged.prev_hash[0] ^= 1;
    exec_sql(path, "UPDATE blocks SET prev_hash = x'" + crypto::to_hex(forged.prev_hash) + "', hash = x'" +
                       crypto::to_hex(forged.hash()) + "' WHERE height = 5");
    expect_failure("block 5: the hash link is broken");
}

TEST_F(AuditTest, AStateDigestThatTheBatchesDoNotLeadToFailsAtItsBlock) {
    // The top block rewritten with another state digest, hash and all: no link above it to
    // break, but replaying the certified batches from genesis gives another state.
    auto ledger = State::open(path, chain.g);
    ASSERT_TRUE(ledger.ok());
    BlockHeader forged = *(*ledger)->block(10);
    ledger->reset();
    forged.state_digest[0] ^= 1;
    exec_sql(path, "UPDATE blocks SET state_digest = x'" + crypto::to_hex(forged.state_digest) +
                       "', hash = x'" + crypto::to_hex(forged.hash()) + "' WHERE height = 10");
    expect_failure("block 10: its state digest is wrong");
}

TEST_F(AuditTest, ACertificateWithTooFewCommitsFails) {
    const std::string two = certificate(0, 4, chain.batches[4], {0, 1});
    exec_sql(path, "UPDATE blocks SET certificate = x'" + crypto::to_hex(two) +
                       "' WHERE height = 4");
    expect_failure("block 4: its commit certificate is not valid: it holds 2 commits, not 3");
}

TEST_F(AuditTest, ACertificateWithAForgedCommitFailsNamingTheReplica) {
    const std::string forged = certificate(0, 2, chain.batches[2], {0, 1, 3}, std::make_pair(3, key(99)));
    exec_sql(path, "UPDATE blocks SET certificate = x'" + crypto::to_hex(forged) +
                       "' WHERE height = 2");
    expect_failure("block 2: its commit certificate is not valid: the commit of replica 3 does not verify");
}

// Its commits certify the batch; its pre-prepare is authenticated by its header (bft/pbft/
// messages.h), not by its envelope's signature, which nobody checks.
TEST_F(AuditTest, ACertificatesPrePrepareIsCheckedByItsHeaderNotItsEnvelopesSignature) {
    bft::pbft::pb::CommittedProof proof;
    ASSERT_TRUE(proof.ParseFromString(certificate(0, 3, chain.batches[3])));
    std::string pp = proof.pre_prepare();
    pp.back() = static_cast<char>(pp.back() ^ 1);
    proof.set_pre_prepare(pp);
    exec_sql(path, "UPDATE blocks SET certificate = x'" + crypto::to_hex(proof.SerializeAsString()) +
                       "' WHERE height = 3");
    auto report = audit();
    ASSERT_TRUE(report.ok()) << report.error().message;

    // The primary's envelope around a header that replica 1 signed.
    auto body = bft::pbft::read_pre_prepare(pp);
    ASSERT_TRUE(body.has_value());
    body->set_header(bft::pbft::header_of(bft::pbft::seal_pre_prepare(
        replica_key(1), 0, 3, bft::pbft::batch_digest(chain.batches[3]), {})));
    proof.set_pre_prepare(crypto::seal(replica_key(0), crypto::MessageType::kPrePrepare, body->SerializeAsString()));
    exec_sql(path, "UPDATE blocks SET certificate = x'" + crypto::to_hex(proof.SerializeAsString()) +
                       "' WHERE height = 3");
    expect_failure("block 3: its commit certificate is not valid: the pre-prepare's header does not verify");
}

TEST_F(AuditTest, ACertificateForAnotherBatchFailsOnTheTransactionRoot) {
    // A valid certificate, but of block 7's batch: the block's tx_root does not match it.
    const std::string other = certificate(1, 6, chain.batches[7]);
    exec_sql(path, "UPDATE blocks SET certificate = x'" + crypto::to_hex(other) +
                       "' WHERE height = 6");
    expect_failure("block 6: its transaction root is wrong");
}

TEST_F(AuditTest, ABlockWithoutItsCertificateFails) {
    exec_sql(path, "UPDATE blocks SET certificate = x'' WHERE height = 9");
    expect_failure("block 9 has no commit certificate");
}

TEST_F(AuditTest, AGapInTheChainFailsNamingTheMissingBlock) {
    exec_sql(path, "DELETE FROM blocks WHERE height IN (6, 7)");
    expect_failure("block 6 is missing: the chain has a gap from 6 to 7");
}

TEST_F(AuditTest, AnotherNetworksGenesisFailsAtBlockZero) {
    auto options = audit_options(genesis(3, 1'000'000));
    auto report = audit_ledger(path, options);
    ASSERT_FALSE(report.ok());
    EXPECT_NE(report.error().message.find("block 0 is not the genesis of network.json"), std::string::npos)
        << report.error().message;
}

TEST_F(AuditTest, ALedgerOfTheSchemaBeforeCertificatesIsRefusedWithWhatToDo) {
    exec_sql(path, "UPDATE meta SET value = 3 WHERE key = 'schema_version'");
    auto opened = State::open(path, chain.g);
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.error().code, "corrupt");
    EXPECT_NE(opened.error().message.find("schema version 3, made by an older tally, expected 4 (blocks "
                                          "now keep their commit certificates)"),
              std::string::npos)
        << opened.error().message;
    EXPECT_NE(opened.error().message.find("start it again"), std::string::npos) << opened.error().message;
    auto report = audit();
    ASSERT_FALSE(report.ok());
    EXPECT_EQ(report.error().code, "corrupt");
    EXPECT_NE(report.error().message.find("made by an older tally"), std::string::npos) << report.error().message;
}

// ---- backfill ----

// A second ledger that installs a snapshot of the first at seq 8 from its block 2: it holds
// blocks 0..2 and 8 (without 8's certificate), and adds 7..3 back from the top down.
class BackfillTest : public AuditTest {
  protected:
    void SetUp() override {
        AuditTest::SetUp();
        auto source = State::open(path, chain.g);
        ASSERT_TRUE(source.ok());
        // Source at seq 10; its snapshot point must be at 8: rebuild a source to 8.
        auto at8 = State::open(":memory:", chain.g);
        ASSERT_TRUE(at8.ok());
        for (uint64_t seq = 1; seq <= 8; ++seq)
            ASSERT_TRUE((*at8)->apply_block(seq, 0, chain.batches[seq], Verify::kCheck, chain.certificates[seq]).ok());
        auto target = State::open(target_path, chain.g);
        ASSERT_TRUE(target.ok());
        for (uint64_t seq = 1; seq <= 2; ++seq)
            ASSERT_TRUE((*target)->apply_block(seq, 0, chain.batches[seq], Verify::kCheck, chain.certificates[seq]).ok());
        const auto point = (*at8)->snapshot_point();
        ASSERT_TRUE(copy_snapshot(**at8, point, **target, point.last_block.hash(), 512).ok());
        source_ = std::move(*source);
        target_ = std::move(*target);
    }
    CertifiedBlock served(uint64_t height) { return *source_->certified_block(height); }
    Status add(const CertifiedBlock& block) {
        auto batch = audit_options(chain.g).check_certificate(block.header.height, block.certificate);
        if (!batch) return batch.error();
        return target_->add_missing_block(block.header, *batch, block.certificate);
    }

    std::string target_path = dir.file("target.db");
    std::unique_ptr<State> source_, target_;
};

TEST_F(BackfillTest, AfterASnapshotTheBlocksBelowItAreMissingAndTheAuditSaysSo) {
    EXPECT_EQ(target_->last_seq(), 8u);
    EXPECT_EQ(target_->backfill_height(), 8u);  // the snapshot's block, without its certificate
    auto report = audit_ledger(target_path, audit_options(chain.g));
    ASSERT_FALSE(report.ok());
    EXPECT_NE(report.error().message.find("block 3 is missing: the chain has a gap from 3 to 7"), std::string::npos)
        << report.error().message;
}

TEST_F(BackfillTest, BlocksAddedFromTheTopDownMakeTheChainWholeAndTheAuditPasses) {
    const auto accounts = digest_accounts(target_->accounts());
    const auto digest = target_->state_digest();
    for (uint64_t h = 8; h >= 3; --h) {
        ASSERT_EQ(target_->backfill_height(), h);
        auto added = add(served(h));
        ASSERT_TRUE(added.ok()) << h << ": " << added.error().message;
    }
    EXPECT_EQ(target_->backfill_height(), 0u);
    // The state the snapshot installed is untouched.
    EXPECT_EQ(digest_accounts(target_->accounts()), accounts);
    EXPECT_EQ(target_->state_digest(), digest);
    EXPECT_EQ(target_->last_seq(), 8u);
    auto report = audit_ledger(target_path, audit_options(chain.g));
    ASSERT_TRUE(report.ok()) << report.error().message;
    EXPECT_EQ(report->blocks, 9u);
    EXPECT_EQ(report->certificates, 8u);
    // A reopened ledger keeps them.
    target_.reset();
    auto reopened = State::open(target_path, chain.g);
    ASSERT_TRUE(reopened.ok()) << reopened.error().message;
    EXPECT_EQ((*reopened)->backfill_height(), 0u);
}

TEST_F(BackfillTest, AForgedOrUnneededBlockIsRefusedBeforeItsCertificateAndNothingIsKept) {
    ASSERT_TRUE(add(served(8)).ok());
    // Block 7 with another state digest: it does not hash to block 8's prev_hash.
    CertifiedBlock forged = served(7);
    forged.header.state_digest[0] ^= 1;
    EXPECT_EQ(target_->check_missing_block(forged.header).error().code, "digest_mismatch");
    EXPECT_EQ(add(forged).error().code, "digest_mismatch");
    // Block 7's header with block 6's (valid) certificate: the certificate is for seq 6.
    CertifiedBlock mixed = served(7);
    mixed.certificate = served(6).certificate;
    EXPECT_EQ(add(mixed).error().code, "bad_certificate");
    // Block 7's header with a valid certificate of another batch at seq 7: the root differs.
    CertifiedBlock other = served(7);
    other.certificate = certificate(1, 7, chain.batches[5]);
    EXPECT_EQ(add(other).error().code, "digest_mismatch");
    // Block 5, not adjacent to anything held: not needed yet; block 2, held whole: not needed.
    EXPECT_EQ(target_->check_missing_block(served(5).header).error().code, "not_needed");
    EXPECT_EQ(target_->check_missing_block(served(2).header).error().code, "not_needed");
    EXPECT_EQ(target_->backfill_height(), 7u);
    EXPECT_TRUE(add(served(7)).ok());
    EXPECT_EQ(target_->backfill_height(), 6u);
}

}  // namespace
}  // namespace tally::ledger::testing
