// The local network launcher. See net.h.
#include "client/net.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "bft/behaviours.h"
#include "bft/quorum.h"
#include "client/client.h"
#include "crypto/key_file.h"
#include "crypto/keys.h"
#include "node/api/network_config.h"

namespace tally::client {
namespace fs = std::filesystem;
using std::chrono::milliseconds;

namespace {

constexpr milliseconds kPollInterval{50};
constexpr milliseconds kKillWait{5'000};

std::string config_path(const std::string& abs) { return abs + "/network.json"; }
std::string pid_path(const std::string& abs, uint32_t id) {
    return abs + "/run/replica-" + std::to_string(id) + ".pid";
}
std::string log_path(const std::string& abs, uint32_t id) {
    return abs + "/logs/replica-" + std::to_string(id) + ".out";
}

// How to name DIR in the commands we suggest: as the user wrote it, or nothing for the default.
std::string dir_flag(const std::string& dir) {
    if (dir == "tally-net" || dir == "./tally-net" || dir == "tally-net/") return "";
    return " --dir " + dir;
}

std::vector<std::string> read_cmdline(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::string> args;
    std::string current;
    for (char c : all) {
        if (c == '\0') {
            args.push_back(current);
            current.clear();
        } else {
            current.push_back(c);
        }
    }
    if (!current.empty()) args.push_back(current);
    return args;
}

// How our own children ended, by pid (only children started by this process are reaped).
std::map<pid_t, int>& exit_statuses() {
    static std::map<pid_t, int> statuses;
    return statuses;
}

// Reaps `pid` if it is our own exited child, keeping how it ended. Harmless for any other pid.
void reap(pid_t pid) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) exit_statuses()[pid] = status;
}

// True while our own child `pid` has not ended. Decided by waitpid, not by /proc/PID/cmdline:
// a child that has just passed exec has, for a moment, an empty command line (the kernel sets
// it after closing the close-on-exec pipe we wait on), and a slow start (a sanitizer build)
// made that moment long enough to report a healthy replica as having exited.
bool child_running(pid_t pid) {
    reap(pid);
    return exit_statuses().count(pid) == 0 && ::kill(pid, 0) == 0;
}

// "exited with status 1", "killed by signal 11 (Segmentation fault)", or "exited".
std::string how_it_ended(pid_t pid) {
    auto it = exit_statuses().find(pid);
    if (it == exit_statuses().end()) return "exited";
    const int status = it->second;
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
               ::strsignal(WTERMSIG(status)) + ")";
    return "exited";
}

// The replica id that `args`, the command line of process `pid`, name when they hold
// `--config <config> --id <id>`, whatever the program. A relative --config is the process's
// own, taken from its working folder.
std::optional<uint32_t> replica_id_in_args(pid_t pid, const std::vector<std::string>& args,
                                           const std::string& config) {
    bool config_ok = false;
    std::optional<uint32_t> id;
    for (size_t i = 0; i + 1 < args.size(); ++i) {
        const std::string& value = args[i + 1];
        if (args[i] == "--config") {
            std::error_code ec;
            fs::path path = value;
            if (path.is_relative()) path = fs::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec) / path;
            config_ok = !ec && fs::weakly_canonical(path, ec) == fs::weakly_canonical(config, ec) && !ec;
        }
        if (args[i] == "--id") {
            uint32_t parsed = 0;
            const auto [end, err] = std::from_chars(value.data(), value.data() + value.size(), parsed);
            if (err == std::errc{} && end == value.data() + value.size()) id = parsed;
        }
    }
    return config_ok ? id : std::nullopt;
}

// Whether the command line `args` (not empty) runs a program named tallyd.
bool runs_tallyd(const std::vector<std::string>& args) { return fs::path(args[0]).filename() == "tallyd"; }

// The replica id of `pid` when it is a live `tallyd --config <config> --id <id>`. Reaps
// nothing: a zombie's command line is empty, so it is never one (is_our_replica reaps our own
// children first).
std::optional<uint32_t> replica_id_of(pid_t pid, const std::string& config) {
    if (pid <= 1) return std::nullopt;
    const auto args = read_cmdline(pid);  // empty for a zombie or a dead pid
    if (args.empty() || !runs_tallyd(args)) return std::nullopt;
    return replica_id_in_args(pid, args, config);
}

// True when `pid` is a live `tallyd --config <config> --id <id>`.
bool is_our_replica(pid_t pid, const std::string& config, uint32_t id) {
    if (pid <= 1) return false;
    reap(pid);
    return replica_id_of(pid, config) == id;
}

// Every live replica of the network whose network.json is `config`, by pid, found among all
// processes: those their pid files name and those they do not (a pid file lost or
// overwritten, a tallyd started by hand, or by a wrapper that runs it as its child).
std::map<pid_t, uint32_t> replica_processes(const std::string& config) {
    std::map<pid_t, uint32_t> found;
    std::error_code ec;
    for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        pid_t pid = 0;
        const auto [last, err] = std::from_chars(name.data(), name.data() + name.size(), pid);
        if (err != std::errc{} || last != name.data() + name.size()) continue;
        if (auto id = replica_id_of(pid, config)) found[pid] = *id;
    }
    return found;
}

std::optional<pid_t> read_pid_file(const std::string& path) {
    std::ifstream in(path);
    long long value = 0;
    if (!(in >> value) || value <= 1 || value > 1 << 30) return std::nullopt;
    return static_cast<pid_t>(value);
}

// The pid replica `id`'s pid file in the network folder `abs` names, when it is that replica.
std::optional<pid_t> pid_file_replica(const std::string& abs, uint32_t id) {
    const auto pid = read_pid_file(pid_path(abs, id));
    if (!pid || !is_our_replica(*pid, config_path(abs), id)) return std::nullopt;
    return pid;
}

// Only processes named tallyd are ever signalled, so that a pid the kernel gave to another
// program since never is. A pid file may still name a live process that runs with this
// network's --config and the file's --id under another name (a wrapper that execs a renamed
// copy): one of this network's replicas all the same, which the commands leave running (and
// `net up` and `net start` do not start beside), and say so.
struct RenamedReplica {
    pid_t pid = 0;
    std::string name;  // its program, as printed: control characters escaped
    std::string what() const { return "pid " + std::to_string(pid) + ", as " + name + ", not tallyd"; }
};

// Replica `id`'s pid file names one of those.
std::optional<RenamedReplica> renamed_replica(const std::string& abs, uint32_t id) {
    const auto pid = read_pid_file(pid_path(abs, id));
    if (!pid) return std::nullopt;
    const auto args = read_cmdline(*pid);
    if (args.empty() || runs_tallyd(args) || replica_id_in_args(*pid, args, config_path(abs)) != id)
        return std::nullopt;
    RenamedReplica renamed{*pid, {}};
    for (unsigned char c : args[0]) renamed.name += std::isprint(c) ? std::string(1, static_cast<char>(c)) : "?";
    return renamed;
}

// What the stopping commands say of one.
std::string left_running_note(uint32_t id, const RenamedReplica& renamed) {
    return "replica " + std::to_string(id) + "'s pid file names pid " + std::to_string(renamed.pid) +
           ", which runs with this network's --config and --id " + std::to_string(id) + " as " +
           renamed.name + ", not tallyd: left running (only processes named tallyd are signalled); "
           "stop it yourself if it is this replica\n";
}

Status write_pid_file(const std::string& path, pid_t pid) {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << pid << "\n";
        if (!out) return make_error("io", "cannot write " + tmp);
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) return make_error("io", "cannot write " + path + ": " + ec.message());
    return Ok{};
}

// The first port of the kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range),
// from which it gives outgoing connections their local ports; 32768 when it cannot be read.
uint16_t ephemeral_low() {
    std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
    unsigned low = 0;
    if (!(in >> low) || low < 1024 || low > 65535) return 32768;
    return static_cast<uint16_t>(low);
}

// Where free_ports records which network folder each port it handed out belongs to: one file
// per port, named by it, holding the folder's path. A replica that restarts binds its port
// again, and in between the port is free for anyone's bind; the lease keeps another
// network's free_ports from giving it away meanwhile. The folder is this user's alone (0700):
// one that another user made, a symlink, or one others may write is not used (no leases are
// read or written, and free_ports works as without them), since its leases could be forged.
std::optional<std::string> port_lease_dir() {
    const std::string dir = "/tmp/tally-port-leases-" + std::to_string(::getuid());
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return std::nullopt;
    struct stat st{};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::getuid() ||
        (st.st_mode & 077) != 0) {
        static bool warned = false;
        if (!std::exchange(warned, true))
            std::cerr << "warning: " << dir << " is not a folder of this user's alone: ports are not leased\n";
        return std::nullopt;
    }
    return dir;
}

// The folder a lease file names, or "" when it names none.
std::string lease_holder(const std::string& lease) {
    std::ifstream in(lease);
    std::string holder;
    std::getline(in, holder);
    return holder;
}

// A port is leased while the folder its lease names exists: removing a network's folder frees
// its ports, and a lease nobody can read holds nothing.
bool leased_in(const std::optional<std::string>& leases, uint16_t port) {
    if (!leases) return false;
    const std::string holder = lease_holder(*leases + "/" + std::to_string(port));
    std::error_code ec;
    return !holder.empty() && fs::exists(holder, ec);
}

// Removes the leases that hold nothing any more: of folders that are gone, HOLDER's own from
// an earlier network in the same folder (a new network there gets all its ports at once), and
// files a process that died left half-written (PORT.tmp.PID).
void collect_leases(const std::string& leases, const std::string& holder) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(leases, ec)) {
        const std::string name = entry.path().filename().string();
        std::error_code gone;
        if (const size_t tmp = name.find(".tmp."); tmp != std::string::npos) {
            const long pid = std::strtol(name.c_str() + tmp + 5, nullptr, 10);
            if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) fs::remove(entry.path(), gone);
            continue;
        }
        const std::string owner = lease_holder(entry.path().string());
        if (owner.empty() || owner == holder || !fs::exists(owner, gone)) fs::remove(entry.path(), gone);
    }
}

// Records that PORT belongs to HOLDER (written aside and renamed, so a reader sees a whole
// lease or the old one). Best effort: without a lease the port is still free to use, only
// less protected while its replica restarts, so a failure is logged and not an error.
void lease_port(const std::string& leases, uint16_t port, const std::string& holder) {
    const std::string path = leases + "/" + std::to_string(port);
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    const std::string line = holder + "\n";
    bool written = fd >= 0 && ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    const int error = errno;
    if (fd >= 0 && ::close(fd) != 0) written = false;
    std::error_code ec;
    if (written) fs::rename(tmp, path, ec);
    if (!written || ec) {
        std::cerr << "warning: cannot write port lease " << path << ": "
                  << (ec ? ec.message() : std::string(std::strerror(error))) << "\n";
        if (fd >= 0) fs::remove(tmp, ec);
    }
}

}  // namespace

bool port_leased(uint16_t port) { return leased_in(port_lease_dir(), port); }

// Free TCP ports on 127.0.0.1 (net.h). They are drawn from below the ephemeral range: a port
// the kernel hands out for bind(0) lies inside it, where any process's next outgoing
// connection (a ZeroMQ peer's, another test's) may take it between now and the replica's bind
// ("Address already in use"). Below, only a listener could, and it would have to pick the
// same port: one whose replica is down for a restart, unless a lease (above) says it is taken.
// Port 0's answer is the fallback.
Result<std::vector<uint16_t>> free_ports(uint32_t count, const std::string& holder, PortRange range) {
    std::vector<int> fds;
    std::vector<uint16_t> ports;
    auto close_all = [&] {
        for (int fd : fds) ::close(fd);
    };
    const auto leases = port_lease_dir();
    if (leases && !holder.empty()) collect_leases(*leases, holder);
    if (range.lowest == 0) {
        range.lowest = 10'000;
        const uint16_t below = ephemeral_low();
        range.highest = below > range.lowest + 1 ? static_cast<uint16_t>(below - 1u) : range.lowest;
    }
    std::random_device entropy;  // which ports: any will do, nothing replays this
    std::uniform_int_distribution<uint32_t> pick(range.lowest, std::max(range.lowest, range.highest));
    // The bind is held until every port is picked, so no other free_ports can pick it meanwhile
    // (without SO_REUSEADDR, a second bind fails): the lease check below cannot race.
    auto try_bind = [&](uint16_t port) -> std::optional<uint16_t> {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) return std::nullopt;
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(port);
        socklen_t len = sizeof(addr);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            ::close(fd);
            return std::nullopt;
        }
        if (port != 0 && leased_in(leases, port)) {
            ::close(fd);
            return std::nullopt;
        }
        fds.push_back(fd);
        return ntohs(addr.sin_port);
    };
    for (uint32_t i = 0; i < count; ++i) {
        std::optional<uint16_t> port;
        for (int attempt = 0; attempt < 64 && !port && range.highest >= range.lowest; ++attempt)
            port = try_bind(static_cast<uint16_t>(pick(entropy)));
        if (!port) port = try_bind(0);
        if (!port) {
            close_all();
            return make_error("io", std::string("cannot find a free port: ") + std::strerror(errno));
        }
        ports.push_back(*port);
    }
    if (leases && !holder.empty())
        for (uint16_t port : ports) lease_port(*leases, port, holder);
    close_all();
    return ports;
}

namespace {

std::string tail_of_file(const std::string& path, size_t lines_max) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) {
        lines.push_back(line);
        if (lines.size() > lines_max) lines.erase(lines.begin());
    }
    std::string out;
    for (const auto& l : lines) out += "    " + l + "\n";
    return out;
}

// Starts `tallyd --config CONFIG --id ID` in its own session, output to its log file.
Result<pid_t> spawn_replica(const std::string& tallyd, const std::string& config, uint32_t id,
                            const std::string& log, bool recover = false) {
    if (::access(tallyd.c_str(), X_OK) != 0)
        return make_error("spawn", "cannot run the replica program " + tallyd +
                                       " (build it: cmake --build <build> --target tallyd)");
    const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) return make_error("io", "cannot open " + log + ": " + std::strerror(errno));
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0) {
        ::close(log_fd);
        return make_error("io", std::string("cannot open /dev/null: ") + std::strerror(errno));
    }
    // Everything the child needs is prepared before fork: after it, only async-signal-safe
    // calls (the launcher may be a multi-threaded test).
    const std::string id_text = std::to_string(id);
    std::vector<std::string> args = {tallyd, "--config", config, "--id", id_text};
    if (recover) args.push_back("--recover");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    // A close-on-exec pipe tells the parent when exec has happened (EOF) or failed (an errno),
    // so nobody ever looks at the child while it is still a copy of this program.
    int exec_pipe[2];
    if (::pipe2(exec_pipe, O_CLOEXEC) != 0) {
        ::close(log_fd);
        ::close(null_fd);
        return make_error("spawn", std::string("pipe: ") + std::strerror(errno));
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(log_fd);
        ::close(null_fd);
        ::close(exec_pipe[0]);
        ::close(exec_pipe[1]);
        return make_error("spawn", std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
        // The replica starts with no signal blocked: a launcher that blocks SIGTERM to wait for
        // it on one thread (`tally net web`) would otherwise pass that on through exec, and the
        // replica would ignore `net down`.
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::setsid();
        ::dup2(null_fd, 0);
        ::dup2(log_fd, 1);
        ::dup2(log_fd, 2);
        // Keep only the standard streams and the exec pipe's write end.
        ::close(exec_pipe[0]);
        const int report_fd = ::dup2(exec_pipe[1], 3) == 3 ? 3 : -1;
        if (report_fd == 3) ::fcntl(3, F_SETFD, FD_CLOEXEC);
        ::closefrom(4);
        ::execv(argv[0], argv.data());
        const int error = errno;
        if (report_fd == 3) (void)!::write(3, &error, sizeof(error));
        ::_exit(127);
    }
    ::close(exec_pipe[1]);
    exit_statuses().erase(pid);  // an earlier child's, whose pid this one reuses
    int child_errno = 0;
    ssize_t got = 0;
    do {
        got = ::read(exec_pipe[0], &child_errno, sizeof(child_errno));
    } while (got < 0 && errno == EINTR);
    ::close(exec_pipe[0]);
    if (got > 0) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        ::close(log_fd);
        ::close(null_fd);
        return make_error("spawn", "cannot run " + tallyd + ": " + std::strerror(child_errno));
    }
    ::close(log_fd);
    ::close(null_fd);
    return pid;
}

// Waits until every replica in `ids` answers a status request, or one of them exits, or the
// deadline passes. A progress line per change goes to `progress`.
Status wait_ready(const node::api::NetworkConfig& config, const std::string& abs,
                  const std::map<uint32_t, pid_t>& started, milliseconds timeout,
                  std::ostream& progress) {
    Client client;
    if (auto s = client.connect(config); !s) return s.error();
    const auto begin = Clock::now();
    const auto deadline = begin + timeout;
    int last_up = -1;
    while (true) {
        for (const auto& [id, pid] : started) {
            if (!child_running(pid)) {
                return make_error("spawn", "replica " + std::to_string(id) + " " +
                                               how_it_ended(pid) + " during startup; see " + abs +
                                               "/logs/. The end of " + log_path(abs, id) + ":\n" +
                                               tail_of_file(log_path(abs, id), 8));
            }
        }
        auto statuses = client.status(milliseconds{1'000});
        int up = 0;
        std::string silent;
        if (statuses) {
            for (const auto& [id, pid] : started) {
                if ((*statuses)[id].up) {
                    ++up;
                } else {
                    silent += (silent.empty() ? "" : ", ") + std::to_string(id);
                }
            }
        }
        const auto elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
        if (up != last_up) {
            char line[128];
            std::snprintf(line, sizeof(line), "waiting for replicas: %d/%zu answering (%.1f s)", up,
                          started.size(), elapsed);
            progress << line << std::endl;
            last_up = up;
        }
        if (static_cast<size_t>(up) == started.size()) return Ok{};
        if (Clock::now() >= deadline) {
            return make_error("timeout",
                              "replica(s) " + silent + " did not answer within " +
                                  std::to_string(timeout.count() / 1000) + " s; see " + abs +
                                  "/logs/ (they are still running: stop them with `tally net down`)");
        }
    }
}

Status make_private_dir(const std::string& path, fs::perms perms) {
    std::error_code ec;
    fs::create_directories(path, ec);
    if (ec) return make_error("io", "cannot create " + path + ": " + ec.message());
    fs::permissions(path, perms, ec);
    if (ec) return make_error("io", "cannot set permissions on " + path + ": " + ec.message());
    return Ok{};
}

// PBFT runs n = 3f+1 replicas (4, 7, 10, ...); Raft any n from 1 to 64, tolerating
// f = floor((n-1)/2) crashes (3 and 4 tolerate one): bft/quorum.h says.
Result<bft::Protocol> check_node_count(const std::string& name, uint32_t nodes) {
    const auto protocol = bft::protocol_from_name(name);
    if (!protocol) return make_error("usage", "unknown protocol '" + name + "' (pbft or raft)");
    if (*protocol == bft::Protocol::kRaft) {
        if (nodes < 1 || nodes > 64)
            return make_error("usage", "raft needs 1 to 64 replicas (3 = 2f+1 for f = 1), not " +
                                           std::to_string(nodes));
        return *protocol;
    }
    const uint32_t f = bft::Quorums::max_faults(*protocol, nodes);
    if (f < 1 || nodes > 64 || bft::Quorums(*protocol, f).n() != nodes) {
        std::string sizes;
        for (uint32_t k = 1; k <= 3; ++k)
            sizes += std::to_string(bft::Quorums(*protocol, k).n()) + ", ";
        return make_error("usage", name + " needs n = " +
                                       std::string(bft::Quorums::size_rule(*protocol)) +
                                       " replicas (" + sizes + "... up to 64), not " +
                                       std::to_string(nodes));
    }
    return *protocol;
}

// `--lease-reads` (net up, net init): refused under PBFT, which has no leader lease to read
// from, rather than ignored.
Status check_lease_reads(bool lease_reads, bft::Protocol protocol) {
    if (lease_reads && protocol != bft::Protocol::kRaft)
        return make_error("usage", "--lease-reads: only Raft has lease reads; run it with --consensus raft");
    return Ok{};
}

// Creates a new network folder. Returns the loaded (checked) config.
Result<node::api::NetworkConfig> create_network(const NetUpOptions& options, const std::string& abs) {
    auto protocol = check_node_count(options.protocol, options.nodes);
    if (!protocol) return protocol.error();
    const auto dirs_perms = fs::perms::owner_all;
    for (const auto& sub : {"keys", "accounts"}) {
        if (auto s = make_private_dir(abs + "/" + sub, dirs_perms); !s) return s.error();
    }
    for (const auto& sub : {"data", "logs", "run"}) {
        if (auto s = make_private_dir(abs + "/" + sub, fs::perms::owner_all | fs::perms::group_read |
                                                           fs::perms::group_exec | fs::perms::others_read |
                                                           fs::perms::others_exec);
            !s)
            return s.error();
    }

    node::api::NetworkConfig config;
    config.protocol = *protocol;
    config.f = bft::Quorums::max_faults(*protocol, options.nodes);
    config.dir = abs;
    config.consensus.lease_reads = options.lease_reads;
    // Each replica's, then each one's for clients, then each one's for its metrics.
    auto ports = free_ports(3 * options.nodes, abs);
    if (!ports) return ports.error();
    for (uint32_t i = 0; i < options.nodes; ++i) {
        const auto key = crypto::KeyPair::generate();
        node::api::ReplicaConfig replica;
        replica.id = i;
        replica.host = "127.0.0.1";
        replica.port = (*ports)[i];
        replica.client_port = (*ports)[options.nodes + i];
        replica.metrics_port = (*ports)[2 * options.nodes + i];
        replica.public_key = key.public_key();
        replica.key_file = abs + "/keys/replica-" + std::to_string(i) + ".key";
        replica.data_dir = abs + "/data/" + std::to_string(i);
        if (auto s = crypto::write_key_file(replica.key_file, key); !s) return s.error();
        if (auto s = make_private_dir(replica.data_dir, dirs_perms); !s) return s.error();
        config.replicas.push_back(replica);
    }
    // Traitors: "N:behaviour[,behaviour...]", recorded in network.json so a restart keeps them.
    for (const auto& spec : options.traitors) {
        const size_t colon = spec.find(':');
        uint32_t id = 0;
        const bool numeric = colon != std::string::npos && colon > 0 &&
                             spec.find_first_not_of("0123456789") == colon;
        if (numeric) id = static_cast<uint32_t>(std::stoul(spec.substr(0, colon)));
        if (!numeric || id >= options.nodes)
            return make_error("usage", "--traitor " + spec + ": expected NODE:BEHAVIOUR with NODE in 0.." +
                                           std::to_string(options.nodes - 1));
        auto behaviours = bft::parse_behaviours(spec.substr(colon + 1));
        if (!behaviours) return make_error("usage", "--traitor " + spec + ": " + behaviours.error().message);
        auto& traitor = config.replicas[id].traitor;
        traitor += (traitor.empty() ? "" : ",") + spec.substr(colon + 1);
    }
    auto add_account = [&](const std::string& name, uint64_t balance) -> Status {
        const auto key = crypto::KeyPair::generate();
        if (auto s = crypto::write_key_file(abs + "/accounts/" + name + ".key", key); !s)
            return s.error();
        config.genesis.accounts.push_back(ledger::Account{key.public_key(), balance, 0});
        return Ok{};
    };
    for (const auto& name : genesis_account_names()) {
        if (auto s = add_account(name, kGenesisAccountBalance); !s) return s.error();
    }
    if (auto s = add_account("faucet", kFaucetBalance); !s) return s.error();
    config.genesis.ballast = ledger::Ballast{options.ballast, 1};

    if (options.edit_config) options.edit_config(config);
    if (auto s = node::api::save_network_config(config, config_path(abs)); !s) return s.error();
    return node::api::load_network_config(config_path(abs));
}

void stop_started(const std::map<uint32_t, pid_t>& started, const std::string& abs) {
    for (const auto& [id, pid] : started) {
        if (is_our_replica(pid, config_path(abs), id)) ::kill(pid, SIGKILL);
        std::error_code ec;
        fs::remove(pid_path(abs, id), ec);
    }
}

// Waits until none of `pids` is still our replica, or the deadline. Returns those still alive.
// `pids` maps a process id to its replica id.
std::map<pid_t, uint32_t> wait_gone(std::map<pid_t, uint32_t> pids, const std::string& abs,
                                    milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (true) {
        for (auto it = pids.begin(); it != pids.end();) {
            if (is_our_replica(it->first, config_path(abs), it->second)) {
                ++it;
            } else {
                it = pids.erase(it);
            }
        }
        if (pids.empty() || Clock::now() >= deadline) return pids;
        std::this_thread::sleep_for(kPollInterval);
    }
}

Result<node::api::NetworkConfig> load_existing(const std::string& dir, const std::string& abs) {
    if (!fs::exists(config_path(abs)))
        return make_error("not_found", "no network in " + dir + " (no network.json); start one with "
                                       "`tally net up" + dir_flag(dir) + "`");
    return node::api::load_network_config(config_path(abs));
}

// A network made by `net init --hosts` runs one replica per host: its top folder (the
// operator's) holds no replica key, and a host's folder holds only its own. Starting a replica
// whose key file is not here would only make tallyd refuse; say why and what to do instead.
Status check_keys_here(const node::api::NetworkConfig& config, const std::string& dir,
                       const std::vector<uint32_t>& ids) {
    std::string missing;
    for (uint32_t id : ids) {
        std::error_code ec;
        if (!fs::exists(config.replicas[id].key_file, ec))
            missing += (missing.empty() ? "" : ", ") + std::to_string(id);
    }
    if (missing.empty()) return Ok{};
    return make_error("usage", "the key file of replica(s) " + missing + " is not in " + dir +
                                   ": a network made by `tally net init --hosts` runs one replica per "
                                   "host; on host I run `tallyd --config network.json --id I` in that "
                                   "host's folder (I-HOST), and use " + dir +
                                   " only as the client's --dir");
}

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Dotted-decimal IPv4 (four numbers 0..255, no leading zeros): its four bytes.
std::optional<std::array<uint32_t, 4>> parse_ipv4(const std::string& text) {
    std::array<uint32_t, 4> bytes{};
    size_t start = 0;
    for (size_t i = 0; i < 4; ++i) {
        const size_t dot = text.find('.', start);
        const size_t end = i < 3 ? dot : text.size();
        if (end == std::string::npos || (i == 3 && dot != std::string::npos)) return std::nullopt;
        const std::string part = text.substr(start, end - start);
        if (!all_digits(part) || part.size() > 3 || (part.size() > 1 && part[0] == '0')) return std::nullopt;
        bytes[i] = static_cast<uint32_t>(std::stoul(part));
        if (bytes[i] > 255) return std::nullopt;
        start = end + 1;
    }
    return bytes;
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

}  // namespace

bool is_loopback_host(const std::string& host) {
    if (const auto ip = parse_ipv4(host)) return (*ip)[0] == 127;
    const std::string name = lower(host);
    return name == "localhost" || name.ends_with(".localhost");
}

Status check_host(const std::string& host) {
    auto bad = [&](const std::string& why) { return make_error("usage", "--hosts: \"" + host + "\" " + why); };
    if (host.empty())
        return make_error("usage", "--hosts: an empty entry (two commas in a row, or one at either end)");
    if (host.size() > 253) return bad("is longer than a host name may be (253 characters)");
    if (host.find(':') != std::string::npos) {
        if (std::count(host.begin(), host.end(), ':') > 1 || host.front() == '[')
            return bad("is an IPv6 address: network.json's endpoints are tcp://HOST:PORT, which takes an "
                       "IPv4 address or a host name (give the host's name)");
        return bad("holds a port: every replica listens on the same ports, set with --port, "
                   "--client-port and --metrics-port");
    }
    if (host.find_first_not_of("0123456789.") == std::string::npos) {
        const auto ip = parse_ipv4(host);
        if (!ip) return bad("is not an IPv4 address (four numbers 0-255 separated by dots)");
        if ((*ip)[0] == 0) return bad("is the unspecified address: give the address the other hosts reach this one at");
        if (is_loopback_host(host)) return bad("is a loopback address, which no other host can reach");
        if ((*ip)[0] >= 224) return bad("is a multicast or reserved address, not a host's");
        return Ok{};
    }
    if (is_loopback_host(host)) return bad("is this machine's loopback name, which no other host can reach");
    const std::string name = lower(host);
    size_t start = 0;
    std::string last_label;
    while (true) {
        const size_t dot = name.find('.', start);
        const std::string label = name.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        if (label.empty()) return bad("has an empty label (two dots in a row, or a dot at either end)");
        if (label.size() > 63) return bad("has a label longer than 63 characters");
        if (label.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos)
            return bad("is neither an IPv4 address nor a host name (letters, digits, '-' and '.' only)");
        if (label.front() == '-' || label.back() == '-')
            return bad("has a label that starts or ends with '-'");
        last_label = label;
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
    if (all_digits(last_label)) return bad("is neither an IPv4 address nor a host name (it ends in a number)");
    return Ok{};
}

std::string host_folder_name(uint32_t index, const std::string& host) {
    return std::to_string(index) + "-" + host;
}

Status net_init(const NetInitOptions& options, std::ostream& out) {
    if (options.out.empty()) return make_error("usage", "--out: give the folder to write");
    if (options.hosts.empty())
        return make_error("usage", "--hosts: give one host per replica, comma-separated (H1,H2,H3,H4)");
    const auto n = static_cast<uint32_t>(options.hosts.size());
    std::map<std::string, size_t> seen;
    for (size_t i = 0; i < options.hosts.size(); ++i) {
        if (auto s = check_host(options.hosts[i]); !s) return s;
        if (auto [it, fresh] = seen.emplace(lower(options.hosts[i]), i); !fresh)
            return make_error("usage", "--hosts: \"" + options.hosts[i] + "\" is listed twice (entries " +
                                           std::to_string(it->second + 1) + " and " + std::to_string(i + 1) +
                                           "): each replica needs a host of its own, since every replica "
                                           "listens on the same ports");
    }
    auto protocol = check_node_count(options.protocol, n);
    if (!protocol)
        return make_error("usage", "--hosts lists " + std::to_string(n) + " host(s): " + protocol.error().message);
    const uint32_t f = bft::Quorums::max_faults(*protocol, n);
    if (f < 1)
        return make_error("usage", "--hosts lists " + std::to_string(n) + " host(s): " + options.protocol +
                                       " on " + std::to_string(n) + " replicas survives no failure; give at least " +
                                       std::to_string(bft::Quorums(*protocol, 1).n()));
    if (auto s = check_lease_reads(options.lease_reads, *protocol); !s) return s;
    if (options.port == 0 || options.client_port == 0)
        return make_error("usage", "--port and --client-port must be in 1..65535");
    if (options.port == options.client_port || options.port == options.metrics_port ||
        options.client_port == options.metrics_port)
        return make_error("usage", "--port " + std::to_string(options.port) + ", --client-port " +
                                       std::to_string(options.client_port) + " and --metrics-port " +
                                       std::to_string(options.metrics_port) + " must differ");

    const std::string abs = absolute_dir(options.out);
    std::error_code ec;
    if (fs::exists(abs, ec) && !(fs::is_directory(abs, ec) && fs::is_empty(abs, ec)))
        return make_error("exists", options.out + " exists and is not an empty folder; choose another --out");
    const auto open_dir = fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                          fs::perms::others_read | fs::perms::others_exec;
    if (auto s = make_private_dir(abs, open_dir); !s) return s;
    if (auto s = make_private_dir(abs + "/accounts", fs::perms::owner_all); !s) return s;

    node::api::NetworkConfig config;
    config.protocol = *protocol;
    config.f = f;
    config.dir = abs;
    config.consensus.lease_reads = options.lease_reads;
    for (uint32_t i = 0; i < n; ++i) {
        const std::string host_dir = abs + "/" + host_folder_name(i, options.hosts[i]);
        // The host's folder holds its replica's key: private, as DIR/keys is for `net up`.
        for (const auto& sub : {std::string(), std::string("/keys"), "/data/" + std::to_string(i)}) {
            if (auto s = make_private_dir(host_dir + sub, fs::perms::owner_all); !s) return s;
        }
        const auto key = crypto::KeyPair::generate();
        if (auto s = crypto::write_key_file(host_dir + "/keys/replica-" + std::to_string(i) + ".key", key); !s)
            return s.error();
        node::api::ReplicaConfig replica;
        replica.id = i;
        replica.host = options.hosts[i];
        replica.port = options.port;
        replica.client_port = options.client_port;
        replica.metrics_port = options.metrics_port;
        replica.public_key = key.public_key();
        // Relative to network.json's folder: valid in every host's folder (and only there is
        // replica i's own present).
        replica.key_file = abs + "/keys/replica-" + std::to_string(i) + ".key";
        replica.data_dir = abs + "/data/" + std::to_string(i);
        config.replicas.push_back(replica);
    }
    auto add_account = [&](const std::string& name, uint64_t balance) -> Status {
        const auto key = crypto::KeyPair::generate();
        if (auto s = crypto::write_key_file(abs + "/accounts/" + name + ".key", key); !s) return s.error();
        config.genesis.accounts.push_back(ledger::Account{key.public_key(), balance, 0});
        return Ok{};
    };
    for (const auto& name : genesis_account_names()) {
        if (auto s = add_account(name, kGenesisAccountBalance); !s) return s;
    }
    if (auto s = add_account("faucet", kFaucetBalance); !s) return s;
    if (auto s = node::api::save_network_config(config, config_path(abs)); !s) return s;
    // The same bytes in every host's folder; then each checked as its tallyd will read it.
    for (uint32_t i = 0; i < n; ++i) {
        const std::string host_dir = abs + "/" + host_folder_name(i, options.hosts[i]);
        fs::copy_file(config_path(abs), config_path(host_dir), fs::copy_options::overwrite_existing, ec);
        if (ec) return make_error("io", "cannot write " + config_path(host_dir) + ": " + ec.message());
        auto loaded = node::api::load_network_config(config_path(host_dir));
        if (!loaded) return loaded.error();
        auto key = crypto::read_key_file(loaded->replicas[i].key_file);
        if (!key) return key.error();
        if (key->public_key() != loaded->replicas[i].public_key)
            return make_error("io", loaded->replicas[i].key_file + " does not hold replica " + std::to_string(i) + "'s key");
    }

    out << "wrote a " << bft::protocol_name(*protocol) << " network of " << n << " replicas (f=" << f
        << ")" << (options.lease_reads ? " with lease reads" : "") << ", one per host, in " << options.out
        << ":\n";
    for (uint32_t i = 0; i < n; ++i) {
        const auto& r = config.replicas[i];
        out << "  replica " << i << " on " << r.host << ": peers " << r.endpoint() << ", clients "
            << r.client_endpoint();
        if (r.metrics_port != 0) out << ", metrics http://" << r.host << ":" << r.metrics_port << "/metrics";
        out << "\n    its folder: " << options.out << "/" << host_folder_name(i, r.host) << "\n";
    }
    const std::string first = host_folder_name(0, config.replicas[0].host);
    out << "next:\n"
        << "  1. copy each host's folder to it, e.g. scp -r " << options.out << "/" << first << " "
        << config.replicas[0].host << ":/var/lib/tally\n"
        << "  2. on host I, in its folder: tallyd --config network.json --id I\n"
        << "     (as a service: scripts/tallyd@.service, systemctl enable --now tallyd@I)\n"
        << "  3. let TCP port " << options.port << " in from the other replicas, " << options.client_port
        << " from clients" << (options.metrics_port != 0 ? ", " + std::to_string(options.metrics_port) + " from your metrics scraper" : "")
        << "\n"
        << "  4. from here: tally --dir " << options.out << " net status\n"
        << "                tally --dir " << options.out << " transfer --key alice --to bob --amount 10\n"
        << options.out << "/accounts holds the genesis accounts' keys (the faucet's holds "
        << kFaucetBalance << "): keep it off the replicas' hosts and private.\n";
    return Ok{};
}

const std::vector<std::string>& genesis_account_names() {
    static const std::vector<std::string> names = {"alice", "bob", "carol", "dave"};
    return names;
}

std::string absolute_dir(const std::string& dir) {
    std::string abs = fs::absolute(dir).lexically_normal().string();
    while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
    return abs;
}

std::string default_tallyd_path() {
    std::error_code ec;
    const auto self = fs::read_symlink("/proc/self/exe", ec);
    if (ec) return "tallyd";
    return (self.parent_path() / "tallyd").string();
}

std::optional<pid_t> replica_pid(const std::string& dir, uint32_t id) {
    const std::string abs = absolute_dir(dir);
    if (auto pid = pid_file_replica(abs, id)) return pid;
    for (const auto& [found, found_id] : replica_processes(config_path(abs)))
        if (found_id == id) return found;
    return std::nullopt;
}

Status net_up(const NetUpOptions& given, std::ostream& out, std::ostream& progress) {
    NetUpOptions options = given;
    if (options.nodes == 0) {  // the protocol's smallest network that survives one fault
        const auto protocol = bft::protocol_from_name(options.protocol);
        if (!protocol) return make_error("usage", "unknown protocol '" + options.protocol + "' (pbft or raft)");
        options.nodes = bft::Quorums(*protocol, 1).n();
    }
    const std::string abs = absolute_dir(options.dir);
    const std::string tallyd = options.tallyd.empty() ? default_tallyd_path() : options.tallyd;
    node::api::NetworkConfig config;
    bool fresh = false;
    if (fs::exists(config_path(abs))) {
        auto loaded = node::api::load_network_config(config_path(abs));
        if (!loaded) return loaded.error();
        config = std::move(*loaded);
        std::string running;
        for (uint32_t id = 0; id < config.n(); ++id) {
            if (replica_pid(abs, id)) {
                running += (running.empty() ? "" : ", ") + std::to_string(id);
            } else if (auto renamed = renamed_replica(abs, id)) {
                running += (running.empty() ? "" : ", ") + std::to_string(id) + " (" + renamed->what() + ")";
            }
        }
        if (!running.empty())
            return make_error("running", "a network is already running in " + options.dir +
                                             " (replicas " + running + "); stop it with `tally net down" +
                                             dir_flag(options.dir) + "`");
        std::vector<uint32_t> all(config.n());
        for (uint32_t id = 0; id < config.n(); ++id) all[id] = id;
        if (auto s = check_keys_here(config, options.dir, all); !s) return s;
        out << "restarting the network in " << options.dir << " (existing keys and data)\n";
    } else {
        std::error_code ec;
        auto protocol = check_node_count(options.protocol, options.nodes);
        if (!protocol) return protocol.error();
        if (auto s = check_lease_reads(options.lease_reads, *protocol); !s) return s;
        if (*protocol == bft::Protocol::kRaft) {
            // Raft plays a few behaviours (bft/raft/traitor.h); the rest are PBFT's. A malformed
            // spec is left to the full check below.
            for (const auto& spec : options.traitors) {
                const size_t colon = spec.find(':');
                if (colon == std::string::npos) continue;
                auto behaviours = bft::parse_behaviours(spec.substr(colon + 1));
                if (!behaviours) continue;
                for (const auto b : *behaviours)
                    if (!bft::raft_plays(b))
                        return make_error("usage", "--traitor " + spec + ": Raft has no '" +
                                                       std::string(bft::behaviour_name(b)) + "' traitor (" +
                                                       bft::raft_behaviour_names() +
                                                       " are Raft's); run it with --consensus pbft");
            }
        }
        if (fs::exists(abs, ec) && !fs::is_empty(abs, ec))
            return make_error("exists", options.dir + " exists and holds no network.json; choose "
                                                      "another --dir or remove it");
        if (::access(tallyd.c_str(), X_OK) != 0)
            return make_error("spawn", "cannot run the replica program " + tallyd +
                                           " (build it: cmake --build <build> --target tallyd)");
        auto created = create_network(options, abs);
        if (!created) return created.error();
        config = std::move(*created);
        fresh = true;
    }

    std::map<uint32_t, pid_t> started;
    for (uint32_t id = 0; id < config.n(); ++id) {
        auto pid = spawn_replica(tallyd, config_path(abs), id, log_path(abs, id));
        Status written = pid ? write_pid_file(pid_path(abs, id), *pid) : Status(pid.error());
        if (!pid || !written) {
            stop_started(started, abs);
            if (pid) ::kill(*pid, SIGKILL);
            return pid ? written.error() : pid.error();
        }
        started[id] = *pid;
    }
    progress << "started " << config.n() << " " << bft::protocol_name(config.protocol) << " replicas (f=" << config.f
             << ") in " << options.dir << std::endl;
    if (auto ready = wait_ready(config, abs, started, options.ready_timeout, progress); !ready) {
        if (ready.error().code != "spawn") return ready.error();
        stop_started(started, abs);
        Error error = ready.error();
        error.message += "(stopped the other replicas; `tally net up" + dir_flag(options.dir) +
                         "` starts this network again)";
        return error;
    }

    const std::string d = dir_flag(options.dir);
    out << "network up: " << config.n() << " " << bft::protocol_name(config.protocol) << " replicas (f=" << config.f
        << ") in " << options.dir << "\n";
    if (fresh) {
        out << "accounts (keys in " << options.dir << "/accounts): ";
        for (const auto& name : genesis_account_names()) out << name << " ";
        out << "with " << kGenesisAccountBalance << " each; faucet with " << kFaucetBalance << "\n";
    }
    out << "try:\n"
        << "  tally balance alice" << d << "\n"
        << "  tally transfer --key alice --to bob --amount 10" << d << "\n"
        << "  tally net status" << d << "\n"
        << "  tally net kill --node " << config.n() - 1 << d << "     (a crash: the network keeps going)\n"
        << "  tally bench --clients 16 --duration 10" << d << "\n"
        << "  tally net down" << d << "\n";
    return Ok{};
}

Status net_down(const std::string& dir, std::ostream& out, milliseconds grace) {
    const std::string abs = absolute_dir(dir);
    auto config = load_existing(dir, abs);
    if (!config) return config.error();
    // By pid: each replica its pid file names, then every other live process of this network
    // (a second tallyd for one id included), so that none outlives `net down`.
    std::map<pid_t, uint32_t> running;
    for (uint32_t id = 0; id < config->n(); ++id)
        if (auto pid = pid_file_replica(abs, id)) running[*pid] = id;
    for (const auto& [pid, id] : replica_processes(config_path(abs))) {
        if (running.emplace(pid, id).second)
            out << "replica " << id << " runs as pid " << pid
                << ", which no pid file names (a pid file lost or overwritten, or a tallyd started by "
                   "hand): stopping it too\n";
    }
    // A replica running under another name is left running, and its pid file kept.
    std::set<uint32_t> left_running;
    for (uint32_t id = 0; id < config->n(); ++id) {
        if (auto renamed = renamed_replica(abs, id)) {  // never in `running`: that holds tallyds
            out << left_running_note(id, *renamed);
            left_running.insert(id);
        }
    }
    auto remove_pid_files = [&] {
        for (uint32_t id = 0; id < config->n(); ++id) {
            std::error_code ec;
            if (!left_running.count(id)) fs::remove(pid_path(abs, id), ec);
        }
    };
    if (running.empty()) {
        remove_pid_files();
        if (left_running.empty()) out << "no replicas are running in " << dir << "\n";
        else out << "no tallyd replicas are running in " << dir << " (" << left_running.size()
                 << " left running under another name)\n";
        return Ok{};
    }
    for (const auto& [pid, id] : running) ::kill(pid, SIGTERM);
    auto left = wait_gone(running, abs, grace);
    for (const auto& [pid, id] : left) ::kill(pid, SIGKILL);
    auto stuck = wait_gone(left, abs, kKillWait);
    remove_pid_files();
    out << "stopped " << running.size() << " replica(s) in " << dir;
    if (!left.empty()) out << " (" << left.size() << " killed after " << grace.count() / 1000 << " s)";
    out << "\n";
    if (!stuck.empty()) return make_error("io", "some replicas did not exit even after SIGKILL");
    return Ok{};
}

namespace {

// net kill and net stop: SIGKILL at once, or SIGTERM and SIGKILL only after `grace`.
Status end_replica(const std::string& dir, uint32_t id, std::ostream& out, bool clean, milliseconds grace) {
    const std::string abs = absolute_dir(dir);
    auto config = load_existing(dir, abs);
    if (!config) return config.error();
    if (id >= config->n())
        return make_error("usage", "no replica " + std::to_string(id) + " (the network has " +
                                       std::to_string(config->n()) + ")");
    auto pid = replica_pid(abs, id);
    if (!pid) {
        if (auto renamed = renamed_replica(abs, id)) out << left_running_note(id, *renamed);
        else out << "replica " << id << " is not running\n";
        return Ok{};
    }
    auto stuck = std::map<pid_t, uint32_t>{{*pid, id}};
    if (clean) {
        ::kill(*pid, SIGTERM);
        stuck = wait_gone(stuck, abs, grace);
    }
    if (!stuck.empty()) {
        ::kill(*pid, SIGKILL);
        stuck = wait_gone(stuck, abs, kKillWait);
    }
    std::error_code ec;
    fs::remove(pid_path(abs, id), ec);
    if (!stuck.empty()) return make_error("io", "replica " + std::to_string(id) + " did not die");
    out << (clean ? "stopped" : "killed") << " replica " << id << " (pid " << *pid
        << "); start it again with `tally net start --node " << id << dir_flag(dir) << "`\n";
    return Ok{};
}

}  // namespace

Status net_kill(const std::string& dir, uint32_t id, std::ostream& out) {
    return end_replica(dir, id, out, false, milliseconds{0});
}

Status net_stop(const std::string& dir, uint32_t id, std::ostream& out, milliseconds grace) {
    return end_replica(dir, id, out, true, grace);
}

Status net_start(const std::string& dir, uint32_t id, std::ostream& out, std::ostream& progress,
                 milliseconds ready_timeout, const std::string& tallyd_option, bool recover) {
    const std::string abs = absolute_dir(dir);
    auto config = load_existing(dir, abs);
    if (!config) return config.error();
    if (id >= config->n())
        return make_error("usage", "no replica " + std::to_string(id) + " (the network has " +
                                       std::to_string(config->n()) + ")");
    if (auto pid = replica_pid(abs, id)) {
        out << "replica " << id << " is already running (pid " << *pid << ")\n";
        return Ok{};
    }
    if (auto renamed = renamed_replica(abs, id)) {  // a second one would only meet its store's lock
        out << "replica " << id << " is already running (" << renamed->what() << ")\n";
        return Ok{};
    }
    if (auto s = check_keys_here(*config, dir, {id}); !s) return s;
    const std::string tallyd = tallyd_option.empty() ? default_tallyd_path() : tallyd_option;
    auto pid = spawn_replica(tallyd, config_path(abs), id, log_path(abs, id), recover);
    if (!pid) return pid.error();
    if (auto s = write_pid_file(pid_path(abs, id), *pid); !s) {
        ::kill(*pid, SIGKILL);
        return s.error();
    }
    if (auto ready = wait_ready(*config, abs, {{id, *pid}}, ready_timeout, progress); !ready) {
        if (ready.error().code == "spawn") {
            std::error_code ec;
            fs::remove(pid_path(abs, id), ec);
        }
        return ready.error();
    }
    out << "replica " << id << " started (pid " << *pid << ") and answering\n";
    return Ok{};
}

}  // namespace tally::client
