// The local network launcher's refusals and its pid-file safety, without starting replicas:
// `net up` refuses what it cannot do before it writes anything, and a pid file that points at
// some other process never gets that process signalled.
#include "client/net.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "crypto/keys.h"
#include "node/api/network_config.h"

extern char** environ;

namespace tally::client {
namespace {
namespace fs = std::filesystem;

class NetTest : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/tally-net-test-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        scratch_ = pattern;
        dir_ = scratch_ + "/net";
    }
    void TearDown() override {
        if (write_end_ >= 0) ::close(write_end_);  // the look-alikes' reads end
        for (pid_t pid : look_alikes_) {
            if (pid <= 0 || ::waitpid(pid, nullptr, WNOHANG) != 0) continue;  // reaped already
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        if (stranger_ > 0) {
            ::kill(stranger_, SIGKILL);
            ::waitpid(stranger_, nullptr, 0);
        }
        fs::remove_all(scratch_);
    }

    // A network.json as `net up` would write it, without starting anything.
    void write_network() {
        node::api::NetworkConfig config;
        config.f = 1;
        config.dir = dir_;
        for (uint32_t i = 0; i < 4; ++i) {
            node::api::ReplicaConfig r;
            r.id = i;
            r.port = static_cast<uint16_t>(20000 + i);
            r.public_key = crypto::KeyPair::generate().public_key();
            r.key_file = dir_ + "/keys/replica-" + std::to_string(i) + ".key";
            r.data_dir = dir_ + "/data/" + std::to_string(i);
            config.replicas.push_back(r);
        }
        fs::create_directories(dir_ + "/run");
        ASSERT_TRUE(node::api::save_network_config(config, dir_ + "/network.json").ok());
    }

    NetUpOptions up_options() const {
        NetUpOptions options;
        options.dir = dir_;
        options.tallyd = "/bin/true";  // never reached in these tests
        return options;
    }

    std::string scratch_;
    std::string dir_;
    pid_t stranger_ = -1;
    std::vector<pid_t> look_alikes_;  // spawn_look_alike's, killed if still alive
    int write_end_ = -1;
};

TEST_F(NetTest, UpRefusesAFolderThatHoldsSomethingElse) {
    fs::create_directories(dir_);
    std::ofstream(dir_ + "/precious.txt") << "mine";
    std::ostringstream out, progress;
    auto s = net_up(up_options(), out, progress);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, "exists");
    EXPECT_TRUE(fs::exists(dir_ + "/precious.txt"));
    EXPECT_FALSE(fs::exists(dir_ + "/network.json"));
}

TEST_F(NetTest, UpRefusesNodeCountsThatDoNotFitTheProtocolBeforeWritingAnything) {
    for (uint32_t nodes : {3u, 5u, 6u, 65u}) {
        auto options = up_options();
        options.nodes = nodes;
        std::ostringstream out, progress;
        auto s = net_up(options, out, progress);
        ASSERT_FALSE(s.ok()) << nodes;
        EXPECT_EQ(s.error().code, "usage") << nodes;
        EXPECT_NE(s.error().message.find("3f+1"), std::string::npos) << s.error().message;
    }
    auto raft = up_options();
    raft.protocol = "raft";
    raft.nodes = 65;  // Raft takes any n from 1 to 64 (f = floor((n-1)/2))
    std::ostringstream out, progress;
    auto s = net_up(raft, out, progress);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, "usage");
    EXPECT_NE(s.error().message.find("2f+1"), std::string::npos);
    EXPECT_FALSE(fs::exists(dir_));
}

TEST_F(NetTest, UpRefusesATraitorRaftCannotPlayBeforeWritingAnything) {
    auto options = up_options();
    options.protocol = "raft";
    options.traitors = {"1:silent,lying-view-change"};
    std::ostringstream out, progress;
    auto s = net_up(options, out, progress);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, "usage");
    EXPECT_NE(s.error().message.find("Raft has no 'lying-view-change' traitor"), std::string::npos)
        << s.error().message;
    EXPECT_NE(s.error().message.find("silent, equivocate, bad-signature"), std::string::npos) << s.error().message;
    EXPECT_FALSE(fs::exists(dir_));
}

TEST_F(NetTest, UpWithoutTheReplicaProgramSaysWhereItLooked) {
    auto options = up_options();
    options.tallyd = scratch_ + "/no-such-tallyd";
    std::ostringstream out, progress;
    auto s = net_up(options, out, progress);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, "spawn");
    EXPECT_NE(s.error().message.find(options.tallyd), std::string::npos);
    EXPECT_FALSE(fs::exists(dir_));
}

TEST_F(NetTest, CommandsOnAFolderWithoutANetworkSayHowToStartOne) {
    std::ostringstream out;
    auto s = net_down(dir_, out);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, "not_found");
    EXPECT_NE(s.error().message.find("tally net up"), std::string::npos);
}

TEST_F(NetTest, AStalePidFileNeverGetsAStrangerSignalled) {
    write_network();
    // A process that is not our tallyd, whose pid a stale pid file happens to name.
    std::string sleep_path = "/bin/sleep";
    std::string seconds = "30";
    char* argv[] = {sleep_path.data(), seconds.data(), nullptr};
    ASSERT_EQ(::posix_spawn(&stranger_, argv[0], nullptr, nullptr, argv, environ), 0);
    std::ofstream(dir_ + "/run/replica-0.pid") << stranger_ << "\n";
    std::ofstream(dir_ + "/run/replica-1.pid") << "not a pid\n";

    EXPECT_FALSE(replica_pid(dir_, 0).has_value());
    EXPECT_FALSE(replica_pid(dir_, 1).has_value());
    std::ostringstream out;
    ASSERT_TRUE(net_kill(dir_, 0, out).ok());
    EXPECT_NE(out.str().find("not running"), std::string::npos) << out.str();
    ASSERT_TRUE(net_down(dir_, out).ok());
    EXPECT_NE(out.str().find("no replicas are running"), std::string::npos) << out.str();

    // The stranger is untouched: still running.
    int status = 0;
    EXPECT_EQ(::waitpid(stranger_, &status, WNOHANG), 0);
    EXPECT_EQ(::kill(stranger_, 0), 0);
    // And the stale pid files are gone.
    EXPECT_FALSE(fs::exists(dir_ + "/run/replica-0.pid"));
}

// A process that looks like replica `id` of the network whose network.json is `config` (argv[0]
// `name`, --config and --id), but is a shell blocked reading a pipe the test holds: it
// lives until signalled and leaves no child behind.
pid_t spawn_look_alike(const std::string& config, uint32_t id, int stdin_fd, std::string name = "tallyd") {
    std::vector<std::string> args = {std::move(name), "-c", "read line", "sh", "--config", config,
                                     "--id", std::to_string(id)};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, "/bin/sh", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    return rc == 0 ? pid : -1;
}

// True once `condition` holds, false if it does not within 10 s (asked every 5 ms).
template <typename Condition>
bool eventually(Condition condition) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        if (condition()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
}

// True once `pid` (a child of this test) has exited: a process that was sent SIGKILL loses its
// command line (net kill's sign that it is gone) a moment before waitpid can see it exit.
bool exits(pid_t pid) {
    return eventually([&] { return ::waitpid(pid, nullptr, WNOHANG) != 0; });  // reaped now, or by net's code
}

// Its command line is set once exec is done: until then it would not be recognised.
bool wait_recognised(const std::string& dir, uint32_t id) {
    return eventually([&] { return replica_pid(dir, id).has_value(); });
}

// A replica that no pid file names (its file lost, or overwritten by a stranger's pid, or a
// tallyd started by hand) is still this network's: kill finds it, and down stops it; a
// tallyd of another network is left alone.
TEST_F(NetTest, ReplicasNoPidFileNamesAreFoundAndStoppedOthersAreNot) {
    write_network();
    int pipe_fds[2];  // close-on-exec: only the test holds the write end
    ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
    const pid_t ours_2 = spawn_look_alike(dir_ + "/network.json", 2, pipe_fds[0]);
    const pid_t ours_3 = spawn_look_alike(dir_ + "/network.json", 3, pipe_fds[0]);
    stranger_ = spawn_look_alike(scratch_ + "/other/network.json", 2, pipe_fds[0]);
    look_alikes_ = {ours_2, ours_3};
    ::close(pipe_fds[0]);
    write_end_ = pipe_fds[1];
    ASSERT_GT(ours_2, 0);
    ASSERT_GT(ours_3, 0);
    ASSERT_GT(stranger_, 0);
    ASSERT_TRUE(wait_recognised(dir_, 2));
    ASSERT_TRUE(wait_recognised(dir_, 3));
    EXPECT_EQ(replica_pid(dir_, 2), ours_2);
    EXPECT_FALSE(replica_pid(dir_, 0).has_value());
    std::ofstream(dir_ + "/run/replica-3.pid") << stranger_ << "\n";  // overwritten
    EXPECT_EQ(replica_pid(dir_, 3), ours_3);

    std::ostringstream out;
    ASSERT_TRUE(net_kill(dir_, 2, out).ok());
    EXPECT_NE(out.str().find("killed replica 2 (pid " + std::to_string(ours_2) + ")"), std::string::npos)
        << out.str();
    EXPECT_TRUE(exits(ours_2));

    out.str("");
    ASSERT_TRUE(net_down(dir_, out, std::chrono::milliseconds{5'000}).ok());
    EXPECT_NE(out.str().find("replica 3 runs as pid " + std::to_string(ours_3) + ", which no pid file names"),
              std::string::npos)
        << out.str();
    EXPECT_NE(out.str().find("stopped 1 replica(s)"), std::string::npos) << out.str();
    EXPECT_EQ(out.str().find("killed after"), std::string::npos) << out.str();  // SIGTERM sufficed
    EXPECT_TRUE(exits(ours_3));

    // The other network's replica 2 runs on, and the pid file that named it is gone unsignalled.
    int status = 0;
    EXPECT_EQ(::waitpid(stranger_, &status, WNOHANG), 0);
    EXPECT_EQ(::kill(stranger_, 0), 0);
    EXPECT_FALSE(fs::exists(dir_ + "/run/replica-3.pid"));
}

// A replica run under another name (a wrapper that execs a renamed copy of tallyd) is not
// signalled, since only processes named tallyd are, but when its pid file names it, kill and
// down say that it is left running rather than passing over it in silence, and down keeps
// its pid file.
TEST_F(NetTest, StartUpAndDownSayWhenAPidFileNamesThisNetworksReplicaUnderAnotherName) {
    write_network();
    int pipe_fds[2];
    ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
    const pid_t renamed = spawn_look_alike(dir_ + "/network.json", 1, pipe_fds[0], "tallyd-trial");
    look_alikes_ = {renamed};
    ::close(pipe_fds[0]);
    write_end_ = pipe_fds[1];
    ASSERT_GT(renamed, 0);
    std::ofstream(dir_ + "/run/replica-1.pid") << renamed << "\n";
    // Its command line is in place once exec is done.
    ASSERT_TRUE(eventually([&] {
        std::ifstream cmdline("/proc/" + std::to_string(renamed) + "/cmdline");
        std::string first;
        return std::getline(cmdline, first, '\0') && first == "tallyd-trial";
    }));
    EXPECT_FALSE(replica_pid(dir_, 1).has_value());

    // Nothing starts beside it: a second replica 1 would only meet its store's lock.
    std::ostringstream started, progress;
    ASSERT_TRUE(net_start(dir_, 1, started, progress, std::chrono::milliseconds{1'000}, "/bin/true").ok());
    EXPECT_EQ(started.str(), "replica 1 is already running (pid " + std::to_string(renamed) +
                                 ", as tallyd-trial, not tallyd)\n");
    auto up = net_up(up_options(), started, progress);
    ASSERT_FALSE(up.ok());
    EXPECT_EQ(up.error().code, "running");
    EXPECT_NE(up.error().message.find("(replicas 1 (pid " + std::to_string(renamed) + ", as tallyd-trial, not tallyd))"),
              std::string::npos)
        << up.error().message;

    const std::string note = "replica 1's pid file names pid " + std::to_string(renamed) +
                             ", which runs with this network's --config and --id 1 as tallyd-trial, "
                             "not tallyd: left running";
    std::ostringstream out;
    ASSERT_TRUE(net_kill(dir_, 1, out).ok());
    EXPECT_NE(out.str().find(note), std::string::npos) << out.str();
    out.str("");
    ASSERT_TRUE(net_down(dir_, out).ok());
    EXPECT_NE(out.str().find(note), std::string::npos) << out.str();
    EXPECT_NE(out.str().find("no tallyd replicas are running in " + dir_ + " (1 left running under another name)"),
              std::string::npos)
        << out.str();
    EXPECT_EQ(::waitpid(renamed, nullptr, WNOHANG), 0);
    EXPECT_EQ(::kill(renamed, 0), 0);
    EXPECT_TRUE(fs::exists(dir_ + "/run/replica-1.pid")) << "the pid file of a replica left running was removed";
}

TEST_F(NetTest, KillAndStartCheckTheReplicaId) {
    write_network();
    std::ostringstream out, progress;
    auto kill = net_kill(dir_, 4, out);
    ASSERT_FALSE(kill.ok());
    EXPECT_EQ(kill.error().code, "usage");
    auto start = net_start(dir_, 9, out, progress);
    ASSERT_FALSE(start.ok());
    EXPECT_EQ(start.error().code, "usage");
}

// A replica down for a restart leaves its port unbound; another network being made meanwhile
// must not be handed it. Its ports stay leased to the folder that holds its network.json.
TEST_F(NetTest, PortsStayLeasedToTheirNetworkWhileItsFolderExists) {
    fs::create_directories(dir_);
    // Seven ports to draw from: six leased, so the seventh is the only one left to give.
    const auto anywhere = free_ports(1);
    ASSERT_TRUE(anywhere.ok()) << anywhere.error().message;
    const uint16_t low = std::min<uint16_t>((*anywhere)[0], 32000);
    const PortRange seven{low, static_cast<uint16_t>(low + 6)};
    const auto leased = free_ports(6, dir_, seven);
    ASSERT_TRUE(leased.ok()) << leased.error().message;
    for (uint16_t port : *leased) EXPECT_TRUE(port_leased(port)) << port;

    // Every one of them is free to bind now, yet none is handed out again while the folder
    // exists: 64 draws from seven ports find the one not leased (or fall back to the kernel's
    // choice, outside them), never a leased one.
    for (int round = 0; round < 20; ++round) {
        const auto other = free_ports(1, {}, seven);
        ASSERT_TRUE(other.ok()) << other.error().message;
        EXPECT_EQ(std::count(leased->begin(), leased->end(), (*other)[0]), 0)
            << (*other)[0] << " was handed out twice";
    }

    // A new network in the same folder drops the leases of the one before it there.
    const auto again = free_ports(1, dir_, seven);
    ASSERT_TRUE(again.ok()) << again.error().message;
    size_t still = 0;
    for (uint16_t port : *leased) still += port_leased(port) && port != (*again)[0];
    EXPECT_EQ(still, 0u) << "an earlier network's leases in the same folder";

    fs::remove_all(dir_);
    for (uint16_t port : *again) EXPECT_FALSE(port_leased(port)) << port;
}

}  // namespace
}  // namespace tally::client
