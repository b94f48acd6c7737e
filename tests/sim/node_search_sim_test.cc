// The random search on the real node (sim/node_cluster.h): one seed picks a whole schedule —
// protocol (PBFT or Raft, by the seed's parity), f, clients and their load, the consensus
// settings, network faults, for PBFT up to f traitors of random kinds (tallyd's behaviours,
// message mutation, twins), and a timeline of process crashes, power losses (of one replica or
// of all at once), restarts, partitions and slow replicas. Then every fault heals,
// every replica comes back, and every request must complete, the live replicas converge, and
// the history be safe and linearizable. `scripts/simulate --node` runs it for a while.
//   TALLY_NODE_SECONDS=N   search for N seconds (default: the fixed seeds below, for ctest)
//   TALLY_NODE_SEED0=S     from seed S (S, S+1, ...)
//   TALLY_SIM_SEEDS=K      without a search, K seeds (default 300)
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <random>
#include <sstream>

#include "bft/behaviours.h"
#include "sim/byzantine.h"
#include "sim/node_cluster.h"

namespace tally::sim {
namespace {

struct Outcome {
    std::vector<std::string> problems;
    std::string description;
};

Outcome run_node_schedule(uint64_t seed) {
    std::mt19937_64 rng(seed ^ 0x6e6f6465ull);
    auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
    auto between = [&](uint64_t lo, uint64_t hi) { return std::uniform_int_distribution<uint64_t>(lo, hi)(rng); };

    NodeSimConfig config;
    config.seed = seed;
    config.protocol = seed % 2 ? bft::Protocol::kRaft : bft::Protocol::kPbft;
    config.f = chance(0.15) ? 2 : 1;
    config.clients = static_cast<uint32_t>(between(2, 5));
    config.ops_per_client = static_cast<uint32_t>(between(4, 16));
    config.read_fraction = chance(0.5) ? 0.25 : 0.0;
    config.faults.drop = chance(0.5) ? static_cast<double>(between(0, 10)) / 100.0 : 0.0;
    config.faults.duplicate = chance(0.5) ? static_cast<double>(between(0, 10)) / 100.0 : 0.0;
    config.faults.delay_max_ticks = static_cast<uint32_t>(between(0, 5));
    auto& consensus = config.consensus;
    consensus.batch_size_max = static_cast<uint32_t>(between(1, 8));
    consensus.pipeline_depth = static_cast<uint32_t>(between(1, 4));
    consensus.checkpoint_interval = uint64_t{1} << between(1, 3);  // 2, 4 or 8
    consensus.watermark_window = consensus.checkpoint_interval * between(2, 4);
    consensus.view_change_timeout_ticks = between(30, 90);
    const uint32_t n = bft::Quorums(config.protocol, config.f).n();
    std::string traitor_story;
    if (config.protocol == bft::Protocol::kPbft) {
        // Up to f traitors, each of a random kind: tallyd's behaviours (one or two), message
        // mutation or twins (sim/byzantine.h).
        std::vector<bft::ReplicaId> ids(n);
        for (bft::ReplicaId i = 0; i < n; ++i) ids[i] = i;
        std::shuffle(ids.begin(), ids.end(), rng);
        const auto all = bft::all_behaviours();
        for (uint64_t t = between(0, config.f); t > 0; --t) {
            const bft::ReplicaId id = ids[t - 1];
            const uint64_t kind = between(0, 3);
            if (kind <= 1) {
                std::string behaviours;
                for (uint64_t k = between(1, 2); k > 0; --k) {
                    const auto name = std::string(bft::behaviour_name(all[between(0, all.size() - 1)]));
                    if (behaviours.find(name) == std::string::npos)
                        behaviours += (behaviours.empty() ? "" : ",") + name;
                }
                config.traitors[id] = behaviours;
            } else if (kind == 2) {
                const double rate = 0.05 + static_cast<double>(between(0, 45)) / 100.0;
                config.wrap[id] = [rate, n](WrapContext& w) -> std::unique_ptr<bft::Engine> {
                    return std::make_unique<MutatingEngine>(std::move(w.honest), *w.key, n, w.id, w.seed, rate);
                };
                traitor_story += " mutation=" + std::to_string(id);
            } else {
                const uint64_t period = between(5, 80);
                config.wrap[id] = [period](WrapContext& w) -> std::unique_ptr<bft::Engine> {
                    return std::make_unique<TwinsEngine>(std::move(w.honest), w.config, *w.key, *w.genesis, w.seed,
                                                         period);
                };
                traitor_story += " twins=" + std::to_string(id);
            }
        }
    }
    NodeCluster cluster(config);
    std::ostringstream story;
    story << cluster.describe() << traitor_story << "\n";

    // The timeline: at most f replicas faulty at once (traitors count), so the rest can go on.
    const uint32_t down_max = config.f - static_cast<uint32_t>(config.traitors.size() + config.wrap.size());
    std::set<bft::ReplicaId> down;
    const uint64_t events = between(0, 8);
    for (uint64_t e = 0; e < events; ++e) {
        cluster.run_until([] { return false; }, between(20, 250));
        const auto r = static_cast<bft::ReplicaId>(between(0, n - 1));
        const uint64_t kind = between(0, 9);
        if (kind <= 3 && down.size() < down_max && !down.count(r)) {
            const bool power = chance(0.5);
            cluster.crash(r, power ? NodeCluster::CrashKind::kPowerLoss : NodeCluster::CrashKind::kProcess);
            down.insert(r);
            story << "@" << cluster.now() << " " << (power ? "power loss of " : "crash of ") << r << "\n";
        } else if (kind <= 6 && !down.empty()) {
            const bft::ReplicaId back = *down.begin();
            cluster.restart(back);
            down.erase(back);
            story << "@" << cluster.now() << " restart of " << back << "\n";
        } else if (kind == 7) {
            cluster.isolate({r});
            story << "@" << cluster.now() << " partition {" << r << "}\n";
        } else if (kind == 8) {
            if (chance(0.5)) {
                cluster.heal();
                story << "@" << cluster.now() << " heal\n";
            } else {
                const uint64_t extra = between(0, 2 * consensus.view_change_timeout_ticks);
                cluster.slow(r, extra);
                story << "@" << cluster.now() << " slow " << r << " +" << extra << "\n";
            }
        } else if (chance(0.3)) {
            for (bft::ReplicaId i = 0; i < n; ++i) cluster.crash(i, NodeCluster::CrashKind::kPowerLoss);
            for (bft::ReplicaId i = 0; i < n; ++i) cluster.restart(i);
            down.clear();
            story << "@" << cluster.now() << " power loss of every replica\n";
        }
    }
    Outcome out;
    auto safety = cluster.check_safety();
    for (auto& p : safety) out.problems.push_back("safety phase: " + p);
    // Liveness: every fault heals, every replica comes back, clients send more.
    for (bft::ReplicaId r : down) cluster.restart(r);
    cluster.heal();
    cluster.add_requests(2);
    if (!cluster.run_until([&] { return cluster.clients_done(); }, 30000))
        out.problems.push_back("clients did not finish by tick " + std::to_string(cluster.now()));
    if (!cluster.run_until([&] { return cluster.check_converged().empty(); }, 20000))
        for (auto& p : cluster.check_converged()) out.problems.push_back("not converged: " + p);
    for (auto& p : cluster.check_safety()) out.problems.push_back(p);
    if (const auto lin = cluster.check_linearizable(); !lin.linearizable)
        out.problems.push_back("not linearizable: " + lin.explanation);
    // Without traitors, no client ever refuses a reply: honest replicas never contradict what
    // a client accepted.
    if (config.traitors.empty() && config.wrap.empty() && cluster.client_counters().rejected() > 0)
        out.problems.push_back("honest replicas gave a client " + std::to_string(cluster.client_counters().mismatch) +
                               " mismatching and " + std::to_string(cluster.client_counters().malformed) +
                               " malformed replies");
    story << cluster.replica_report();
    out.description = story.str();
    return out;
}

TEST(NodeSearch, RandomSchedules) {
    const char* seconds_env = std::getenv("TALLY_NODE_SECONDS");
    const char* seed_env = std::getenv("TALLY_NODE_SEED0");
    const uint64_t seed0 = seed_env ? std::strtoull(seed_env, nullptr, 10) : 1;
    const bool search = seconds_env != nullptr;
    // Without a search: 300 seeds in ctest (~12 s), TALLY_SIM_SEEDS of them when set
    // (scripts/test's sanitizer pass runs 3).
    const char* seeds_env = std::getenv("TALLY_SIM_SEEDS");
    const uint64_t fixed = seeds_env ? std::strtoull(seeds_env, nullptr, 10) : 300;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(search ? std::atoll(seconds_env) : 0);
    uint64_t runs = 0;
    for (uint64_t seed = seed0;; ++seed) {
        if (search ? (runs > 0 && std::chrono::steady_clock::now() >= until) : seed >= seed0 + fixed) break;
        const Outcome outcome = run_node_schedule(seed);
        ++runs;
        if (!outcome.problems.empty()) {
            std::printf("failed seed %llu\n", static_cast<unsigned long long>(seed));
            ADD_FAILURE() << testing::PrintToString(outcome.problems) << "\n" << outcome.description
                          << "replay: TALLY_NODE_SEED0=" << seed
                          << " TALLY_NODE_SECONDS=0 build/bin/test_sim --gtest_filter=NodeSearch.RandomSchedules";
            if (!search) break;
        }
    }
    std::printf("searched %llu\n", static_cast<unsigned long long>(runs));
}

}  // namespace
}  // namespace tally::sim
