// `tally`: the user's command line — keys, local networks, transfers, reads, status, bench.
// Every command takes --dir (the network folder, default ./tally-net); most take --json.
// Errors are one line on stderr; the exit code says what kind (see the --help footer).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "bft/quorum.h"
#include "client/bench.h"
#include "client/cli.h"
#include "client/demo.h"
#include "client/explain.h"
#include "client/client.h"
#include "client/net.h"
#include "client/web/web.h"
#include "crypto/key_file.h"
#include "crypto/keys.h"

namespace tc = tally::client;
using tally::Error;

namespace {

int fail(const Error& error) {
    std::cerr << "tally: " << error.message << "\n";
    return tc::exit_code_for(error);
}

void print_json(const nlohmann::json& j) { std::cout << j.dump(2) << std::endl; }

struct Args {
    std::string dir = std::string(tc::kDefaultDir);
    bool json = false;
    double timeout_s = 10.0;
    bool recover = false;  // net start --recover
    // keygen / address
    std::string out_file;
    std::string key;
    // net
    uint32_t nodes = 0;  // the protocol's default
    uint64_t ballast = 0;
    std::vector<std::string> traitors;
    std::string protocol = "pbft";
    bool lease_reads = false;
    double wait_s = 30.0;
    uint32_t node = 0;
    double status_wait_s = 1.0;
    // net init
    std::string hosts;
    std::string out_dir;
    uint16_t peer_port = tc::kHostsPeerPort;
    uint16_t client_port = tc::kHostsClientPort;
    uint16_t metrics_port = tc::kHostsMetricsPort;
    // transfer
    std::string to;
    std::string amount;
    std::string nonce;
    // balance / tx
    std::string account;
    std::string consistency = "linearizable";
    std::string tx_id;
    // audit
    std::string data_dir;
    std::string network_file;
    // bench
    uint32_t clients = 0;  // bench: 16, or 256 with --rate
    double duration_s = 10.0;
    double warmup_s = 1.0;
    double rate = 0;    // open loop when > 0
    uint64_t seed = 1;  // the open loop's arrivals
    std::string faucet;
    bool timeline = false;
    uint32_t interval_ms = 1000;
    bool commit_times = false;
    bool breakdown = false;
    uint64_t transactions = 0;
    std::string demo_behaviour = "equivocate";
    uint32_t demo_transfers = 12;
    bool keep = false;
    int flood_replica = -1;
    // net web
    std::string web_host = "127.0.0.1";
    uint16_t web_port = 8080;
    uint32_t web_poll_ms = 500;
    uint32_t flood_connections = 1;
};

// A connected client for the network in args.dir.
tally::Result<std::unique_ptr<tc::Client>> connect(const Args& args) {
    auto config = tc::load_network(args.dir);
    if (!config) return config.error();
    auto client = std::make_unique<tc::Client>();
    if (auto s = client->connect(*config); !s) return s.error();
    return client;
}

int cmd_keygen(const Args& args) {
    const auto key = tally::crypto::KeyPair::generate();
    if (auto s = tally::crypto::write_key_file(args.out_file, key); !s)
        return fail(tally::make_error("usage", "cannot write key file " + args.out_file + ": " +
                                                   s.error().message));
    const auto account = tally::crypto::key_to_hex(key.public_key());
    if (args.json) {
        print_json({{"account", account}, {"file", args.out_file}});
    } else {
        std::cout << account << "\n";
    }
    return tc::kExitOk;
}

int cmd_address(const Args& args) {
    auto key = tc::resolve_key(args.key, args.dir);
    if (!key) return fail(key.error());
    const auto account = tally::crypto::key_to_hex(key->public_key());
    if (args.json) {
        print_json({{"account", account}});
    } else {
        std::cout << account << "\n";
    }
    return tc::kExitOk;
}

int cmd_net_up(const Args& args) {
    tc::NetUpOptions options;
    options.dir = args.dir;
    options.nodes = args.nodes;
    options.protocol = args.protocol;
    options.traitors = args.traitors;
    options.ballast = args.ballast;
    options.lease_reads = args.lease_reads;
    auto wait = tc::parse_timeout_s(args.wait_s, "--wait");
    if (!wait) return fail(wait.error());
    options.ready_timeout = *wait;
    if (auto s = tc::net_up(options, std::cout, std::cerr); !s) return fail(s.error());
    return tc::kExitOk;
}

int cmd_net_init(const Args& args) {
    tc::NetInitOptions options;
    options.out = args.out_dir;
    options.protocol = args.protocol;
    options.port = args.peer_port;
    options.client_port = args.client_port;
    options.metrics_port = args.metrics_port;
    options.lease_reads = args.lease_reads;
    // Split on commas, keeping empty entries so that "a,,b" is refused, not quietly read as "a,b".
    std::string item;
    for (char c : args.hosts + ",") {
        if (c == ',') {
            options.hosts.push_back(item);
            item.clear();
        } else {
            item += c;
        }
    }
    if (auto s = tc::net_init(options, std::cout); !s) return fail(s.error());
    return tc::kExitOk;
}

int cmd_net_status(const Args& args) {
    auto client = connect(args);
    if (!client) return fail(client.error());
    auto wait = tc::parse_timeout_s(args.status_wait_s, "--wait");
    if (!wait) return fail(wait.error());
    auto statuses = (*client)->status(*wait);
    if (!statuses) return fail(statuses.error());
    const auto& config = (*client)->config();
    if (args.json) {
        auto j = tc::status_json(*statuses);
        if (config.protocol == tally::bft::Protocol::kRaft) j["lease_reads"] = config.consensus.lease_reads;
        print_json(j);
    } else {
        // The table, then the network's settings that change what a read costs or assumes.
        std::cout << tc::status_table(*statuses) << tc::lease_reads_line(config);
    }
    for (const auto& s : *statuses)
        if (s.up) return tc::kExitOk;
    std::cerr << "tally: no replica answered (start the network with `tally net up`)\n";
    return tc::kExitUnreachable;
}

int cmd_net_down(const Args& args) {
    auto s = tc::net_down(args.dir, std::cout);
    return s ? tc::kExitOk : fail(s.error());
}

int cmd_net_kill(const Args& args) {
    auto s = tc::net_kill(args.dir, args.node, std::cout);
    return s ? tc::kExitOk : fail(s.error());
}

int cmd_net_stop(const Args& args) {
    auto s = tc::net_stop(args.dir, args.node, std::cout);
    return s ? tc::kExitOk : fail(s.error());
}

int cmd_net_start(const Args& args) {
    auto wait = tc::parse_timeout_s(args.wait_s, "--wait");
    if (!wait) return fail(wait.error());
    auto s = tc::net_start(args.dir, args.node, std::cout, std::cerr, *wait, "", args.recover);
    return s ? tc::kExitOk : fail(s.error());
}

int cmd_net_web(const Args& args) {
    tc::web::WebOptions options;
    options.dir = args.dir;
    options.host = args.web_host;
    options.port = args.web_port;
    options.poll_interval = std::chrono::milliseconds{args.web_poll_ms};
    auto s = tc::web::serve(options, std::cout);
    return s ? tc::kExitOk : fail(s.error());
}

int cmd_transfer(const Args& args) {
    // The network first: without one, nothing else the user typed can be checked well.
    auto client = connect(args);
    if (!client) return fail(client.error());
    auto key = tc::resolve_key(args.key, args.dir);
    if (!key) return fail(key.error());
    auto to = tc::resolve_account(args.to, args.dir);
    if (!to) return fail(to.error());
    auto amount = tc::parse_u64(args.amount, "--amount", 1);
    if (!amount) return fail(amount.error());
    std::optional<uint64_t> nonce;
    if (!args.nonce.empty()) {
        auto n = tc::parse_u64(args.nonce, "--nonce", 1);
        if (!n) return fail(n.error());
        nonce = *n;
    }
    auto timeout = tc::parse_timeout_s(args.timeout_s);
    if (!timeout) return fail(timeout.error());
    auto result = (*client)->transfer(*key, *to, *amount, nonce, *timeout);
    if (!result) return fail(result.error());
    if (args.json) {
        print_json(tc::transfer_json(*result));
    } else {
        std::cout << "tx      " << tally::crypto::to_hex(result->tx_id) << "\n"
                  << "seq     " << result->seq << "\n"
                  << "block   " << result->block << "\n"
                  << "result  " << tc::result_text(result->result) << "\n";
    }
    if (!result->final()) {
        std::cerr << "tally: " << tc::not_final_advice(*result) << "\n";
        return tc::kExitNotFinal;
    }
    if (!result->ok()) {
        std::cerr << "tally: the transfer failed: " << tc::result_text(result->result) << "\n";
        return tc::kExitFailed;
    }
    return tc::kExitOk;
}

int cmd_balance(const Args& args) {
    // The network first: without one, nothing else the user typed can be checked well.
    auto client = connect(args);
    if (!client) return fail(client.error());
    auto account = tc::resolve_account(args.account, args.dir);
    if (!account) return fail(account.error());
    auto consistency = tc::consistency_from_name(args.consistency);
    if (!consistency)
        return fail(tally::make_error("usage", "--consistency must be linearizable, fast or local"));
    auto timeout = tc::parse_timeout_s(args.timeout_s);
    if (!timeout) return fail(timeout.error());
    auto result = (*client)->balance(*account, *consistency, *timeout, args.node);
    if (!result) return fail(result.error());
    if (args.json) {
        print_json(tc::balance_json(*result));
        return tc::kExitOk;
    }
    std::cout << "account  " << tally::crypto::key_to_hex(result->account) << "\n"
              << "balance  " << result->balance << (result->exists ? "" : "  (no such account yet)")
              << "\n"
              << "nonce    " << result->nonce << "\n"
              << "seq      " << result->seq << "  (" << tc::consistency_name(result->served);
    if (result->replica)
        std::cout << ", replica " << *result->replica << "'s word alone: may be stale or false";
    // How many had to agree is the protocol's (bft/quorum.h): PBFT 2f+1, Raft a majority.
    const std::string agreed = (*client)->config().protocol == tally::bft::Protocol::kRaft ? "a majority" : "2f+1";
    if (result->served == tc::Consistency::kFast) std::cout << ", " << agreed << " replicas agreed at this seq";
    if (*consistency == tc::Consistency::kFast && result->served != tc::Consistency::kFast)
        std::cout << ", fast read fell back: no " << agreed << " agreed at one seq";
    std::cout << ")\n";
    return tc::kExitOk;
}

int cmd_tx(const Args& args) {
    // The network first: without one, nothing else the user typed can be checked well.
    auto client = connect(args);
    if (!client) return fail(client.error());
    auto id = tc::parse_tx_id(args.tx_id);
    if (!id) return fail(id.error());
    auto timeout = tc::parse_timeout_s(args.timeout_s);
    if (!timeout) return fail(timeout.error());
    auto result = (*client)->tx(*id, *timeout);
    if (!result) return fail(result.error());
    if (args.json) {
        print_json(tc::tx_json(*result));
    } else {
        std::cout << "tx      " << tally::crypto::to_hex(result->tx_id) << "\n"
                  << "result  " << tc::result_text(result->result) << "\n"
                  << "seq     " << result->seq << "\n";
    }
    if (result->result == static_cast<uint32_t>(tally::ledger::ResultCode::kUnknownTx)) {
        std::cerr << "tally: no such transaction in the ledger: the network never ordered it (or "
                     "the replicas that answered caught up past it by state transfer)\n";
        return tc::kExitFailed;
    }
    // Executed, but as nonce_too_high: not recorded for good (ledger/tx.h).
    if (!tc::TransferResult::is_final(result->result)) {
        std::cerr << "tally: " << tc::tx_not_final_advice(*result) << "\n";
        return tc::kExitNotFinal;
    }
    return tc::kExitOk;
}

// `tally explain TX`: every replica's trace of it (client/explain.h); the ledger's answer
// when none holds one any more.
int cmd_explain(const Args& args) {
    auto config = tc::load_network(args.dir);
    if (!config) return fail(config.error());
    auto client = connect(args);
    if (!client) return fail(client.error());
    auto id = tc::parse_tx_id(args.tx_id);
    if (!id) return fail(id.error());
    auto timeout = tc::parse_timeout_s(args.timeout_s);
    if (!timeout) return fail(timeout.error());
    auto statuses = (*client)->status(std::nullopt, *id);
    if (!statuses) return fail(statuses.error());
    tc::Explained explained{*id, config->protocol, config->f, config->quorums().client().ordered,
                            std::move(*statuses), std::nullopt};
    const bool traced = std::any_of(explained.replicas.begin(), explained.replicas.end(), [](const auto& r) {
        return r.up && r.reply.trace().known();
    });
    if (!traced) {
        auto ledger = (*client)->tx(*id, *timeout);
        if (!ledger) return fail(ledger.error());
        explained.ledger = *ledger;
    }
    if (args.json)
        print_json(tc::explain_json(explained));
    else
        std::cout << tc::explain_text(explained);
    const bool found = traced || (explained.ledger && tc::found_in_ledger(*explained.ledger));
    return found ? tc::kExitOk : tc::kExitFailed;
}

// `dir_given`: where both networks live when --dir was given (else a new folder under /tmp).
int cmd_demo_traitor(const Args& args, bool dir_given) {
    tc::DemoOptions options;
    options.behaviour = args.demo_behaviour;
    options.transfers = args.demo_transfers;
    if (dir_given) options.dir = args.dir;
    options.keep = args.keep;
    auto s = tc::demo_traitor(options, std::cout);
    return s ? tc::kExitOk : fail(s.error());
}

// `bench --timeline` as text: one line per interval, with a bar scaled to the busiest one.
std::string timeline_table(const tc::BenchResult& r) {
    double busiest = 0;
    for (const auto& p : r.timeline) busiest = std::max(busiest, p.tps);
    std::string out = "      t (s)  committed       tx/s\n";
    for (const auto& p : r.timeline) {
        char line[128];
        std::snprintf(line, sizeof(line), "  %9.2f  %9llu  %9.1f  ", p.t_s,
                      static_cast<unsigned long long>(p.committed), p.tps);
        const auto bar = busiest > 0 ? static_cast<size_t>(p.tps / busiest * 40.0 + 0.5) : 0;
        out += line + std::string(bar, '#') + "\n";
    }
    return out;
}

int cmd_bench(const Args& args) {
    auto config = tc::load_network(args.dir);
    if (!config) return fail(config.error());
    const std::string faucet_arg = args.faucet.empty() ? "faucet" : args.faucet;
    auto faucet = tc::resolve_key(faucet_arg, args.dir);
    if (!faucet) return fail(faucet.error());
    auto timeout = tc::parse_timeout_s(args.timeout_s);
    if (!timeout) return fail(timeout.error());
    tc::BenchOptions options;
    options.clients = args.clients != 0 ? args.clients : (args.rate > 0 ? 256 : 16);
    options.duration_s = args.duration_s;
    options.warmup_s = args.warmup_s;
    options.request_timeout = *timeout;
    options.timeline = args.timeline;
    options.interval = std::chrono::milliseconds{args.interval_ms};
    options.commit_times = args.commit_times;
    options.stop_after = args.transactions;
    options.flood_replica = args.flood_replica;
    options.flood_connections = args.flood_connections;
    options.breakdown = args.breakdown;
    options.rate = args.rate;
    options.seed = args.seed;
    auto result = tc::run_bench(*config, *faucet, options, std::cerr);
    if (!result) return fail(result.error());
    if (args.json) {
        print_json(tc::bench_json(*result));
    } else {
        char line[512];
        std::snprintf(line, sizeof(line),
                      "clients      %u\n"
                      "duration     %.1f s\n"
                      "committed    %llu\n"
                      "failed       %llu\n"
                      "throughput   %.1f tx/s\n"
                      "latency p50  %.2f ms\n"
                      "latency p99  %.2f ms\n"
                      "longest gap  %.0f ms without a commit (from %.2f s to %.2f s)\n",
                      result->clients, result->duration_s,
                      static_cast<unsigned long long>(result->committed),
                      static_cast<unsigned long long>(result->failed), result->tps, result->p50_ms,
                      result->p99_ms, result->max_gap.length_s() * 1000.0, result->max_gap.start_s,
                      result->max_gap.end_s);
        std::cout << line;
        const auto& cost = result->cost;
        if (cost.replicas_known)
            std::snprintf(line, sizeof(line),
                          "per transfer %.3f ms CPU at the replicas (together), %.3f ms at this client, "
                          "%.1f messages and %.0f bytes between replicas\n",
                          cost.replica_cpu_ms, cost.client_cpu_ms, cost.messages, cost.bytes);
        else
            std::snprintf(line, sizeof(line),
                          "per transfer %.3f ms CPU at this client (a replica did not report its own)\n",
                          cost.client_cpu_ms);
        if (result->committed > 0) std::cout << line;
        if (const auto& m = result->machine) {
            std::snprintf(line, sizeof(line),
                          "machine      %u CPUs, %.2f busy on average: %.2f charged to the replicas and this "
                          "client, %.2f to other work (other processes, interrupts, kernel threads); %.2f taken "
                          "by the hypervisor\n",
                          m->cpus, m->busy_cpus, m->system_cpus, m->other_cpus, m->steal_cpus);
            std::cout << line;
        }
        if (const auto& open = result->open_loop) {
            std::snprintf(line, sizeof(line),
                          "offered      %.1f tx/s (Poisson, seed %llu): %llu arrivals in the window, %llu "
                          "waited for an idle client (at most %llu at once, %llu still waiting at the end); arrival "
                          "to send p50 %.2f ms, p99 %.2f ms\n",
                          open->rate, static_cast<unsigned long long>(open->seed),
                          static_cast<unsigned long long>(open->arrivals),
                          static_cast<unsigned long long>(open->waited),
                          static_cast<unsigned long long>(open->backlog_max),
                          static_cast<unsigned long long>(open->waiting_at_end), open->lag_p50_ms, open->lag_p99_ms);
            std::cout << line;
        }
        if (!result->timeline.empty()) std::cout << "\n" << timeline_table(*result);
        if (result->breakdown) std::cout << "\n" << tc::breakdown_table(*result->breakdown);
    }
    return tc::kExitOk;
}

// `tally audit --data DIR`: the check runs in `tally-audit`, beside this program, which links
// the SQLite ledger and PBFT's certificate rule; `tally` links neither (client/CMakeLists.txt).
int cmd_audit(const Args& args) {
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    const std::string program = ec ? std::string("tally-audit") : (self.parent_path() / "tally-audit").string();
    std::vector<std::string> argv{program, "--dir", args.dir, "--data", args.data_dir};
    if (!args.network_file.empty()) argv.insert(argv.end(), {"--network", args.network_file});
    if (args.json) argv.push_back("--json");
    std::vector<char*> raw;
    for (auto& a : argv) raw.push_back(a.data());
    raw.push_back(nullptr);
    ::execv(program.c_str(), raw.data());
    return fail(tally::make_error("usage", "cannot run " + program + ": " + std::strerror(errno) +
                                               " (build it: cmake --build <build> --target tally-audit)"));
}

// The same two options on many subcommands.
void add_json_flag(CLI::App* cmd, Args& args) {
    cmd->add_flag("--json", args.json, "machine-readable output");
}

void add_timeout_option(CLI::App* cmd, Args& args) {
    cmd->add_option("--timeout", args.timeout_s, "give up after this many seconds")
        ->capture_default_str();
}

// The subcommands main can run: whichever the user named is set after parsing. Groups (net,
// demo) have none of their own: they only hold these.
struct Commands {
    CLI::App* keygen = nullptr;
    CLI::App* address = nullptr;
    CLI::App* net_up = nullptr;
    CLI::App* net_init = nullptr;
    CLI::App* net_status = nullptr;
    CLI::App* net_down = nullptr;
    CLI::App* net_kill = nullptr;
    CLI::App* net_stop = nullptr;
    CLI::App* net_start = nullptr;
    CLI::App* net_web = nullptr;
    CLI::App* transfer = nullptr;
    CLI::App* balance = nullptr;
    CLI::App* tx = nullptr;
    CLI::App* demo_traitor = nullptr;
    CLI::App* explain = nullptr;
    CLI::App* bench = nullptr;
    CLI::App* audit = nullptr;
};

void add_key_commands(CLI::App& app, Args& args, Commands& commands) {
    auto* keygen = app.add_subcommand("keygen", "make a new key file (an account); prints its id");
    keygen->add_option("--out", args.out_file, "the key file to write (never overwritten)")->required();
    add_json_flag(keygen, args);
    commands.keygen = keygen;

    auto* address = app.add_subcommand("address", "print the account id of a key file");
    address->add_option("--key", args.key, "a key file or a name in DIR/accounts")->required();
    add_json_flag(address, args);
    commands.address = address;
}

// `--lease-reads`, the same on net up and net init (network.json's consensus.lease_reads).
void add_lease_reads_flag(CLI::App* cmd, Args& args) {
    cmd->add_flag("--lease-reads", args.lease_reads,
                  "Raft: answer linearizable reads from the leader's lease, without a heartbeat round "
                  "each (assumes the replicas' clocks drift apart by less than an eighth of the election "
                  "timeout; off: ReadIndex, which assumes nothing of clocks)");
}

CLI::App* add_net_up(CLI::App* net, Args& args) {
    auto* up = net->add_subcommand("up", "create (or restart) a local network and wait until it serves");
    up->add_option("--nodes", args.nodes,
                   "replicas (PBFT: 3f+1, default 4; Raft: any n, f = floor((n-1)/2), default 3)");
    up->add_option("--consensus,--protocol", args.protocol, "pbft or raft")->capture_default_str();
    add_lease_reads_flag(up, args);
    up->add_option("--traitor", args.traitors,
                   "make a replica Byzantine: NODE:BEHAVIOUR[,BEHAVIOUR] (repeatable). Behaviours: "
                   "silent, equivocate, bad-signature, wrong-digest, stale-view, future-view, replay, "
                   "forge-client, lying-checkpoint, wrong-reply, lying-snapshot, lying-view-change, random, "
                   "double-vote, false-ack, lying-vote (Raft: silent, equivocate, bad-signature, wrong-reply, "
                   "lying-snapshot, double-vote, false-ack, lying-vote)");
    up->add_option("--ballast", args.ballast,
                   "add N accounts that only weigh the ledger down (1 unit each, keys nobody holds): "
                   "to measure a large ledger")
        ->check(CLI::Range(uint64_t{0}, uint64_t{100'000'000}));
    up->add_option("--wait", args.wait_s, "seconds to wait for every replica")->capture_default_str();
    return up;
}

CLI::App* add_net_init(CLI::App* net, Args& args) {
    auto* init = net->add_subcommand(
        "init", "write a network for separate machines, one replica per host, without starting it: "
                "OUT/network.json and OUT/accounts for the client, OUT/I-HOST for host I to copy");
    init->add_option("--hosts", args.hosts,
                     "one replica per host, comma-separated: IPv4 addresses or DNS names "
                     "(PBFT: 3f+1 of them, e.g. 4)")
        ->required();
    init->add_option("--out", args.out_dir, "the folder to write (must not exist, or be empty)")->required();
    init->add_option("--consensus,--protocol", args.protocol, "pbft or raft")->capture_default_str();
    add_lease_reads_flag(init, args);
    init->add_option("--port", args.peer_port, "every replica's port for its peers")->capture_default_str();
    init->add_option("--client-port", args.client_port, "every replica's port for clients")
        ->capture_default_str();
    init->add_option("--metrics-port", args.metrics_port,
                     "every replica's Prometheus port (0: none)")
        ->capture_default_str();
    return init;
}

// status, down, and the three that act on one replica: kill, stop, start.
void add_net_replica_commands(CLI::App* net, Args& args, Commands& commands) {
    auto* status = net->add_subcommand("status", "every replica's role, view, executed and digest");
    status->add_option("--wait", args.status_wait_s, "seconds before a silent replica is down")
        ->capture_default_str();
    add_json_flag(status, args);
    commands.net_status = status;
    commands.net_down = net->add_subcommand("down", "stop every replica");
    auto* kill = net->add_subcommand("kill", "crash one replica (SIGKILL)");
    kill->add_option("--node", args.node, "replica id")->required();
    commands.net_kill = kill;
    auto* stop = net->add_subcommand(
        "stop", "stop one replica cleanly (SIGTERM); a Raft leader hands over to a follower first");
    stop->add_option("--node", args.node, "replica id")->required();
    commands.net_stop = stop;
    auto* start = net->add_subcommand("start", "start one replica again on its data");
    start->add_option("--node", args.node, "replica id")->required();
    start->add_option("--wait", args.wait_s, "seconds to wait for it")->capture_default_str();
    start->add_flag("--recover", args.recover,
                    "its consensus store was refused (missing, replaced, damaged): set it aside "
                    "and rejoin as a fresh replica (tallyd --recover)");
    commands.net_start = start;
}

CLI::App* add_net_web(CLI::App* net, Args& args) {
    auto* web = net->add_subcommand(
        "web", "serve a live view of the network in the browser: each replica's role, view, progress, "
               "detections; kill and start buttons (client/web/web.h)");
    web->add_option("--port", args.web_port, "the HTTP port (0: any free one)")->capture_default_str();
    web->add_option("--host", args.web_host,
                    "the address to listen on (anyone who reaches it can kill and start replicas)")
        ->capture_default_str();
    web->add_option("--poll-ms", args.web_poll_ms, "how often the replicas are asked, in ms")
        ->capture_default_str()
        ->check(CLI::Range(100u, 60'000u));
    return web;
}

void add_net_commands(CLI::App& app, Args& args, Commands& commands) {
    auto* net = app.add_subcommand("net", "run a local network, or write one for separate hosts");
    net->require_subcommand(1);
    net->fallthrough();
    commands.net_up = add_net_up(net, args);
    commands.net_init = add_net_init(net, args);
    add_net_replica_commands(net, args, commands);
    commands.net_web = add_net_web(net, args);
}

// transfer, balance and tx: the commands that go through consensus to the ledger.
void add_ledger_commands(CLI::App& app, Args& args, Commands& commands) {
    auto* transfer = app.add_subcommand("transfer", "transfer from your account to another");
    transfer->add_option("--key", args.key, "the sender's key file (or a name in DIR/accounts)")
        ->required();
    transfer->add_option("--to", args.to, "the recipient ACCOUNT")->required();
    transfer->add_option("--amount", args.amount, "a whole number > 0")->required();
    transfer->add_option("--nonce", args.nonce, "default: the account's nonce + 1");
    add_json_flag(transfer, args);
    add_timeout_option(transfer, args);
    commands.transfer = transfer;

    auto* balance = app.add_subcommand("balance", "read an account's balance and nonce");
    balance->add_option("account", args.account, "ACCOUNT")->required();
    balance->add_option("--consistency", args.consistency,
                        "linearizable: ordered through consensus (PBFT: f+1 matching signed replies; "
                        "Raft: the leader's ReadIndex); "
                        "fast: 2f+1 (Raft: a majority of) replicas' signed answers at one seq, else an "
                        "ordered read; "
                        "local: one replica's signed word (--node), possibly stale or false")
        ->capture_default_str();
    balance->add_option("--node", args.node, "the replica for --consistency local")
        ->capture_default_str();
    add_json_flag(balance, args);
    add_timeout_option(balance, args);
    commands.balance = balance;

    auto* tx = app.add_subcommand("tx", "look up a transaction's result (ordered query)");
    tx->add_option("txid", args.tx_id, "64 hex digits")->required();
    add_json_flag(tx, args);
    add_timeout_option(tx, args);
    commands.tx = tx;
}

void add_demo_commands(CLI::App& app, Args& args, Commands& commands) {
    auto* demo = app.add_subcommand("demo", "demonstrations");
    demo->require_subcommand(1);
    auto* demo_traitor = demo->add_subcommand(
        "traitor", "a PBFT and a Raft network side by side, one traitor of the same kind in each, the same "
                   "transfers into both: PBFT's honest replicas agree and detect it, Raft's part");
    demo_traitor->add_option("behaviour", args.demo_behaviour, "the traitor's behaviour (one Raft plays too)")
        ->capture_default_str();
    demo_traitor->add_option("--transfers", args.demo_transfers, "transfers into each network")
        ->capture_default_str()
        ->check(CLI::Range(1u, 10'000u));
    demo_traitor->add_flag("--keep", args.keep, "leave both networks running at the end");
    commands.demo_traitor = demo_traitor;
}

void add_explain_command(CLI::App& app, Args& args, Commands& commands) {
    auto* explain = app.add_subcommand(
        "explain", "the life of one transaction across the replicas: when each received it, its "
                   "protocol steps with the votes counted, view changes, execution and result, and "
                   "which replies a client accepted");
    explain->add_option("txid", args.tx_id, "64 hex digits")->required();
    add_json_flag(explain, args);
    add_timeout_option(explain, args);
    commands.explain = explain;
}

void add_bench_command(CLI::App& app, Args& args, Commands& commands) {
    auto* bench = app.add_subcommand("bench", "closed- or open-loop benchmark against the network");
    bench->add_option("--clients", args.clients,
                      "logical clients, one transfer in flight each (default 16; with --rate 256, so "
                      "that most arrivals find an idle one)")
        ->check(CLI::Range(1u, 1'000'000u));
    bench->add_option("--rate", args.rate,
                      "open loop: transfers arrive at this many per second in all (Poisson), whether "
                      "or not earlier ones completed, each sent by an idle client; latency counts from "
                      "the arrival (default: closed loop)")
        ->check(CLI::Range(tc::kRateMin, tc::kRateMax));
    bench->add_option("--seed", args.seed, "open loop: the arrivals' seed (the same seed, the same arrivals)")
        ->capture_default_str();
    bench->add_option("--duration", args.duration_s, "measured seconds")->capture_default_str();
    bench->add_option("--warmup", args.warmup_s, "unmeasured seconds first")->capture_default_str();
    bench->add_option("--faucet", args.faucet, "the funding key (default DIR/accounts/faucet.key)");
    bench->add_flag("--timeline", args.timeline,
                    "committed transfers per interval over the measured window (JSON: timeline)");
    bench->add_option("--interval-ms", args.interval_ms, "the timeline's interval")
        ->capture_default_str()
        ->check(CLI::Range(1u, 3'600'000u));
    bench->add_flag("--commit-times", args.commit_times,
                    "JSON: commit_times_s, when each transfer was accepted (s from the window's start)");
    bench->add_flag("--breakdown", args.breakdown,
                    "where committed batches spent their time, phase by phase, at each replica (p50/p99 "
                    "over the window; JSON: breakdown)");
    bench->add_option("--transactions", args.transactions,
                      "stop once this many committed in the window (default: run --duration)");
    bench->add_option("--flood-replica", args.flood_replica,
                      "beside the load, flood this replica's client port with distinct transfers "
                      "with bad signatures (scripts/measure-flood)")
        ->check(CLI::Range(0, 1000));
    bench->add_option("--flood-connections", args.flood_connections, "the flood's connections")
        ->capture_default_str()
        ->check(CLI::Range(1u, 1000u));
    add_json_flag(bench, args);
    add_timeout_option(bench, args);
    commands.bench = bench;
}

void add_audit_command(CLI::App& app, Args& args, Commands& commands) {
    auto* audit = app.add_subcommand(
        "audit", "check one replica's data folder offline: the whole chain, every block's hash link, "
                 "transaction root, commit certificate and state digest (exit 1 names the first bad block)");
    audit->add_option("--data", args.data_dir, "the replica's data folder (holding ledger.db)")->required();
    audit->add_option("--network", args.network_file, "the network file with the replica keys "
                                                      "(default DIR/network.json)");
    add_json_flag(audit, args);
    commands.audit = audit;
}

// Runs the one subcommand that was parsed. `dir_given`: --dir was on the command line (demo
// uses it only then; every other command has its default).
int dispatch(const Commands& commands, const Args& args, bool dir_given) {
    if (*commands.keygen) return cmd_keygen(args);
    if (*commands.address) return cmd_address(args);
    if (*commands.net_up) return cmd_net_up(args);
    if (*commands.net_init) return cmd_net_init(args);
    if (*commands.net_status) return cmd_net_status(args);
    if (*commands.net_down) return cmd_net_down(args);
    if (*commands.net_kill) return cmd_net_kill(args);
    if (*commands.net_stop) return cmd_net_stop(args);
    if (*commands.net_start) return cmd_net_start(args);
    if (*commands.net_web) return cmd_net_web(args);
    if (*commands.transfer) return cmd_transfer(args);
    if (*commands.balance) return cmd_balance(args);
    if (*commands.tx) return cmd_tx(args);
    if (*commands.explain) return cmd_explain(args);
    if (*commands.demo_traitor) return cmd_demo_traitor(args, dir_given);
    if (*commands.bench) return cmd_bench(args);
    if (*commands.audit) return cmd_audit(args);
    return tc::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"tally: a Byzantine-fault-tolerant replicated ledger — the client"};
    app.footer(
        "Exit codes: 0 ok, 1 failed result (the network answered no, for good), 2 usage or bad\n"
        "input, 3 timeout or network unreachable, 4 transfer not ordered but may still apply\n"
        "(nonce_too_high, unknown_sender: do not pay again with another nonce; see `tally tx`).\n"
        "An ACCOUNT is 64 hex digits, a key file, or a name in DIR/accounts (alice, bob, ...).\n");
    app.require_subcommand(1);
    app.fallthrough();
    Args args;
    app.add_option("--dir", args.dir, "the network folder")->capture_default_str();

    // In the order `tally --help` lists them.
    Commands commands;
    add_key_commands(app, args, commands);
    add_net_commands(app, args, commands);
    add_ledger_commands(app, args, commands);
    add_demo_commands(app, args, commands);
    add_explain_command(app, args, commands);
    add_bench_command(app, args, commands);
    add_audit_command(app, args, commands);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);
        return rc == 0 ? tc::kExitOk : tc::kExitUsage;
    }
    return dispatch(commands, args, app.get_option("--dir")->count() > 0);
}
