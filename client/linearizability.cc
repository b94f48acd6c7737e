// Wing & Gong's linearizability search with Lowe's memoisation. See linearizability.h.
//
// The history becomes a doubly linked list of call and return events in time order. The
// search walks it: at a call it tries to linearize that operation now (the model must agree
// with what the client saw, and the pair (set of linearized operations, model state) must be
// new — Lowe's cache); at a return whose call is still in the list, every operation that could
// come first has been tried, so it backtracks. When the list is empty, the order found is a
// linearization.
#include "client/linearizability.h"

#include <algorithm>
#include <set>

namespace tally::client {

LedgerModel::LedgerModel(std::map<crypto::PublicKey, uint64_t> genesis_balances) {
    for (const auto& [key, balance] : genesis_balances) accounts_[key] = {balance, 0};
}

bool LedgerModel::step(const Operation& op) {
    using ledger::ResultCode;
    if (!op.is_transfer) {
        auto it = accounts_.find(op.balance.account);
        if (!op.returned) return true;
        if (it == accounts_.end()) return op.result == ResultCode::kUnknownAccount;
        return op.result == ResultCode::kOk && op.read_balance == it->second.first &&
               op.read_nonce == it->second.second;
    }
    const TransferOp& t = op.transfer;
    ResultCode expected = ResultCode::kOk;
    auto from = accounts_.find(t.from);
    if (from == accounts_.end()) {
        expected = ResultCode::kUnknownSender;
    } else if (t.nonce <= from->second.second) {
        expected = ResultCode::kNonceTooLow;
    } else if (t.nonce > from->second.second + 1) {
        expected = ResultCode::kNonceTooHigh;
    } else if (t.amount == 0) {
        expected = ResultCode::kZeroAmount;
    } else if (t.from == t.to) {
        expected = ResultCode::kSelfTransfer;
    } else if (from->second.first < t.amount) {
        expected = ResultCode::kInsufficientFunds;
    } else {
        auto to = accounts_.find(t.to);
        uint64_t to_balance = to == accounts_.end() ? 0 : to->second.first;
        if (to_balance > UINT64_MAX - t.amount) expected = ResultCode::kOverflow;
    }
    if (op.returned && op.result != expected) return false;
    // A transfer that passed the nonce checks uses its nonce, whether it moved money or not.
    bool past_nonce_checks = expected == ResultCode::kOk || expected == ResultCode::kZeroAmount ||
                             expected == ResultCode::kSelfTransfer || expected == ResultCode::kInsufficientFunds ||
                             expected == ResultCode::kOverflow;
    if (past_nonce_checks) accounts_[t.from].second = t.nonce;
    if (expected == ResultCode::kOk) {
        accounts_[t.from].first -= t.amount;
        accounts_[t.to].first += t.amount;
    }
    return true;
}

namespace {

struct Event {
    bool is_call = false;
    size_t op = 0;
    uint64_t time = 0;
    Event* match = nullptr;  // call <-> return
    Event* prev = nullptr;
    Event* next = nullptr;
};

// Takes a call and its return out of the list (the operation is linearized).
void lift(Event* call) {
    call->prev->next = call->next;
    if (call->next) call->next->prev = call->prev;
    Event* ret = call->match;
    ret->prev->next = ret->next;
    if (ret->next) ret->next->prev = ret->prev;
}

// Puts them back, in the reverse order.
void unlift(Event* call) {
    Event* ret = call->match;
    ret->prev->next = ret;
    if (ret->next) ret->next->prev = ret;
    call->prev->next = call;
    if (call->next) call->next->prev = call;
}

}  // namespace

CheckResult check_linearizable(const std::vector<Operation>& history, const LedgerModel& initial,
                               uint64_t max_steps) {
    CheckResult result;
    const size_t n = history.size();
    if (n == 0) {
        result.linearizable = true;
        return result;
    }
    // Events in time order; at equal times calls come first (overlapping, so either order).
    // An unknown outcome returns after everything else.
    std::vector<Event> events(2 * n);
    std::vector<Event*> order;
    for (size_t i = 0; i < n; ++i) {
        Event* call = &events[2 * i];
        Event* ret = &events[2 * i + 1];
        call->is_call = true;
        call->op = ret->op = i;
        call->time = history[i].invoke;
        ret->time = history[i].returned ? *history[i].returned : UINT64_MAX;
        call->match = ret;
        ret->match = call;
        order.push_back(call);
        order.push_back(ret);
    }
    std::stable_sort(order.begin(), order.end(), [](const Event* a, const Event* b) {
        if (a->time != b->time) return a->time < b->time;
        return a->is_call && !b->is_call;
    });
    Event head;
    Event* prev = &head;
    for (Event* e : order) {
        prev->next = e;
        e->prev = prev;
        prev = e;
    }

    std::vector<bool> linearized(n, false);
    std::set<std::pair<std::vector<bool>, LedgerModel>> cache;
    std::vector<std::pair<Event*, LedgerModel>> stack;
    LedgerModel state = initial;
    Event* entry = head.next;
    size_t deepest = 0;
    uint64_t steps = 0;
    while (head.next != nullptr) {
        if (++steps > max_steps) {
            result.complete = false;
            result.explanation = "search bound reached after " + std::to_string(max_steps) + " steps";
            return result;
        }
        if (entry->is_call) {
            LedgerModel next = state;
            bool ok = next.step(history[entry->op]);
            if (ok) {
                linearized[entry->op] = true;
                if (cache.emplace(linearized, next).second) {
                    stack.emplace_back(entry, state);
                    deepest = std::max(deepest, stack.size());
                    state = std::move(next);
                    lift(entry);
                    entry = head.next;
                    continue;
                }
                linearized[entry->op] = false;
            }
            entry = entry->next;
        } else {
            if (stack.empty()) {
                result.explanation = "no linearization: at most " + std::to_string(deepest) + " of " +
                                     std::to_string(n) + " operations can be ordered; operation " +
                                     std::to_string(entry->op) + " (client " +
                                     std::to_string(history[entry->op].client) +
                                     ") returned before any order could explain what it saw";
                return result;
            }
            auto [call, saved] = std::move(stack.back());
            stack.pop_back();
            state = std::move(saved);
            linearized[call->op] = false;
            unlift(call);
            entry = call->next;
        }
    }
    result.linearizable = true;
    return result;
}

}  // namespace tally::client
