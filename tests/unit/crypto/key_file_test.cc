// Key files: the round trip, the 0600 mode, and one distinct error for each kind of bad file,
// always naming the file and never quoting the seed.
#include "crypto/key_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "crypto/hash.h"

namespace tally::crypto {
namespace {

class KeyFileTest : public ::testing::Test {
protected:
    void SetUp() override {
        const char* tmp = std::getenv("TMPDIR");
        std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                           "/tally-keyfile-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
        Seed seed{};
        for (size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<uint8_t>(0xa0 + i);
        seed_hex_ = to_hex(seed);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::string path(const std::string& name) const { return dir_ + "/" + name; }
    KeyPair key() const { return KeyPair::from_seed(*array_from_hex<32>(seed_hex_)); }

    static std::string slurp(const std::string& p) {
        std::ifstream in(p, std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
    // Writes raw content with mode 0600, as a hand-made or damaged key file.
    static void put(const std::string& p, const std::string& content) {
        std::filesystem::remove(p);
        {
            std::ofstream out(p, std::ios::binary);
            out << content;
        }
        ASSERT_EQ(::chmod(p.c_str(), 0600), 0);
    }
    // The file must fail with `code`, name the file and never contain the seed.
    void expect_error(const std::string& p, const std::string& code) {
        auto r = read_key_file(p);
        ASSERT_FALSE(r.ok()) << "expected " << code;
        EXPECT_EQ(r.error().code, code) << r.error().message;
        EXPECT_NE(r.error().message.find(p), std::string::npos) << r.error().message;
        EXPECT_EQ(r.error().message.find(seed_hex_), std::string::npos) << r.error().message;
        EXPECT_EQ(r.error().message.find(seed_hex_.substr(0, 16)), std::string::npos)
            << r.error().message;
    }

    std::string valid_content() {
        std::string p = path("valid.key");
        if (!std::filesystem::exists(p)) {
            EXPECT_TRUE(write_key_file(p, key()).ok());
        }
        return slurp(p);
    }

    std::string dir_;
    std::string seed_hex_;
};

TEST_F(KeyFileTest, RoundTrip) {
    std::string p = path("a.key");
    KeyPair k = key();
    ASSERT_TRUE(write_key_file(p, k).ok());
    auto back = read_key_file(p);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back->public_key(), k.public_key());
    EXPECT_EQ(back->seed(), k.seed());
}

TEST_F(KeyFileTest, GeneratedKeyRoundTrips) {
    std::string p = path("g.key");
    KeyPair k = KeyPair::generate();
    ASSERT_TRUE(write_key_file(p, k).ok());
    auto back = read_key_file(p);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back->public_key(), k.public_key());
}

TEST_F(KeyFileTest, FormatIsThreeReadableLines) {
    std::string content = valid_content();
    EXPECT_EQ(content, "tally-ed25519-v1\npublic " + key_to_hex(key().public_key()) + "\nseed " +
                           seed_hex_ + "\n");
}

TEST_F(KeyFileTest, ModeIs0600AfterWrite) {
    std::string p = path("m.key");
    mode_t old = ::umask(0);  // even a permissive umask must not widen the mode
    Status s = write_key_file(p, key());
    ::umask(old);
    ASSERT_TRUE(s.ok());
    struct stat st {};
    ASSERT_EQ(::stat(p.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(KeyFileTest, OverwriteIsRefused) {
    std::string p = path("o.key");
    ASSERT_TRUE(write_key_file(p, key()).ok());
    std::string before = slurp(p);
    KeyPair other = KeyPair::generate();
    Status s = write_key_file(p, other);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, "exists");
    EXPECT_NE(s.error().message.find(p), std::string::npos);
    EXPECT_EQ(slurp(p), before);
}

TEST_F(KeyFileTest, WriteIntoMissingDirectoryIsIo) {
    std::string p = path("no/such/dir.key");
    Status s = write_key_file(p, key());
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, "io");
    EXPECT_NE(s.error().message.find(p), std::string::npos);
}

TEST_F(KeyFileTest, MissingFileIsNotFound) { expect_error(path("missing.key"), "not_found"); }

TEST_F(KeyFileTest, EveryStrictPrefixIsTruncated) {
    std::string content = valid_content();
    std::string p = path("t.key");
    for (size_t n = 0; n < content.size(); ++n) {
        SCOPED_TRACE("prefix length " + std::to_string(n));
        put(p, content.substr(0, n));
        expect_error(p, "truncated");
    }
}

TEST_F(KeyFileTest, NonHexSeedIsCorrupt) {
    std::string content = valid_content();
    std::string p = path("c.key");
    size_t at = content.find("seed ") + 5 + 10;
    content[at] = 'g';
    put(p, content);
    expect_error(p, "corrupt");
}

TEST_F(KeyFileTest, OtherDamageIsCorrupt) {
    std::string content = valid_content();
    std::string p = path("c.key");
    auto check = [&](std::string bad, const char* what) {
        SCOPED_TRACE(what);
        put(p, bad);
        expect_error(p, "corrupt");
    };
    std::string s = content;
    s[3] = 'X';
    check(s, "header");
    s = content;
    s[content.find("public ") + 7] = 'z';
    check(s, "public hex");
    s = content;
    s[content.find("public")] = 'P';
    check(s, "public label");
    check(content + "extra\n", "trailing line");
    check(content + "\n", "trailing newline");
    s = content;
    s.insert(content.find("\nseed"), "\r");
    check(s, "CRLF");
    check("not a key file at all, but long enough to be read as such, yes indeed", "garbage");
}

TEST_F(KeyFileTest, SeedNotDerivingThePublicKeyIsMismatch) {
    std::string content = valid_content();
    std::string p = path("x.key");
    std::string mine = key_to_hex(key().public_key());
    std::string other = key_to_hex(KeyPair::generate().public_key());
    content.replace(content.find(mine), mine.size(), other);
    put(p, content);
    expect_error(p, "mismatch");
}

// Found by fuzzing (tests/fuzz/fuzz_key_file.cc): the mismatch error quoted the public line,
// and a file whose public line holds the seed (a slip of the hand, a swapped line) had its seed
// printed. The error names the key the seed derives, never what the public line says.
TEST_F(KeyFileTest, MismatchNeverQuotesThePublicLineWhichMayHoldTheSeed) {
    std::string content = valid_content();
    std::string p = path("seed-twice.key");
    std::string mine = key_to_hex(key().public_key());
    content.replace(content.find(mine), mine.size(), seed_hex_);
    put(p, content);
    expect_error(p, "mismatch");
}

TEST_F(KeyFileTest, GroupOrWorldReadableIsRefusedWithChmodAdvice) {
    std::string p = path("p.key");
    ASSERT_TRUE(write_key_file(p, key()).ok());
    for (mode_t mode : {0644, 0640, 0604, 0660, 0620, 0601}) {
        SCOPED_TRACE(mode);
        ASSERT_EQ(::chmod(p.c_str(), mode), 0);
        expect_error(p, "permissions");
        EXPECT_NE(read_key_file(p).error().message.find("chmod 600"), std::string::npos);
    }
    ASSERT_EQ(::chmod(p.c_str(), 0400), 0);
    EXPECT_TRUE(read_key_file(p).ok());
}

TEST_F(KeyFileTest, DirectoryIsIo) { expect_error(dir_, "io"); }

TEST_F(KeyFileTest, FifoIsIoWithoutBlocking) {
    std::string p = path("fifo.key");
    ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0);
    expect_error(p, "io");
}

TEST_F(KeyFileTest, UpperCaseHexIsAccepted) {
    std::string content = valid_content();
    std::string p = path("u.key");
    for (size_t start : {content.find("public ") + 7, content.find("seed ") + 5})
        for (size_t i = start; i < start + 64; ++i)
            if (content[i] >= 'a' && content[i] <= 'f') content[i] = static_cast<char>(content[i] - 32);
    put(p, content);
    auto back = read_key_file(p);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back->public_key(), key().public_key());
}

}  // namespace
}  // namespace tally::crypto
