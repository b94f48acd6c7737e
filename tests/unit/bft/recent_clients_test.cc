// RecentClients (bft/recent_clients.h): who a leader with nothing in flight waits for. Its count
// of prompt clients must follow each client in and out of promptness, and out of memory.
#include "bft/recent_clients.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace tally::bft {
namespace {

crypto::PublicKey client(uint8_t i) {
    crypto::PublicKey k{};
    k[0] = i;
    return k;
}

// Whether one more request is worth waiting for with none queued yet (the oldest "now"): true
// exactly when some recent client is prompt.
bool waits_for_someone(const RecentClients& recent, uint64_t now) { return recent.worth_waiting(0, now, now); }

TEST(RecentClients, AClientIsWaitedForOnlyWhileItsLatestRequestFollowedTheOneBeforePromptly) {
    RecentClients recent(8);
    recent.heard(client(1), 0);
    EXPECT_FALSE(waits_for_someone(recent, 0)) << "heard once is not prompt";
    recent.heard(client(1), RecentClients::kPromptTicks);
    EXPECT_TRUE(waits_for_someone(recent, 4)) << "a second request within kPromptTicks is prompt";
    EXPECT_TRUE(recent.worth_waiting(0, 4, 5)) << "the oldest may wait one whole tick";
    EXPECT_FALSE(recent.worth_waiting(0, 4, 6)) << "and no more";
    EXPECT_FALSE(recent.worth_waiting(1, 4, 4)) << "one client prompt, one request queued: enough";

    // Back after 6 ticks: still recent (kQuietTicks), no longer prompt.
    const uint64_t late = 4 + RecentClients::kPromptTicks + 2;
    recent.heard(client(1), late);
    EXPECT_FALSE(waits_for_someone(recent, late)) << "a slow return still counted as prompt";
    recent.heard(client(1), late + 1);
    EXPECT_TRUE(waits_for_someone(recent, late + 1));

    // Two prompt clients; client 1 goes quiet and is forgotten, client 2 stays prompt.
    recent.heard(client(2), late + 1);
    recent.heard(client(2), late + 2);
    EXPECT_TRUE(recent.worth_waiting(1, late + 2, late + 2)) << "two prompt, one queued";
    const uint64_t forgotten = late + 1 + RecentClients::kQuietTicks + 1;  // client 1's last + 11
    recent.heard(client(2), forgotten - 2);
    recent.heard(client(2), forgotten - 1);
    recent.forget_quiet(forgotten);
    EXPECT_FALSE(recent.worth_waiting(1, forgotten, forgotten)) << "client 1 was forgotten but still counted";
    EXPECT_TRUE(waits_for_someone(recent, forgotten)) << "client 2 is still prompt";
    const uint64_t all_quiet = forgotten - 1 + RecentClients::kQuietTicks + 1;
    recent.forget_quiet(all_quiet);
    EXPECT_FALSE(waits_for_someone(recent, all_quiet)) << "nobody is left";
}

TEST(RecentClients, RemembersAtMostItsCapAndNeverWaitsForOneItDidNotKeep) {
    RecentClients recent(2);
    for (uint64_t t = 0; t < 3; ++t)
        for (uint8_t c = 1; c <= 3; ++c) recent.heard(client(c), t);
    EXPECT_TRUE(recent.worth_waiting(1, 2, 2));
    EXPECT_FALSE(recent.worth_waiting(2, 2, 2)) << "a third client beyond the cap was counted";
}

}  // namespace
}  // namespace tally::bft
