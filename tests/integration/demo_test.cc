// `tally demo traitor` with real processes: one equivocating traitor in a PBFT network and in a
// Raft network; PBFT's honest replicas end in one state and detect it, Raft's part.
#include <gtest/gtest.h>

#include "tests/integration/live_network.h"

namespace tally::integration {
namespace {

TEST(Demo, AnEquivocatorLeavesPbftsHonestReplicasInOneStateAndSplitsRafts) {
    auto run = run_command(bin_dir() + "/tally demo traitor equivocate --transfers 4", 120);
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("PBFT: the honest replicas hold one state"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("detected: equivocation"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("Raft: the honest replicas hold 2 different states at one height"), std::string::npos)
        << run.output;
    EXPECT_NE(run.output.find("transfer  4   PBFT: ok"), std::string::npos) << run.output;
    // A behaviour Raft cannot play is refused before anything starts.
    run = run_command(bin_dir() + "/tally demo traitor lying-view-change");
    EXPECT_EQ(run.exit_code, 2) << run.output;
    EXPECT_NE(run.output.find("Raft has no 'lying-view-change' traitor"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace tally::integration
