// PBFT's Byzantine behaviours as wrappers around an honest engine. See traitor.h.
#include "bft/pbft/traitor.h"

#include <algorithm>

#include "bft/pbft/messages.h"
#include "crypto/envelope.h"
#include "crypto/hash.h"

namespace tally::bft::pbft {

using crypto::MessageType;

namespace {

constexpr size_t kReplayKept = 256;
constexpr size_t kEchoedMax = 100000;

bool is_normal_case(MessageType t) {
    return t == MessageType::kPrePrepare || t == MessageType::kPrepare || t == MessageType::kCommit;
}

// Decodes a normal-case message, lets `change` edit its view, seq and digest (and, for a
// pre-prepare, the batch), and seals the result with `key`. Empty if it does not decode.
template <typename F>
std::string with_normal_case(const crypto::KeyPair& key, const crypto::Envelope& env, F&& change) {
    if (env.type == MessageType::kPrePrepare) {
        pb::PrePrepare pp;
        if (!pp.ParseFromString(env.body)) return {};
        uint64_t view = pp.view(), seq = pp.seq();
        change(&view, &seq, pp.mutable_digest(), &pp);
        // Re-signed whole, header included: a lie honest replicas must judge on its merits.
        return seal_pre_prepare(key, view, seq, hash_from_bytes(pp.digest()),
                                {pp.requests().begin(), pp.requests().end()});
    }
    pb::Vote vote;
    if (!vote.ParseFromString(env.body)) return {};
    uint64_t view = vote.view(), seq = vote.seq();
    change(&view, &seq, vote.mutable_digest(), static_cast<pb::PrePrepare*>(nullptr));
    vote.set_view(view);
    vote.set_seq(seq);
    return crypto::seal(key, env.type, vote.SerializeAsString());
}

}  // namespace

TraitorEngine::TraitorEngine(std::unique_ptr<Engine> honest, std::vector<Behaviour> behaviours,
                             const crypto::KeyPair& key, std::vector<crypto::PublicKey> replicas,
                             ReplicaId id, uint64_t seed)
    : TraitorBase(std::move(honest), std::move(behaviours)),
      key_(key),
      replicas_(std::move(replicas)),
      id_(id),
      rng_(seed) {}

Output TraitorEngine::on_message(ReplicaId from, const crypto::Envelope& envelope, std::string_view raw) {
    Output out = TraitorBase::on_message(from, envelope, raw);
    if (has(Behaviour::kEquivocate) || has(Behaviour::kDoubleVote)) echo_votes(from, envelope, out);
    if (has(Behaviour::kFalseAck) && envelope.type == MessageType::kPrePrepare) {
        // A commit at once, for whatever the primary proposed: no prepare certificate behind it.
        pb::PrePrepare pp;
        if (pp.ParseFromString(envelope.body)) {
            pb::Vote vote;
            vote.set_view(pp.view());
            vote.set_seq(pp.seq());
            vote.set_digest(pp.digest());
            out.send.push_back(Outgoing{bft::kAllReplicas, crypto::seal(key_, MessageType::kCommit, vote.SerializeAsString())});
        }
    }
    return out;
}

std::optional<Behaviour> TraitorEngine::pick_random() {
    static constexpr Behaviour kChoices[] = {Behaviour::kSilent,     Behaviour::kBadSignature, Behaviour::kWrongDigest,
                                             Behaviour::kFutureView, Behaviour::kReplay,       Behaviour::kLyingCheckpoint,
                                             Behaviour::kEquivocate};
    std::uniform_int_distribution<size_t> pick(0, std::size(kChoices));  // the last index: honest
    size_t i = pick(rng_);
    if (i == std::size(kChoices)) return std::nullopt;
    return kChoices[i];
}

Output TraitorEngine::rewrite(Output out) {
    for (Behaviour b : behaviours()) {
        std::vector<Outgoing> sent;
        for (auto& msg : out.send) {
            std::optional<Behaviour> now = b == Behaviour::kRandom ? pick_random() : b;
            if (now) {
                rewrite_one(std::move(msg), *now, sent);
            } else {
                sent.push_back(std::move(msg));  // random chose honesty for this one
            }
        }
        out.send = std::move(sent);
    }
    return out;
}

void TraitorEngine::rewrite_one(Outgoing msg, Behaviour b, std::vector<Outgoing>& sent) {
    auto env = crypto::open(msg.envelope, crypto::OpenOptions{crypto::kEnvelopeMaxBytes, std::nullopt, false});
    if (!env) {
        sent.push_back(std::move(msg));
        return;
    }
    auto reseal = [&](std::string bytes) {
        if (!bytes.empty()) msg.envelope = std::move(bytes);
        sent.push_back(std::move(msg));
    };
    switch (b) {
        case Behaviour::kSilent:
            return;
        case Behaviour::kBadSignature:
            msg.envelope.back() = static_cast<char>(msg.envelope.back() ^ 0x01);
            return reseal({});
        case Behaviour::kWrongDigest:
            if (!is_normal_case(env->type)) return reseal({});
            return reseal(with_normal_case(key_, *env, [](uint64_t*, uint64_t*, std::string* digest, pb::PrePrepare*) {
                *digest = bft::pbft::hash_bytes(crypto::sha256(*digest));
            }));
        case Behaviour::kStaleView:
            if (!is_normal_case(env->type)) return reseal({});
            return reseal(with_normal_case(key_, *env, [](uint64_t* view, uint64_t* seq, std::string*, pb::PrePrepare*) {
                if (*view > 0) *view -= 1; else *seq = 0;
            }));
        case Behaviour::kFutureView:
            if (!is_normal_case(env->type)) return reseal({});
            return reseal(with_normal_case(key_, *env, [](uint64_t* view, uint64_t*, std::string*, pb::PrePrepare*) {
                *view += 1000;
            }));
        case Behaviour::kReplay: {
            std::vector<Outgoing> old;
            if (!sent_before_.empty()) {
                std::uniform_int_distribution<size_t> pick(0, sent_before_.size() - 1);
                for (int i = 0; i < 2; ++i) old.push_back(sent_before_[pick(rng_)]);
            }
            sent_before_.push_back(msg);
            if (sent_before_.size() > kReplayKept) sent_before_.pop_front();
            sent.push_back(std::move(msg));
            for (auto& o : old) sent.push_back(std::move(o));
            return;
        }
        case Behaviour::kForgeClient:
            if (env->type != MessageType::kPrePrepare) return reseal({});
            return reseal(with_normal_case(key_, *env, [](uint64_t*, uint64_t*, std::string* digest, pb::PrePrepare* pp) {
                if (!pp || pp->requests().empty()) return;
                std::string forged = pp->requests(0);
                forged.back() = static_cast<char>(forged.back() ^ 0x01);  // a signature the client never made
                pp->add_requests(forged);
                std::vector<std::string> batch(pp->requests().begin(), pp->requests().end());
                *digest = bft::pbft::hash_bytes(bft::pbft::batch_digest(batch));
            }));
        case Behaviour::kLyingCheckpoint: {
            if (env->type != MessageType::kCheckpoint) return reseal({});
            pb::Checkpoint cp;
            if (!cp.ParseFromString(env->body)) return reseal({});
            cp.set_state_digest(bft::pbft::hash_bytes(crypto::sha256(cp.state_digest())));
            return reseal(crypto::seal(key_, env->type, cp.SerializeAsString()));
        }
        case Behaviour::kLyingVote:
        case Behaviour::kLyingViewChange: {
            if (env->type != MessageType::kViewChange) return reseal({});
            pb::ViewChange vc;
            if (!vc.ParseFromString(env->body)) return reseal({});
            vc.clear_prepared();  // hides what prepared here ...
            pb::PrePrepare fake;  // ... and claims a certificate no primary signed
            fake.set_view(vc.new_view() > 0 ? vc.new_view() - 1 : 0);
            fake.set_seq(vc.stable_seq() + 1);
            fake.set_digest(bft::pbft::hash_bytes(bft::pbft::batch_digest({})));
            vc.add_prepared()->set_pre_prepare(
                crypto::seal(key_, MessageType::kPrePrepareHeader, fake.SerializeAsString()));
            return reseal(crypto::seal(key_, env->type, vc.SerializeAsString()));
        }
        case Behaviour::kEquivocate: {
            // Its honest votes go to no one: each peer gets, by echo_votes, a vote for the
            // digest that peer voted for, and only that one.
            if ((env->type == MessageType::kPrepare || env->type == MessageType::kCommit) &&
                msg.to == bft::kAllReplicas)
                return;
            if (env->type != MessageType::kPrePrepare || msg.to != bft::kAllReplicas) return reseal({});
            pb::PrePrepare pp;
            if (!pp.ParseFromString(env->body) || pp.requests().empty()) return reseal({});
            // Backup number k gets the batch with k extra copies of its last request: a
            // different digest for each, every request still validly signed.
            uint32_t k = 0;
            for (ReplicaId to = 0; to < replicas_.size(); ++to) {
                if (to == id_) continue;
                pb::PrePrepare variant = pp;
                for (uint32_t i = 0; i < k; ++i) variant.add_requests(pp.requests(pp.requests_size() - 1));
                std::vector<std::string> batch(variant.requests().begin(), variant.requests().end());
                sent.push_back(Outgoing{to, seal_pre_prepare(key_, pp.view(), pp.seq(), batch_digest(batch), batch)});
                ++k;
            }
            return;
        }
        case Behaviour::kFalseAck:
            return reseal({});  // (its lie is in on_message)
        case Behaviour::kDoubleVote:
            // Its honest votes go to no one; echo_votes answers each peer in its own words.
            if ((env->type == MessageType::kPrepare || env->type == MessageType::kCommit) &&
                msg.to == bft::kAllReplicas)
                return;
            return reseal({});
        case Behaviour::kWrongReply:
        case Behaviour::kLyingSnapshot:
        case Behaviour::kRandom:
            return reseal({});
    }
}

// Equivocation's second half: vote for whatever digest a peer votes for, to that peer alone.
void TraitorEngine::echo_votes(ReplicaId from, const crypto::Envelope& envelope, Output& out) {
    if (!is_normal_case(envelope.type)) return;
    uint64_t view = 0, seq = 0;
    std::string digest;
    if (envelope.type == MessageType::kPrePrepare) {
        pb::PrePrepare pp;
        if (!pp.ParseFromString(envelope.body)) return;
        view = pp.view(), seq = pp.seq(), digest = pp.digest();
    } else {
        pb::Vote vote;
        if (!vote.ParseFromString(envelope.body)) return;
        view = vote.view(), seq = vote.seq(), digest = vote.digest();
    }
    if (echoed_.size() > kEchoedMax) echoed_.clear();
    if (!echoed_.emplace(view, seq, digest, from).second) return;
    pb::Vote vote;
    vote.set_view(view);
    vote.set_seq(seq);
    vote.set_digest(digest);
    std::string body = vote.SerializeAsString();
    if (view % replicas_.size() != id_)
        out.send.push_back(Outgoing{from, crypto::seal(key_, MessageType::kPrepare, body)});
    out.send.push_back(Outgoing{from, crypto::seal(key_, MessageType::kCommit, body)});
}

}  // namespace tally::bft::pbft
