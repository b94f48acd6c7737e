// tallyd: one Tally replica. `tallyd --config NET/network.json --id N`
//
// Refuses to start, with one clear line on stderr and a non-zero exit, on a bad config, a
// bad key file or one whose public key is not replica N's, a ledger/store that will not open,
// or a consensus store that may have forgotten this replica's votes (missing, empty, foreign,
// damaged or older than the ledger: node/store_binding.h). Then the message names the file
// and the command to run: the same one with --recover, which sets the store aside and rejoins
// as a fresh replica, silent until it has caught up. Prints "tallyd N serving on tcp://HOST:PORT" once its socket is bound. SIGTERM or
// SIGINT stops it cleanly (exit 0); a fatal store or ledger error stops it with exit 1.
// Logs go to <config dir>/logs/replica-N.log; key material is never logged.
// Binding: the replica listens (peers, clients, metrics) on its own `host` in network.json.
// libzmq binds an IP address or an interface name but never resolves a DNS name, so a host
// name there (as `tally net init --hosts` may write) is resolved here, IPv4, to the address to
// bind; --bind ADDRESS binds another (0.0.0.0: every interface, for a machine whose address
// in network.json is NATed, as on most clouds). Peers and clients still connect to `host`.
// Testing only: --test-ledger-sync-copies DIR (or TALLY_TEST_LEDGER_SYNC_COPIES=DIR, which
// uses DIR/replica-N) keeps a copy of the ledger each time it becomes durable.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "crypto/key_file.h"
#include "node/api/network_config.h"
#include "node/replica.h"

namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs a lock-free flag");

extern "C" void on_signal(int) { g_stop.store(true); }

int refuse(int id, const std::string& what) {
    std::fprintf(stderr, "tallyd %d: %s\n", id, what.c_str());
    if (auto logger = spdlog::default_logger()) logger->flush();
    return 2;
}

// The IPv4 address to bind for `host`: itself when it is one, else what it resolves to.
tally::Result<std::string> bind_address(const std::string& host) {
    in_addr numeric{};
    if (::inet_pton(AF_INET, host.c_str(), &numeric) == 1) return host;
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
    if (rc != 0 || found == nullptr)
        return tally::make_error("bind", "cannot resolve \"" + host + "\" to an IPv4 address to bind: " +
                                             (rc != 0 ? ::gai_strerror(rc) : "no address"));
    char text[INET_ADDRSTRLEN] = {};
    const auto* address = reinterpret_cast<const sockaddr_in*>(found->ai_addr);
    ::inet_ntop(AF_INET, &address->sin_addr, text, sizeof(text));
    ::freeaddrinfo(found);
    return std::string(text);
}

}  // namespace

int main(int argc, char** argv) {
    // No core dumps: the transport's CURVE secret is derived from the signing key, and libzmq
    // keeps its copy in memory this program cannot wipe or mark MADV_DONTDUMP (README,
    // "Transport security"). Our own secret pages are left out of dumps either way.
    const struct rlimit no_core = {0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    CLI::App app{"tallyd: one replica of a Tally network"};
    std::string config_path;
    uint32_t id = 0;
    std::string log_level = "info";
    std::string traitor;
    uint64_t traitor_seed = 1;
    app.add_option("--config", config_path, "the network's network.json")->required();
    app.add_option("--id", id, "this replica's id in network.json")->required();
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
        ->capture_default_str()
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
    app.add_option("--traitor", traitor,
                   "fault injection: Byzantine behaviours, comma-separated (see node/traitor.h)");
    app.add_option("--traitor-seed", traitor_seed, "seed for the traitor's random choices")
        ->capture_default_str();
    size_t inline_max = tally::node::ReplicaOptions{}.inline_verify_frames_max;
    app.add_option("--inline-max", inline_max,
                   "tuning: frames checked and replies signed per loop turn on the consensus "
                   "thread while the workers are idle (0: always on the workers)")
        ->capture_default_str();
    bool recover = false;
    app.add_flag("--recover", recover,
                 "the consensus store is lost or damaged: set it aside and rejoin as a fresh "
                 "replica (state transfer from peers; no votes until caught up)");
    std::string bind;
    app.add_option("--bind", bind,
                   "listen on this address instead of network.json's host for this replica "
                   "(0.0.0.0: every interface, e.g. behind NAT); peers still connect to that host");
    std::string ledger_sync_copies;
    app.add_option("--test-ledger-sync-copies", ledger_sync_copies,
                   "testing only: keep a copy of the ledger in DIR each time it becomes durable "
                   "(what a power loss would leave of it)");
    CLI11_PARSE(app, argc, argv);
    const int sid = static_cast<int>(id);

    auto config = tally::node::api::load_network_config(config_path);
    if (!config) return refuse(sid, "bad config: " + config.error().message);
    if (id >= config->n())
        return refuse(sid, "--id " + std::to_string(id) + " is not in " + config_path + " (ids 0.." +
                               std::to_string(config->n() - 1) + ")");
    const auto& self = config->replicas[id];

    // Logging first, so every later step can be found in the log too.
    const std::string log_dir = config->dir + "/logs";
    const std::string log_path = log_dir + "/replica-" + std::to_string(id) + ".log";
    try {
        std::filesystem::create_directories(log_dir);
        auto logger = spdlog::basic_logger_mt("tallyd", log_path);
        logger->set_pattern("%Y-%m-%d %H:%M:%S.%e [%l] [replica " + std::to_string(id) + "] %v");
        logger->set_level(spdlog::level::from_str(log_level));
        logger->flush_on(spdlog::level::warn);
        spdlog::set_default_logger(logger);
        spdlog::flush_every(std::chrono::seconds(1));
    } catch (const std::exception& e) {
        return refuse(sid, "cannot open the log " + log_path + ": " + e.what());
    }

    auto key = tally::crypto::read_key_file(self.key_file);
    if (!key) return refuse(sid, "bad key file: " + key.error().message);
    if (key->public_key() != self.public_key)
        return refuse(sid, "key file " + self.key_file +
                               " holds a different key than replica " + std::to_string(id) +
                               "'s public_key in " + config_path);

    tally::node::ReplicaOptions options;
    options.inline_verify_frames_max = inline_max;
    options.inline_sign_max = inline_max;
    options.recover = recover;
    // The environment serves tests that start replicas through `tally net` (replica-N below it).
    if (ledger_sync_copies.empty()) {
        if (const char* dir = std::getenv("TALLY_TEST_LEDGER_SYNC_COPIES"); dir != nullptr && *dir != '\0')
            ledger_sync_copies = std::string(dir) + "/replica-" + std::to_string(id);
    }
    options.ledger_sync_copies_dir = ledger_sync_copies;
    if (!ledger_sync_copies.empty())
        spdlog::warn("testing: keeping a copy of the ledger at each sync in {}", ledger_sync_copies);
    // --traitor wins; otherwise what network.json records for this replica.
    if (traitor.empty()) traitor = self.traitor;
    if (!traitor.empty()) {
        std::string item;
        for (char c : traitor + ",") {
            if (c == ',') {
                if (!item.empty()) options.traitor.push_back(item);
                item.clear();
            } else {
                item += c;
            }
        }
        options.traitor_seed = traitor_seed;
        spdlog::warn("running as a TRAITOR: {}", traitor);
    }

    // What to bind (see the file comment): --bind, else network.json's host, as an address.
    const std::string listen_host = bind.empty() ? self.host : bind;
    auto address = bind_address(listen_host);
    if (!address) {
        spdlog::critical("cannot start: {}", address.error().message);
        return refuse(sid, "cannot start: " + address.error().message);
    }
    if (*address != self.host)
        spdlog::info("listening on {} for host {} in network.json", *address, self.host);
    config->replicas[id].host = *address;  // the replica binds its own entry's host

    const std::string recover_command =
        "tallyd --config " + config_path + " --id " + std::to_string(id) + " --recover";
    auto replica = tally::node::Replica::open(*config, id, *key, options);
    if (!replica && replica.error().code == "store_refused") {
        std::string message = replica.error().message;
        const std::string placeholder = "tallyd --config NETWORK.json --id N --recover";
        if (auto at = message.find(placeholder); at != std::string::npos)
            message.replace(at, placeholder.size(), recover_command);
        spdlog::critical("refusing to start: {}", message);
        return refuse(sid, "refusing to start: " + message);
    }
    if (!replica) {
        std::string message = replica.error().message;
        if (replica.error().code == "bind")
            message += " (the address network.json gives replica " + std::to_string(id) +
                       " must be this machine's; behind NAT, start tallyd with --bind 0.0.0.0)";
        spdlog::critical("cannot start: {}", message);
        return refuse(sid, "cannot start: " + message);
    }

    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, nullptr);
    sigaction(SIGINT, &action, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    spdlog::info("serving replicas on {}, clients on {} (data {})", (*replica)->endpoint(),
                 self.client_endpoint(), self.data_dir);
    std::printf("tallyd %u serving on %s (clients: %s)\n", id, (*replica)->endpoint().c_str(),
                self.client_endpoint().c_str());
    std::fflush(stdout);

    auto status = (*replica)->run(g_stop);
    replica->reset();  // stop the workers, close the sockets and both databases
    if (!status) {
        spdlog::critical("stopped on a fatal error: {}", status.error().message);
        spdlog::shutdown();
        std::fprintf(stderr, "tallyd %u: fatal: %s\n", id, status.error().message.c_str());
        return 1;
    }
    spdlog::info("stopped cleanly");
    spdlog::shutdown();
    return 0;
}
