// Raft's traitors (traitor.h).
#include "bft/raft/traitor.h"

#include <algorithm>

#include "bft/raft/raft.pb.h"
#include "crypto/envelope.h"

namespace tally::bft::raft {

namespace {
constexpr int kHurriedTicks = 3;  // equivocate: its clock's ticks per real one

// Drops what the honest engine answered `to` with a message of `type`: the lie takes its place.
void drop_answer(Output& out, ReplicaId to, crypto::MessageType type) {
    std::erase_if(out.send, [&](const Outgoing& o) {
        return o.to == to && o.envelope.size() > 1 && static_cast<uint8_t>(o.envelope[1]) == static_cast<uint8_t>(type);
    });
}
}  // namespace

TraitorEngine::TraitorEngine(std::unique_ptr<RaftEngine> honest, std::vector<Behaviour> behaviours)
    : TraitorBase(std::move(honest), std::move(behaviours)) {}

Output TraitorEngine::on_tick() {
    Output out;
    const bool hurried = has(Behaviour::kEquivocate) || has(Behaviour::kLyingVote);
    for (int i = 0; i < (hurried ? kHurriedTicks : 1); ++i) out.append(TraitorBase::on_tick());
    return out;
}

// false-ack: the honest engine sees the append without its entries (so it follows the leader
// and stores nothing), and the leader hears that all of them are stored. Not yet rewritten.
Output TraitorEngine::falsely_acknowledge(ReplicaId from, const crypto::Envelope& envelope, std::string_view raw) {
    pb::Append append;
    if (!append.ParseFromString(envelope.body)) return honest().on_message(from, envelope, raw);
    const uint64_t claimed = append.prev_index() + static_cast<uint64_t>(append.entries_size());
    pb::Append empty = append;
    empty.clear_entries();
    crypto::Envelope stripped = envelope;
    stripped.body = empty.SerializeAsString();
    Output out = honest().on_message(from, stripped, raw);
    drop_answer(out, from, crypto::MessageType::kRaftAppendReply);
    pb::AppendReply yes;
    yes.set_term(append.term());
    yes.set_success(true);
    yes.set_match_index(claimed);
    yes.set_read_ctx(append.read_ctx());
    out.send.push_back(Outgoing{from, seal_for(from, crypto::MessageType::kRaftAppendReply, yes.SerializeAsString())});
    return out;
}

Output TraitorEngine::on_message(ReplicaId from, const crypto::Envelope& envelope, std::string_view raw) {
    if (has(Behaviour::kFalseAck) && !has(Behaviour::kSilent) && envelope.type == crypto::MessageType::kRaftAppend)
        return rewrite(falsely_acknowledge(from, envelope, raw));
    Output out = TraitorBase::on_message(from, envelope, raw);
    if ((has(Behaviour::kEquivocate) || has(Behaviour::kDoubleVote)) && !has(Behaviour::kSilent) &&
        envelope.type == crypto::MessageType::kRaftVote) {
        // A double vote: whatever the honest engine answered, this candidate gets a yes too.
        pb::Vote vote;
        if (vote.ParseFromString(envelope.body)) {
            pb::VoteReply yes;
            yes.set_term(vote.term());
            yes.set_granted(true);
            yes.set_pre_vote(vote.pre_vote());
            drop_answer(out, from, crypto::MessageType::kRaftVoteReply);
            out.send.push_back(Outgoing{from, seal_for(from, crypto::MessageType::kRaftVoteReply,
                                                                yes.SerializeAsString())});
        }
    }
    return out;
}

std::string TraitorEngine::forked_append(ReplicaId to, const std::string& envelope) const {
    auto env = crypto::open(envelope, crypto::OpenOptions{crypto::kEnvelopeMaxBytes, std::nullopt, false});
    if (!env || env->type != crypto::MessageType::kRaftAppend) return envelope;
    pb::Append append;
    if (!append.ParseFromString(env->body)) return envelope;
    bool changed = false;
    for (auto& entry : *append.mutable_entries()) {
        if (entry.requests_size() == 0) continue;
        entry.mutable_requests()->RemoveLast();
        changed = true;
    }
    return changed ? seal_for(to, crypto::MessageType::kRaftAppend, append.SerializeAsString()) : envelope;
}

std::string TraitorEngine::lying_vote(ReplicaId to, const std::string& envelope) const {
    auto env = crypto::open(envelope, crypto::OpenOptions{crypto::kEnvelopeMaxBytes, std::nullopt, false});
    if (!env || env->type != crypto::MessageType::kRaftVote) return envelope;
    pb::Vote vote;
    if (!vote.ParseFromString(env->body) || vote.term() == 0) return envelope;
    // No voter's last entry can be of this term or later, nor beyond this index.
    vote.set_last_log_term(vote.term() - 1);
    vote.set_last_log_index(uint64_t{1} << 62);
    return seal_for(to, crypto::MessageType::kRaftVote, vote.SerializeAsString());
}

Output TraitorEngine::rewrite(Output out) {
    for (auto* sends : {&out.send, &out.send_early}) {
        if (has(Behaviour::kSilent)) {
            sends->clear();
            continue;
        }
        if (has(Behaviour::kEquivocate)) {
            for (auto& o : *sends)
                if (o.to != kAllReplicas && o.to % 2 == 1) o.envelope = forked_append(o.to, o.envelope);
        }
        if (has(Behaviour::kLyingVote)) {
            for (auto& o : *sends) o.envelope = lying_vote(o.to, o.envelope);
        }
        if (has(Behaviour::kBadSignature)) {
            for (auto& o : *sends)
                if (!o.envelope.empty()) o.envelope.back() = static_cast<char>(o.envelope.back() ^ 0x01);
        }
    }
    return out;
}

}  // namespace tally::bft::raft
