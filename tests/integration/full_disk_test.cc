// A full disk (issue 15, item 4): one replica's data folder on a small tmpfs of its own, which
// fills while the network commits. The replica must stop with a clear message (never a crash,
// never a silent reset), the other three go on, and once space returns it restarts, catches up
// and holds every acknowledged transfer, its chain whole.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "ledger/state.h"
#include "tests/integration/live_network.h"

namespace tally::integration {
namespace {

namespace fs = std::filesystem;

// A tmpfs of `size` at a fresh folder, unmounted (and removed) on destruction. Mounting needs
// root (CAP_SYS_ADMIN); `error` says why when it could not.
class SmallDisk {
public:
    explicit SmallDisk(const std::string& size) {
        char pattern[] = "/tmp/tally-disk-XXXXXX";
        if (::mkdtemp(pattern) == nullptr) {
            error_ = std::string("mkdtemp: ") + std::strerror(errno);
            return;
        }
        path_ = pattern;
        if (::mount("tmpfs", path_.c_str(), "tmpfs", 0, ("size=" + size + ",mode=0700").c_str()) != 0) {
            error_ = "cannot mount a tmpfs at " + path_ + ": " + std::strerror(errno);
            return;
        }
        mounted_ = true;
    }
    ~SmallDisk() {
        if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
        if (!path_.empty()) fs::remove_all(path_);
    }
    bool ok() const { return mounted_; }
    const std::string& error() const { return error_; }
    const std::string& path() const { return path_; }
    bool resize(const std::string& size) {
        return ::mount("tmpfs", path_.c_str(), "tmpfs", MS_REMOUNT, ("size=" + size + ",mode=0700").c_str()) == 0;
    }

private:
    std::string path_;
    std::string error_;
    bool mounted_ = false;
};

TEST(FullDisk, AReplicaWhoseDiskFillsStopsWithAClearMessageAndWhenSpaceReturnsCatchesUpLosingNothing) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs (run as root, as CI does)";
    SmallDisk disk("1536k");
    if (!disk.ok()) GTEST_SKIP() << disk.error() << " (a container without CAP_SYS_ADMIN?)";
    const std::string data = disk.path() + "/replica-3";
    LiveNetwork net(client::NetUpOptions{}, [&](node::api::NetworkConfig& c) {
        c.replicas[3].data_dir = data;  // a fresh folder: replica 3 starts from genesis there
        c.consensus.checkpoint_interval = 16;
        c.consensus.watermark_window = 64;
    });
    ASSERT_TRUE(net.ok());
    const auto alice = net.account("alice");
    const auto bob = net.account("bob").public_key();
    auto pid = client::replica_pid(net.dir(), 3);
    ASSERT_TRUE(pid.has_value());

    std::vector<client::Operation> acknowledged;
    {
        Load load(net.config(), alice, bob);
        // The disk fills: replica 3 stops by itself, saying why.
        int status = 0;
        pid_t waited = 0;
        const auto until = Clock::now() + 180s;
        while ((waited = ::waitpid(*pid, &status, WNOHANG)) == 0 && Clock::now() < until)
            std::this_thread::sleep_for(100ms);  // polling interval, not synchronisation
        ASSERT_EQ(waited, *pid) << "replica 3 did not stop on a full disk; its disk: " << data;
        EXPECT_TRUE(WIFEXITED(status)) << "it should exit, not die of a signal (status " << status << ")";
        if (WIFEXITED(status)) {
            EXPECT_NE(WEXITSTATUS(status), 0);
        }
        const auto said = wait_for_log_line(net, 3, std::regex(".*(disk is full|No space left on device).*"), 1s);
        ASSERT_FALSE(said.empty()) << "replica 3's log does not say the disk is full";
        std::cout << "[ stopped  ] replica 3: " << said[0] << "\n";
        // The other three go on without it.
        EXPECT_TRUE(load.wait_more(30, 60s)) << "the network stopped with one replica's disk full";
        load.stop();
        for (const auto& op : load.history())
            if (op.is_transfer && op.returned && op.result == ledger::ResultCode::kOk) acknowledged.push_back(op);
    }
    ASSERT_FALSE(acknowledged.empty());

    // Space returns; the replica starts again on what it kept and catches up.
    ASSERT_TRUE(disk.resize("256m")) << std::strerror(errno);
    net.start(3);
    {
        Load load(net.config(), net.account("carol"), net.account("dave").public_key());
        EXPECT_TRUE(load.wait_more(20, 60s)) << "the network did not commit after replica 3 came back";
    }
    std::string last;
    EXPECT_TRUE(net.converged({0, 1, 2, 3}, 90s, &last)) << "executed/digest per replica: " << last;
    expect_audit_passes(net, 3);

    // Every acknowledged transfer is in replica 3's ledger, once.
    std::ostringstream down;
    ASSERT_TRUE(client::net_down(net.dir(), down).ok()) << down.str();
    uint64_t last_seq = 0;
    const long missing =
        missing_acknowledged(data + "/ledger.db", net.config().genesis, alice, bob, acknowledged, &last_seq);
    EXPECT_EQ(missing, 0) << "replica 3 lacks " << missing << " of " << acknowledged.size()
                          << " acknowledged transfers (ledger at seq " << last_seq << ")";
}

}  // namespace
}  // namespace tally::integration
