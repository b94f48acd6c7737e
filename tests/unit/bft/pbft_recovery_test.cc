// Recovery after a lost consensus store (`tallyd --recover`, pbft::Config::recovering): the
// replica may have voted in any view up to the network's, so it sends no pre-prepare, prepare
// or NEW-VIEW until it sees a batch commit in its view from 2f+1 commits; then it is silent
// through that view (the view record synced) and votes from the next, as after a restart.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "bft/pbft/engine.h"
#include "tests/unit/bft/pbft_harness.h"

namespace tally::bft::pbft::testing {
namespace {

using crypto::MessageType;

// Found by fuzzing (tests/fuzz/fuzz_store.cc): a replica whose consensus store was set aside
// (--recover) beside a ledger more than 2L blocks on restored the decided slots of its last L
// blocks from the ledger's certificates, at seqs beyond h + 2L (h = 0: no stable record), which
// the log never holds (PbftEngine::check_invariants aborted). It restores only within (h, h + 2L].
TEST(PbftRecovery, ALedgerFurtherThanTwoLAheadOfTheStableCheckpointRestoresNoSlotBeyondIt) {
    Harness h(1);  // L = 8, K = 4
    h.config.recovering = true;
    std::map<uint64_t, std::string> certificates;
    for (uint64_t seq = 1; seq <= 26; ++seq) {
        std::vector<std::string> batch{h.request()};
        pb::CommittedProof proof;
        proof.set_pre_prepare(h.pre_prepare(0, 0, seq, batch));
        for (ReplicaId i = 0; i < 3; ++i)
            proof.add_commits(h.vote(MessageType::kCommit, i, 0, seq, batch_digest(batch)));
        certificates[seq] = proof.SerializeAsString();
    }
    const auto certificate_of = [&](uint64_t seq) { return certificates.at(seq); };
    for (uint64_t executed : {12u, 26u}) {
        h.engine = make_engine(h.config, h.keys[h.id], h.auth);
        Output out = h.engine->on_start({}, executed, crypto::sha256("state"), certificate_of);
        auto* replica = dynamic_cast<PbftEngine*>(h.engine.get());
        ASSERT_NE(replica, nullptr);
        replica->check_invariants();  // aborted at executed = 26 before the fix
        EXPECT_EQ(h.engine->status().last_executed, executed);
        EXPECT_TRUE(out.commit.empty()) << "nothing executes again";
    }
}

// Found by fuzzing (tests/fuzz/fuzz_store.cc): a stored stable checkpoint whose proof does not
// verify is ignored (h = 0), and the slots stored above it (25, 26, within the record's 24 +
// 2L) came back beyond h + 2L = 16. They are not loaded, and the damage is reported.
TEST(PbftRecovery, SlotsBeyondTwoLAboveAStableCheckpointThatDoesNotVerifyAreNotLoaded) {
    Harness h(1);  // L = 8
    pb::StableCheckpoint stable;  // seq 24, no proof
    stable.set_seq(24);
    stable.set_state_digest(hash_bytes(crypto::sha256("state")));
    std::vector<std::pair<std::string, std::string>> records;
    for (uint64_t seq : {25u, 26u}) {
        pb::PreparedProof proof;
        proof.set_pre_prepare(h.pre_prepare(0, 0, seq, {h.request()}));
        records.emplace_back(slot_key(seq, 0, kSlotAccepted), proof.SerializeAsString());
    }
    records.emplace_back(std::string(kKeyStable), stable.SerializeAsString());
    records.emplace_back(std::string(kKeyView), be64(0));
    std::sort(records.begin(), records.end());
    h.engine = make_engine(h.config, h.keys[h.id], h.auth);
    h.engine->on_start(records, 24, crypto::sha256("state"), {});
    auto* replica = dynamic_cast<PbftEngine*>(h.engine.get());
    ASSERT_NE(replica, nullptr);
    replica->check_invariants();  // aborted before the fix: slot 25 > h + 2L
    EXPECT_EQ(h.engine->status().low_water_mark, 0u);
    EXPECT_TRUE(h.detected(Misbehaviour::kBadRecord));
}

TEST(PbftRecovery, ARecoveringBackupSendsNoPrepareUntilTwoFPlusOneCommitInItsViewThenVotesOnlyFromTheNextView) {
    Harness h(1);
    h.config.recovering = true;
    h.restart({});  // an empty store (set aside by --recover) beside the ledger
    EXPECT_TRUE(h.engine->status().recovering);
    std::map<std::string, std::string> store;

    std::vector<std::string> batch{h.request()};
    const crypto::Hash d = batch_digest(batch);
    Output out = h.deliver(h.pre_prepare(0, 0, 1, batch));
    EXPECT_TRUE(sent(out, MessageType::kPrepare).empty()) << "it may have prepared another digest here";
    keep(out, store);
    // It still prepares from its peers' votes, and commits: that never contradicts it.
    keep(h.deliver(h.vote(MessageType::kPrepare, 2, 0, 1, d)), store);
    out = h.deliver(h.vote(MessageType::kPrepare, 3, 0, 1, d));
    EXPECT_EQ(sent(out, MessageType::kCommit).size(), 1u);
    keep(out, store);
    keep(h.deliver(h.vote(MessageType::kCommit, 0, 0, 1, d)), store);
    EXPECT_TRUE(h.engine->status().recovering);
    out = h.deliver(h.vote(MessageType::kCommit, 2, 0, 1, d));
    ASSERT_EQ(out.commit.size(), 1u);
    // The network is in view 0: recovery ends, silent through view 0, and says so durably.
    EXPECT_FALSE(h.engine->status().recovering);
    EXPECT_TRUE(out.sync);
    keep(out, store);
    ASSERT_TRUE(store.count(std::string(kKeyView)));
    EXPECT_TRUE(sent(h.deliver(h.pre_prepare(0, 0, 2, {h.request()})), MessageType::kPrepare).empty())
        << "still silent in the view it may have voted in";

    // A restart after recovery keeps the silence from the view record.
    h.config.recovering = false;
    h.restart({store.begin(), store.end()}, 1);
    EXPECT_FALSE(h.engine->status().recovering);
    EXPECT_TRUE(sent(h.deliver(h.pre_prepare(0, 0, 2, {h.request()})), MessageType::kPrepare).empty());
}

TEST(PbftRecovery, ARecoveringPrimaryProposesNothing) {
    Harness h(0);
    h.config.recovering = true;
    h.restart({});
    Output out = h.engine->on_client_request(ClientRequest{{}, h.request()});
    for (int i = 0; i < 5; ++i) out.append(h.engine->on_tick());
    EXPECT_TRUE(sent(out, MessageType::kPrePrepare).empty());
}

TEST(PbftRecovery, WithoutRecoveryAnEmptyStoreVotesAtOnce) {
    // What --recover guards against: a store that lost its records looks like a first start.
    Harness h(1);
    h.restart({});
    EXPECT_EQ(sent(h.deliver(h.pre_prepare(0, 0, 1, {h.request()})), MessageType::kPrepare).size(), 1u);
}

}  // namespace
}  // namespace tally::bft::pbft::testing
