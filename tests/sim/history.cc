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
