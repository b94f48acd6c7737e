// Traitors in a real network: `tally net up --traitor 0:<behaviour>` makes the first primary a
// traitor. Under load the honest replicas keep committing (after a view change where the
// behaviour makes the primary useless), their digests match, they detect and count what the
// traitor does, `net status` marks it, and every balance is what the accepted transfers imply.
#include <gtest/gtest.h>

#include <string>

#include "tests/integration/live_network.h"

namespace tally::integration {
namespace {

struct Case {
    std::string behaviour;
    uint32_t traitor;
    bool view_change;           // the honest replicas must leave view 0
    std::string detected_kind;  // what the honest replicas must have counted ("" = nothing visible)
};

class TraitorNetwork : public ::testing::TestWithParam<Case> {};

TEST_P(TraitorNetwork, HonestReplicasKeepCommittingAgreeAndDetectTheTraitor) {
    const Case& c = GetParam();
    client::NetUpOptions options;
    options.traitors = {std::to_string(c.traitor) + ":" + c.behaviour};
    LiveNetwork net(options, [](node::api::NetworkConfig& config) {
        config.consensus.view_change_timeout_ticks = 50;  // 0.5 s: a short test
    });
    ASSERT_TRUE(net.ok());
    std::vector<uint32_t> honest;
    for (uint32_t id = 0; id < net.config().n(); ++id)
        if (id != c.traitor) honest.push_back(id);

    uint64_t moved = 0;
    client::ReplyCounters replies;
    {
        Load alice(net.config(), net.account("alice"), net.account("bob").public_key());
        Load carol(net.config(), net.account("carol"), net.account("bob").public_key());
        ASSERT_TRUE(alice.wait_more(40, 90s)) << "the honest replicas stopped committing";
        alice.stop();
        carol.stop();
        moved = alice.amount_moved() + carol.amount_moved();
        replies = alice.reply_counters();
        replies += carol.reply_counters();
        // What the clients accepted, traitor or not, has one order that explains it all.
        expect_linearizable(net.config(), {&alice, &carol});
    }
    std::string last;
    EXPECT_TRUE(net.converged(honest, 60s, &last)) << "honest executed/digest: " << last;

    auto status = net.status();
    ASSERT_EQ(status.size(), net.config().n());
    ASSERT_TRUE(status[c.traitor].up);
    ASSERT_EQ(status[c.traitor].reply.traitor_size(), 1) << "net status must mark the traitor";
    EXPECT_EQ(status[c.traitor].reply.traitor(0), c.behaviour);
    if (c.view_change) {
        for (uint32_t id : honest) EXPECT_GE(status[id].reply.view(), 1u) << "replica " << id;
    }
    if (!c.detected_kind.empty()) {
        uint64_t count = 0;
        for (uint32_t id : honest)
            for (const auto& d : status[id].reply.detected())
                if (d.kind() == c.detected_kind) count += d.count();
        EXPECT_GT(count, 0u) << "no honest replica detected " << c.detected_kind;
    }

    if (c.behaviour == "wrong-reply") {
        // The traitor signs its lies correctly (batched under a root it signed): the clients
        // refuse them because no quorum agrees, not for their signatures.
        EXPECT_GT(replies.mismatch, 0u) << "the clients never saw a lie";
        EXPECT_EQ(replies.bad_signature, 0u);
    }

    // Clients only ever accepted correct results: bob holds exactly what alice's accepted
    // transfers sent him, read through consensus.
    client::Client reader;
    ASSERT_TRUE(reader.connect(net.config()));
    auto bob = reader.balance(net.account("bob").public_key());
    ASSERT_TRUE(bob.ok());
    EXPECT_EQ(bob->balance, client::kGenesisAccountBalance + moved);
}

INSTANTIATE_TEST_SUITE_P(
    Behaviours, TraitorNetwork,
    ::testing::Values(Case{"equivocate", 0, true, "equivocation"},
                      Case{"bad-signature", 0, true, ""},  // counted as rejected envelopes
                      Case{"wrong-digest", 0, true, "bad_digest"},
                      Case{"wrong-reply", 0, false, ""},    // clients refuse the lies; see counters
                      Case{"silent", 0, true, ""},
                      Case{"forge-client", 0, true, "forged_request"},
                      Case{"lying-checkpoint", 2, false, ""}),
    [](const auto& info) {
        std::string name = info.param.behaviour;
        for (char& ch : name)
            if (ch == '-') ch = '_';
        return name;
    });

}  // namespace
}  // namespace tally::integration
