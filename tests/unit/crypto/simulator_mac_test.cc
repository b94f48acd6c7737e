// The simulator's MAC signatures (crypto/keys.h, simulator_only): off by default; when on,
// what one key signs verifies under that key only, an Ed25519 signature does not verify, and
// envelopes open as before. Switched off again, Ed25519 is back.
#include <gtest/gtest.h>

#include "crypto/envelope.h"
#include "crypto/keys.h"

namespace tally::crypto {
namespace {

Seed seed_of(uint8_t b) {
    Seed s{};
    s.fill(b);
    return s;
}

struct MacOn {
    MacOn() { simulator_only::use_mac_signatures(true); }
    ~MacOn() { simulator_only::use_mac_signatures(false); }
};

TEST(SimulatorMac, IsOffByDefault) { EXPECT_FALSE(simulator_only::mac_signatures()); }

TEST(SimulatorMac, VerifiesUnderTheSignersKeyOnlyAndNeverAsEd25519) {
    KeyPair a = KeyPair::from_seed(seed_of(1));
    KeyPair b = KeyPair::from_seed(seed_of(2));
    Signature ed = a.sign("tally/test", "message");
    {
        MacOn on;
        Signature mac = a.sign("tally/test", "message");
        EXPECT_NE(mac, ed);
        EXPECT_TRUE(verify(a.public_key(), "tally/test", "message", mac));
        EXPECT_FALSE(verify(b.public_key(), "tally/test", "message", mac));
        EXPECT_FALSE(verify(a.public_key(), "tally/other", "message", mac));
        EXPECT_FALSE(verify(a.public_key(), "tally/test", "messagf", mac));
        EXPECT_FALSE(verify(a.public_key(), "tally/test", "message", ed));
        std::string env = seal(a, MessageType::kPrepare, "body");
        ASSERT_TRUE(open(env).ok());
        env.back() = static_cast<char>(env.back() ^ 1);
        EXPECT_EQ(open(env).error().code, "bad_signature");
        ed = a.sign("tally/test", "message");  // still MAC while on
        EXPECT_EQ(ed, mac);
    }
    EXPECT_FALSE(verify(a.public_key(), "tally/test", "message", ed));
    EXPECT_TRUE(verify(a.public_key(), "tally/test", "message", a.sign("tally/test", "message")));
}

}  // namespace
}  // namespace tally::crypto
