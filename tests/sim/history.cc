// The shared client-side checks. See history.h.
#include "sim/history.h"

#include <map>

namespace tally::sim {

std::vector<std::string> check_acknowledged(const std::vector<ClientOp>& history, const ledger::State& ledger,
                                            uint32_t id) {
    std::vector<std::string> problems;
    for (const auto& op : history) {
        if (op.is_read || op.return_tick == 0 || op.result != ledger::ResultCode::kOk) continue;
        if (ledger.last_seq() < op.seq) continue;
        auto t = ledger.transaction(op.tx_id);
        if (!t || t->code != ledger::ResultCode::kOk || t->seq != op.seq)
            problems.push_back("replica " + std::to_string(id) + " lacks acknowledged tx " +
                               crypto::to_hex(op.tx_id).substr(0, 16) + " at seq " + std::to_string(op.seq));
    }
    return problems;
}

std::vector<std::string> check_nonces(const std::vector<ClientOp>& history,
                                      const std::vector<crypto::PublicKey>& clients, const ledger::State& ledger,
                                      uint32_t id) {
    std::vector<std::string> problems;
    for (uint32_t c = 0; c < clients.size(); ++c) {
        uint64_t ok = 0;
        for (const auto& op : history)
            if (op.client == c && !op.is_read && op.return_tick && ledger::consumes_nonce(op.result)) ++ok;
        auto a = ledger.account(clients[c]);
        if (!a || a->nonce != ok)
            problems.push_back("client " + std::to_string(c) + " made " + std::to_string(ok) + " ok transfers but replica " +
                               std::to_string(id) + " applied " + std::to_string(a ? a->nonce : 0));
    }
    return problems;
}

std::vector<std::string> check_converged(const std::vector<ClientOp>& history,
                                         const std::vector<crypto::PublicKey>& clients,
                                         const std::vector<std::pair<uint32_t, const ledger::State*>>& live) {
    std::vector<std::string> problems;
    for (const auto& [id, ledger] : live) {
        const auto& [first_id, first] = live.front();
        if (ledger->last_seq() != first->last_seq() || ledger->state_digest() != first->state_digest())
            problems.push_back("replica " + std::to_string(id) + " at seq " + std::to_string(ledger->last_seq()) +
                               " digest " + crypto::to_hex(ledger->state_digest()).substr(0, 12) + ", replica " +
                               std::to_string(first_id) + " at seq " + std::to_string(first->last_seq()));
        auto wrong = check_nonces(history, clients, *ledger, id);
        problems.insert(problems.end(), wrong.begin(), wrong.end());
    }
    return problems;
}

client::CheckResult check_history(const std::vector<ClientOp>& history,
                                  const std::vector<crypto::PublicKey>& clients) {
    std::map<crypto::PublicKey, uint64_t> genesis;
    for (const auto& c : clients) genesis[c] = kClientBalance;
    std::vector<client::Operation> ops;
    for (const auto& op : history) {
        client::Operation o;
        o.client = op.client;
        o.invoke = op.invoke_tick;
        if (op.return_tick) o.returned = op.return_tick;
        o.is_transfer = !op.is_read;
        o.transfer = {clients[op.client], clients[op.to_client], op.amount, op.nonce};
        o.balance.account = clients[op.to_client];
        o.result = op.result;
        o.read_balance = op.read_balance;
        o.read_nonce = op.read_nonce;
        ops.push_back(o);
    }
    return client::check_linearizable(ops, client::LedgerModel(genesis));
}

}  // namespace tally::sim
