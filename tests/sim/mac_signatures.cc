// Every simulation in test_sim signs with the simulator-only MAC (crypto/keys.h,
// simulator_only::use_mac_signatures) instead of Ed25519: the same checks, several times more
// schedules per second. The real Ed25519 path keeps its own tests (test_crypto, test_node,
// test_integration). TALLY_SIM_ED25519=1 runs the simulations with Ed25519 instead (a seed's
// run differs between the two: batch digests cover the signatures).
#include <gtest/gtest.h>

#include <cstdlib>

#include "crypto/keys.h"

namespace tally::sim {
namespace {

class MacSignatures : public ::testing::Environment {
  public:
    void SetUp() override {
        crypto::simulator_only::use_mac_signatures(std::getenv("TALLY_SIM_ED25519") == nullptr);
    }
    void TearDown() override { crypto::simulator_only::use_mac_signatures(false); }
};

[[maybe_unused]] ::testing::Environment* const kMacSignatures =
    ::testing::AddGlobalTestEnvironment(new MacSignatures);

}  // namespace
}  // namespace tally::sim
