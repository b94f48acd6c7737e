// The steps a PBFT engine reports for people (bft/engine.h, Step; `tally explain`): each phase
// of a sequence number once, with the replicas whose messages made it, and view changes.
#include <gtest/gtest.h>

#include "tests/unit/bft/pbft_harness.h"

namespace tally::bft::pbft::testing {
namespace {

using crypto::MessageType;

std::vector<Step> steps_of(const Output& out, const std::string& phase) {
    std::vector<Step> found;
    for (const auto& s : out.steps)
        if (s.phase == phase) found.push_back(s);
    return found;
}

TEST(PbftSteps, ABackupReportsPrePreparePreparedAndCommittedWithTheVotesThatCounted) {
    Harness h(1);
    const std::vector<std::string> batch = {h.request()};
    const crypto::Hash digest = batch_digest(batch);
    Output out = h.deliver(h.pre_prepare(0, 0, 1, batch));
    auto pre = steps_of(out, "pre-prepare");
    ASSERT_EQ(pre.size(), 1u);
    EXPECT_EQ(pre[0].seq, 1u);
    EXPECT_EQ(pre[0].view, 0u);
    EXPECT_EQ(pre[0].votes, std::vector<ReplicaId>{0});
    EXPECT_TRUE(steps_of(out, "prepared").empty()) << "prepared on its own prepare alone";

    // Replica 3's prepare makes 2f with its own: prepared, by the primary and backups 1 and 3.
    out = h.deliver(h.vote(MessageType::kPrepare, 3, 0, 1, digest));
    auto prepared = steps_of(out, "prepared");
    ASSERT_EQ(prepared.size(), 1u);
    EXPECT_EQ(prepared[0].votes, (std::vector<ReplicaId>{0, 1, 3}));
    // More prepares do not make it prepared again.
    out = h.deliver(h.vote(MessageType::kPrepare, 2, 0, 1, digest));
    EXPECT_TRUE(steps_of(out, "prepared").empty());

    out = h.deliver(h.vote(MessageType::kCommit, 0, 0, 1, digest));
    EXPECT_TRUE(steps_of(out, "committed").empty()) << "committed on two commits of 2f+1";
    out = h.deliver(h.vote(MessageType::kCommit, 2, 0, 1, digest));
    auto committed = steps_of(out, "committed");
    ASSERT_EQ(committed.size(), 1u);
    EXPECT_EQ(committed[0].seq, 1u);
    EXPECT_EQ(committed[0].votes, (std::vector<ReplicaId>{0, 1, 2}));
    ASSERT_EQ(out.commit.size(), 1u) << "the steps travel with the batch they describe";
}

TEST(PbftSteps, AViewChangeIsReportedWithTheViewItAsksFor) {
    Harness h(1);
    Output out;
    (void)h.engine->on_client_request(ClientRequest{RequestInfo{h.client.public_key(), 1}, h.request()});
    for (int i = 0; i < 40 && steps_of(out, "view-change").empty(); ++i) out = h.engine->on_tick();
    auto vc = steps_of(out, "view-change");
    ASSERT_EQ(vc.size(), 1u) << "no view change after the timeout with a request waiting";
    EXPECT_EQ(vc[0].seq, 0u);
    EXPECT_EQ(vc[0].view, 1u);
}

}  // namespace
}  // namespace tally::bft::pbft::testing
