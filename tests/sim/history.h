// What the simulator knows of its clients: the keys a seed gives, the genesis that
// funds them, and the checks on what the clients were told (exactly once, linearizable).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "client/linearizability.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "ledger/state.h"
#include "ledger/tx.h"

namespace tally::sim {

inline constexpr uint64_t kClientBalance = 1'000'000;  // each simulated client's genesis balance

// What a client saw: the basis of the exactly-once check (and of the linearizability checker).
struct ClientOp {
    uint32_t client = 0;
    crypto::Hash tx_id{};
    uint64_t invoke_tick = 0;
    uint64_t return_tick = 0;  // 0 while unanswered
    ledger::ResultCode result = ledger::ResultCode::kOk;
    uint64_t seq = 0;
    uint64_t amount = 0;
    uint32_t to_client = 0;
    uint64_t nonce = 0;
    bool is_read = false;        // an ordered balance query of `to_client`'s account
    uint64_t read_balance = 0;
    uint64_t read_nonce = 0;
};

// Keys are a function of (seed, role, index) so a run replays exactly. Roles: 0 replicas,
// 1 clients.
inline crypto::Seed sim_key_seed(uint64_t sim_seed, uint64_t role, uint64_t index) {
    crypto::Sha256 h;
    h.update(std::string_view("tally/sim/key"));
    h.update_u64(sim_seed).update_u64(role).update_u64(index);
    return h.finish();
}

// Exactly once: every acknowledged ok transfer is in `ledger` (when it got that far) once, ok,
// at the seq its client was told. One line per problem, naming replica `id`.
std::vector<std::string> check_acknowledged(const std::vector<ClientOp>& history, const ledger::State& ledger,
                                            uint32_t id);

// Convergence, once faults heal: every ledger in `live` (honest replicas that are up, by id) is
// at the same seq with the same state digest, and in each, every client's ok transfers used
// one nonce each (check_nonces). One line per problem.
std::vector<std::string> check_converged(const std::vector<ClientOp>& history,
                                         const std::vector<crypto::PublicKey>& clients,
                                         const std::vector<std::pair<uint32_t, const ledger::State*>>& live);

// Each client's ok transfers used one nonce each: in `ledger` (replica `id`'s, up to date), the
// nonce of client c's account (`clients[c]`) is the number of its acknowledged transfers that
// consumed one. One line per problem.
std::vector<std::string> check_nonces(const std::vector<ClientOp>& history,
                                      const std::vector<crypto::PublicKey>& clients, const ledger::State& ledger,
                                      uint32_t id);

// The clients' history as the linearizability checker reads it, and its verdict. `clients`:
// each client's account, funded with kClientBalance at genesis.
client::CheckResult check_history(const std::vector<ClientOp>& history,
                                  const std::vector<crypto::PublicKey>& clients);

}  // namespace tally::sim
