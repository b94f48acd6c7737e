// Raft's traitors (traitor.h).
#include "bft/raft/traitor.h"

#include <algorithm>

#include "bft/raft/raft.pb.h"
#include "crypto/envelope.h"

namespace tally::bft::raft {

namespace {
constexpr int kHurriedTicks = 3;  // equivocate: its clock's ticks per real one
}  // namespace

TraitorEngine::TraitorEngine(std::unique_ptr<RaftEngine> honest, std::vector<Behaviour> behaviours,
                             const crypto::KeyPair& key, ReplicaId id)
    : honest_(std::move(honest)), behaviours_(std::move(behaviours)), key_(key), id_(id) {}

bool TraitorEngine::has(Behaviour b) const {
    return std::find(behaviours_.begin(), behaviours_.end(), b) != behaviours_.end();
}

Output TraitorEngine::on_tick() {
    Output out;
    for (int i = 0; i < (has(Behaviour::kEquivocate) ? kHurriedTicks : 1); ++i) out.append(honest_->on_tick());
    return rewrite(std::move(out));
}

Output TraitorEngine::on_message(ReplicaId from, const crypto::Envelope& envelope, std::string_view raw) {
    Output out = rewrite(honest_->on_message(from, envelope, raw));
    if (has(Behaviour::kEquivocate) && !has(Behaviour::kSilent) && envelope.type == crypto::MessageType::kRaftVote) {
        // A double vote: whatever the honest engine answered, this candidate gets a yes too.
        pb::Vote vote;
        if (vote.ParseFromString(envelope.body)) {
            pb::VoteReply yes;
            yes.set_term(vote.term());
            yes.set_granted(true);
            yes.set_pre_vote(vote.pre_vote());
            std::erase_if(out.send, [&](const Outgoing& o) {
                return o.to == from && o.envelope.size() > 1 &&
                       static_cast<uint8_t>(o.envelope[1]) == static_cast<uint8_t>(crypto::MessageType::kRaftVoteReply);
            });
            out.send.push_back(Outgoing{from, crypto::seal(key_, crypto::MessageType::kRaftVoteReply,
                                                           yes.SerializeAsString())});
        }
    }
    return out;
}

Output TraitorEngine::on_client_request(const ClientRequest& request) {
    return rewrite(honest_->on_client_request(request));
}

Output TraitorEngine::on_executed(uint64_t seq, const crypto::Hash& digest) {
    return rewrite(honest_->on_executed(seq, digest));
}

Output TraitorEngine::on_state_restored(uint64_t seq, const crypto::Hash& digest) {
    return rewrite(honest_->on_state_restored(seq, digest));
}

Output TraitorEngine::on_start(const std::vector<std::pair<std::string, std::string>>& records,
                               uint64_t executed_seq, const crypto::Hash& digest,
                               const CertificateOf& certificate_of) {
    return rewrite(honest_->on_start(records, executed_seq, digest, certificate_of));
}

std::string TraitorEngine::forked_append(const std::string& envelope) const {
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
    return changed ? crypto::seal(key_, crypto::MessageType::kRaftAppend, append.SerializeAsString()) : envelope;
}

Output TraitorEngine::rewrite(Output out) {
    if (has(Behaviour::kSilent)) {
        out.send.clear();
        return out;
    }
    if (has(Behaviour::kEquivocate)) {
        for (auto& o : out.send)
            if (o.to != kAllReplicas && o.to % 2 == 1) o.envelope = forked_append(o.envelope);
    }
    if (has(Behaviour::kBadSignature)) {
        for (auto& o : out.send)
            if (!o.envelope.empty()) o.envelope.back() = static_cast<char>(o.envelope.back() ^ 0x01);
    }
    return out;
}

}  // namespace tally::bft::raft
