// `tally explain TX` (explain.h).
#include "client/explain.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <limits>
#include <map>
#include <sstream>

#include "ledger/tx.h"

namespace tally::client {
namespace {

const node::api::pb::TxTrace* trace_of(const ReplicaStatus& r) {
    return r.up && r.reply.has_trace() && r.reply.trace().known() ? &r.reply.trace() : nullptr;
}

// What a client compares replies by: where it executed and how (seq 0: refused, by reason).
std::string outcome_key(const node::api::pb::TxTrace& t) {
    if (t.seq() != 0) return std::to_string(t.seq()) + "/" + std::to_string(t.result());
    return "refused/" + t.refused();
}

int64_t answered_ms(const node::api::pb::TxTrace& t) { return t.seq() != 0 ? t.executed_ms() : t.received_ms(); }

bool answered(const node::api::pb::TxTrace& t) { return t.seq() != 0 || !t.refused().empty(); }

int64_t earliest_ms(const Explained& e) {
    int64_t first = std::numeric_limits<int64_t>::max();
    for (const auto& r : e.replicas) {
        const auto* t = trace_of(r);
        if (!t) continue;
        if (t->received_ms() > 0) first = std::min(first, t->received_ms());
        for (const auto& s : t->steps()) first = std::min(first, s.at_ms());
        if (t->seq() != 0) first = std::min(first, t->executed_ms());
    }
    return first == std::numeric_limits<int64_t>::max() ? 0 : first;
}

std::string votes_text(const node::api::pb::TraceStep& s) {
    std::string out;
    for (const auto v : s.votes()) out += (out.empty() ? "" : " ") + std::to_string(v);
    return out;
}

// One step as a line's text, in the protocol's own words.
std::string step_text(const node::api::pb::TraceStep& s, bft::Protocol protocol) {
    const bool raft = protocol == bft::Protocol::kRaft;
    const std::string view = raft ? "term " : "view ";
    const std::string votes = votes_text(s);
    char line[256];
    if (s.seq() == 0) {
        if (s.phase() == "view-change")
            std::snprintf(line, sizeof(line), "%-12s asks for view %llu (the primary looked faulty)",
                          s.phase().c_str(), static_cast<unsigned long long>(s.view()));
        else if (s.phase() == "new-view")
            std::snprintf(line, sizeof(line), "%-12s enters view %llu, primary %s", s.phase().c_str(),
                          static_cast<unsigned long long>(s.view()), votes.c_str());
        else if (s.phase() == "election")
            std::snprintf(line, sizeof(line), "%-12s campaigns in term %llu", s.phase().c_str(),
                          static_cast<unsigned long long>(s.view()));
        else if (s.phase() == "follows")
            std::snprintf(line, sizeof(line), "%-12s leader %s of term %llu", s.phase().c_str(), votes.c_str(),
                          static_cast<unsigned long long>(s.view()));
        else
            std::snprintf(line, sizeof(line), "%-12s %s%llu, votes %s", s.phase().c_str(), view.c_str(),
                          static_cast<unsigned long long>(s.view()), votes.c_str());
        return line;
    }
    const bool from = s.phase() == "pre-prepare" || s.phase() == "appended" || s.phase() == "caught-up";
    std::snprintf(line, sizeof(line), "%-12s seq %llu  %s%llu  %s %s", s.phase().c_str(),
                  static_cast<unsigned long long>(s.seq()), view.c_str(),
                  static_cast<unsigned long long>(s.view()), from ? "from" : "votes", votes.c_str());
    return line;
}

std::string at_text(int64_t at_ms, int64_t origin_ms, int width = 9) {
    char out[32];
    std::snprintf(out, sizeof(out), "%+*.1f ms", width, static_cast<double>(at_ms - origin_ms));
    return out;
}

std::string utc_text(int64_t ms) {
    const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char out[64];
    std::snprintf(out, sizeof(out), "%02d:%02d:%02d.%03lld UTC", tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<long long>(ms % 1000));
    return out;
}

}  // namespace

bool found_in_ledger(const TxResult& ledger) {
    return ledger.result != static_cast<uint32_t>(ledger::ResultCode::kUnknownTx);
}

std::vector<uint32_t> accepted_replies(const Explained& e) {
    std::vector<std::pair<int64_t, uint32_t>> order;  // (when it answered, replica)
    for (const auto& r : e.replicas)
        if (const auto* t = trace_of(r); t && answered(*t)) order.emplace_back(answered_ms(*t), r.id);
    std::sort(order.begin(), order.end());
    std::map<std::string, std::vector<uint32_t>> alike;
    for (const auto& [at, id] : order) {
        auto& group = alike[outcome_key(*trace_of(e.replicas[id]))];
        group.push_back(id);
        if (group.size() >= e.ordered_quorum) return group;
    }
    return {};
}

nlohmann::json explain_json(const Explained& e) {
    nlohmann::json out{{"tx", crypto::to_hex(e.tx)},
                       {"protocol", std::string(bft::protocol_name(e.protocol))},
                       {"f", e.f},
                       {"ordered_quorum", e.ordered_quorum}};
    nlohmann::json replicas = nlohmann::json::array();
    for (const auto& r : e.replicas) {
        nlohmann::json j{{"id", r.id}, {"up", r.up}};
        if (r.up) {
            j["role"] = r.reply.role();
            j["view"] = r.reply.view();
            const auto& t = r.reply.trace();
            nlohmann::json trace{{"known", t.known()}};
            if (t.known()) {
                if (t.received_ms() > 0) trace["received_ms"] = t.received_ms();
                if (!t.refused().empty()) trace["refused"] = t.refused();
                if (t.seq() != 0) {
                    trace["seq"] = t.seq();
                    trace["executed_ms"] = t.executed_ms();
                    trace["result"] = result_text(t.result());
                }
                trace["steps_dropped"] = t.steps_dropped();
                nlohmann::json steps = nlohmann::json::array();
                for (const auto& s : t.steps())
                    steps.push_back({{"at_ms", s.at_ms()},
                                     {"phase", s.phase()},
                                     {"seq", s.seq()},
                                     {"view", s.view()},
                                     {"votes", std::vector<uint32_t>(s.votes().begin(), s.votes().end())}});
                trace["steps"] = std::move(steps);
            }
            j["trace"] = std::move(trace);
        }
        replicas.push_back(std::move(j));
    }
    out["replicas"] = std::move(replicas);
    out["accepted_from"] = accepted_replies(e);
    if (e.ledger) {
        if (found_in_ledger(*e.ledger))
            out["ledger"] = {{"seq", e.ledger->seq}, {"result", result_text(e.ledger->result)}};
        else
            out["ledger"] = {{"result", result_text(e.ledger->result)}};
    }
    return out;
}

std::string explain_text(const Explained& e) {
    std::ostringstream out;
    const bool raft = e.protocol == bft::Protocol::kRaft;
    out << "transaction " << crypto::to_hex(e.tx) << "\n"
        << (raft ? "Raft" : "PBFT") << ", " << e.replicas.size() << " replicas (f = " << e.f
        << "): a client accepts " << e.ordered_quorum << " matching "
        << (e.ordered_quorum == 1 ? "reply (the leader's)" : "replies") << ".\n";
    const int64_t origin = earliest_ms(e);
    size_t known = 0;
    for (const auto& r : e.replicas) known += trace_of(r) != nullptr;
    if (known == 0) {
        out << "No replica holds a trace of it: none received it, or each has dropped it (a "
               "replica keeps its last 65,536 transactions).\n";
        if (e.ledger) {
            if (found_in_ledger(*e.ledger))
                out << "The ledger has it: block " << e.ledger->seq << ", result "
                    << result_text(e.ledger->result) << ".\n";
            else
                out << "The ledger does not have it: " << result_text(e.ledger->result) << ".\n";
        }
        return out.str();
    }
    out << "Times in ms from " << utc_text(origin) << ", each by its replica's own clock.\n";
    for (const auto& r : e.replicas) {
        out << "\nreplica " << r.id;
        if (!r.up) {
            out << "  down (no answer)\n";
            continue;
        }
        out << "  " << r.reply.role() << ", " << (raft ? "term " : "view ") << r.reply.view() << "\n";
        const auto* t = trace_of(r);
        if (!t) {
            out << "  knows nothing of it (never saw it, or its trace was dropped)\n";
            continue;
        }
        // The lines in time order: received, the steps, executed.
        std::vector<std::pair<int64_t, std::string>> lines;
        if (t->received_ms() > 0) lines.emplace_back(t->received_ms(), "received from a client");
        if (!t->refused().empty())
            lines.emplace_back(t->received_ms(), "refused      " + t->refused() + " (answered at once, never ordered)");
        for (const auto& s : t->steps()) lines.emplace_back(s.at_ms(), step_text(s, e.protocol));
        if (t->seq() != 0)
            lines.emplace_back(t->executed_ms(), "executed     seq " + std::to_string(t->seq()) + "  result " +
                                                     result_text(t->result()));
        std::stable_sort(lines.begin(), lines.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
        for (const auto& [at, text] : lines) out << "  " << at_text(at, origin) << "  " << text << "\n";
        if (t->steps_dropped())
            out << "  (the protocol steps of seq " << t->seq() << " were dropped: only the last 8,192 "
                << "sequence numbers' are kept)\n";
    }
    const auto accepted = accepted_replies(e);
    out << "\n";
    if (accepted.empty()) {
        out << "No " << e.ordered_quorum << " replicas answered alike yet: a client would still be waiting.\n";
    } else {
        const auto& first = *trace_of(e.replicas[accepted.front()]);
        out << "A client waiting for " << e.ordered_quorum << " matching "
            << (e.ordered_quorum == 1 ? "reply" : "replies") << " accepted ";
        for (size_t i = 0; i < accepted.size(); ++i)
            out << (i == 0 ? "" : i + 1 == accepted.size() ? " and " : ", ") << "replica " << accepted[i] << " ("
                << at_text(answered_ms(*trace_of(e.replicas[accepted[i]])), origin, 0) << ")";
        if (first.seq() != 0)
            out << ": seq " << first.seq() << ", result " << result_text(first.result()) << ".\n";
        else
            out << ": refused, " << first.refused() << ".\n";
    }
    return out.str();
}

}  // namespace tally::client
