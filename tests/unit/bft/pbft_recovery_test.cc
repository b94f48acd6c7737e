// Recovery after a lost consensus store (`tallyd --recover`, pbft::Config::recovering): the
// replica may have voted in any view up to the network's, so it sends no pre-prepare, prepare
// or NEW-VIEW until it sees a batch commit in its view from 2f+1 commits; then it is silent
// through that view (the view record synced) and votes from the next, as after a restart.
#include <gtest/gtest.h>

#include <map>

#include "tests/unit/bft/pbft_harness.h"

namespace tally::bft::pbft::testing {
namespace {

using crypto::MessageType;

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
