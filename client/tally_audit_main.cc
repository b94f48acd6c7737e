// `tally-audit`: what `tally audit --data DIR` runs (tally execs it). Checks one replica's data
// folder offline against network.json (ledger/audit.h): the whole chain, every block's hash
// link, transaction root, commit certificate (PBFT's rule, bft/pbft/certificate.h, with the
// replica keys; under Raft the executed entry the block keeps, bft/raft/block_record.h) and
// state digest. It links the SQLite ledger and the certificate rule, which
// `tally` itself does not (client/CMakeLists.txt); no consensus engine runs.
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bft/pbft/certificate.h"
#include "bft/raft/block_record.h"
#include "bft/quorum.h"
#include "client/cli.h"
#include "ledger/audit.h"
#include "node/api/network_config.h"

namespace tc = tally::client;
using tally::Error;

namespace {

int fail(const Error& error) {
    std::cerr << "tally audit: " << error.message << "\n";
    return tc::exit_code_for(error);
}

void print_json(const nlohmann::json& j) { std::cout << j.dump(2) << std::endl; }

struct Args {
    std::string dir = std::string(tc::kDefaultDir);
    std::string data_dir;
    std::string network_file;
    bool json = false;
};

// `tally audit --data DIR`: one replica's data folder, offline (ledger/audit.h). The commit
// certificates are checked with PBFT's rule (bft/pbft/certificate.h) against the replica keys
// in network.json; no consensus engine runs.
int cmd_audit(const Args& args) {
    const std::string network = args.network_file.empty() ? args.dir + "/network.json" : args.network_file;
    auto config = tally::node::api::load_network_config(network);
    if (!config) return fail(config.error());
    const std::string ledger_path = args.data_dir + "/ledger.db";
    if (::access(ledger_path.c_str(), R_OK) != 0)
        return fail(tally::make_error("usage", ledger_path + ": no ledger to audit (is --data a replica's data folder?)"));
    std::vector<tally::crypto::PublicKey> keys;
    for (const auto& replica : config->replicas) keys.push_back(replica.public_key);
    const size_t quorum = tally::bft::ByzantineQuorum{config->f}.quorum();
    tally::ledger::AuditOptions options;
    options.genesis = config->genesis;
    options.checkpoint_interval = config->consensus.checkpoint_interval;
    const bool raft = config->protocol == tally::bft::Protocol::kRaft;
    options.check_certificate = [&](uint64_t seq, std::string_view certificate)
        -> tally::Result<std::vector<std::string>> {
        // Raft keeps the executed log entry (bft/raft/block_record.h): nothing to check but
        // its index; the audit still checks what it holds against the block.
        if (raft) return tally::bft::raft::block_record_requests(seq, certificate);
        auto batch = tally::bft::pbft::check_commit_certificate(certificate, keys, quorum);
        if (!batch) return batch.error();
        if (batch->seq != seq)
            return tally::make_error("bad_certificate", "it certifies seq " + std::to_string(batch->seq));
        return std::move(batch->requests);
    };
    auto report = tally::ledger::audit_ledger(ledger_path, options);
    if (!report) {
        if (report.error().code == "audit_failed") {
            if (args.json) {
                print_json({{"ok", false}, {"ledger", ledger_path}, {"error", report.error().message}});
            }
            std::cerr << "tally audit: " << ledger_path << ": FAILED: " << report.error().message << "\n";
            return tc::kExitFailed;
        }
        return fail(report.error());
    }
    const auto& r = *report;
    if (args.json) {
        print_json({{"ok", true},
                    {"ledger", ledger_path},
                    {"last_seq", r.last_seq},
                    {"blocks", r.blocks},
                    {"certificates", r.certificates},
                    {"transactions", r.transactions},
                    {"checkpoints", r.checkpoints},
                    {"histories", r.histories},
                    {"accounts", r.accounts},
                    {"records", r.records}});
        return tc::kExitOk;
    }
    std::cout << "audited " << ledger_path << " against " << network << " (" << config->n()
              << " replicas, f = " << config->f << ")\n"
              << "  blocks          " << r.blocks << " (0.." << r.last_seq
              << "), no gap; every stored hash and hash link holds; block 0 is network.json's genesis\n"
              << "  certificates    " << r.certificates
              << (raft ? " Raft entry records (index, term, requests): Raft keeps no proof of agreement "
                         "(crash-fault model), so these show what was executed, not that a majority "
                         "stored it\n"
                       : " valid: the primary's pre-prepare and " + std::to_string(quorum) +
                             " (2f+1) commits of distinct replicas, signatures checked\n")
              << "  transactions    " << r.transactions
              << " in the certified batches; every block's transaction root matches\n"
              << "  state digests   " << r.certificates
              << " recomputed by replaying the batches from genesis, all match (" << r.checkpoints
              << " checkpoints, every " << config->consensus.checkpoint_interval << ")\n"
              << "  histories       " << r.histories
              << " stored history digests match (blocks fetched by backfill store none)\n"
              << "  state           " << r.accounts << " accounts and " << r.records
              << " transaction records, as the chain leaves them\n"
              << "the chain is whole and valid\n";
    return tc::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
    Args args;
    CLI::App app{"tally audit: check one replica's data folder offline"};
    app.add_option("--dir", args.dir, "the network folder (default ./tally-net)");
    app.add_option("--data", args.data_dir, "the replica's data folder (holding ledger.db)")->required();
    app.add_option("--network", args.network_file, "the network file with the replica keys (default DIR/network.json)");
    app.add_flag("--json", args.json, "print the result as JSON");
    CLI11_PARSE(app, argc, argv);
    return cmd_audit(args);
}
