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

// The envelope of `msg` replaced by `bytes` (unless empty: a rewrite that did not decode sends
// the message as it was), then sent.
void send_as(Outgoing msg, std::string bytes, std::vector<Outgoing>& sent) {
    if (!bytes.empty()) msg.envelope = std::move(bytes);
    sent.push_back(std::move(msg));
}

// A prepare or commit to every replica: what equivocate and double-vote withhold.
bool is_broadcast_vote(const Outgoing& msg, const crypto::Envelope& env) {
    return (env.type == MessageType::kPrepare || env.type == MessageType::kCommit) &&
           msg.to == bft::kAllReplicas;
}

// bad-signature: one flipped bit in the signature, which closes the envelope; in a pre-prepare,
// in its header's signature too, the one that authenticates it (messages.h).
void corrupt_signature(const crypto::KeyPair& key, Outgoing msg, const crypto::Envelope& env,
                       std::vector<Outgoing>& sent) {
    pb::PrePrepare pp;
    if (env.type == MessageType::kPrePrepare && pp.ParseFromString(env.body) && !pp.header().empty()) {
        std::string header = pp.header();
        header.back() = static_cast<char>(header.back() ^ 0x01);
        pp.set_header(std::move(header));
        msg.envelope = crypto::seal(key, MessageType::kPrePrepare, pp.SerializeAsString());
    }
    msg.envelope.back() = static_cast<char>(msg.envelope.back() ^ 0x01);
    sent.push_back(std::move(msg));
}

// The header changes of with_normal_case, one per lie.
// wrong-digest: the hash of the digest, which no batch has.
void name_digest_of_nothing(uint64_t*, uint64_t*, std::string* digest, pb::PrePrepare*) {
    *digest = bft::pbft::hash_bytes(crypto::sha256(*digest));
}

// stale-view: the view before (in view 0, sequence 0).
void step_back_a_view(uint64_t* view, uint64_t* seq, std::string*, pb::PrePrepare*) {
    if (*view > 0)
        *view -= 1;
    else
        *seq = 0;
}

// future-view: a view 1000 ahead.
void jump_views_ahead(uint64_t* view, uint64_t*, std::string*, pb::PrePrepare*) { *view += 1000; }

// forge-client: a pre-prepare's batch gains a copy of its first request with a signature the
// client never made, and the digest names the grown batch. Votes (no batch) go out unchanged.
void add_forged_request(uint64_t*, uint64_t*, std::string* digest, pb::PrePrepare* pp) {
    if (!pp || pp->requests().empty()) return;
    std::string forged = pp->requests(0);
    forged.back() = static_cast<char>(forged.back() ^ 0x01);  // a signature the client never made
    pp->add_requests(forged);
    std::vector<std::string> batch(pp->requests().begin(), pp->requests().end());
    *digest = bft::pbft::hash_bytes(bft::pbft::batch_digest(batch));
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
    out.fold_send_early();  // every message it sends is the traitor's to rewrite
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
    switch (b) {
        case Behaviour::kSilent:
            return;
        case Behaviour::kBadSignature:
            return corrupt_signature(key_, std::move(msg), *env, sent);
        case Behaviour::kWrongDigest:
            return change_normal_case(std::move(msg), *env, name_digest_of_nothing, sent);
        case Behaviour::kStaleView:
            return change_normal_case(std::move(msg), *env, step_back_a_view, sent);
        case Behaviour::kFutureView:
            return change_normal_case(std::move(msg), *env, jump_views_ahead, sent);
        case Behaviour::kReplay:
            return replay_old(std::move(msg), sent);
        case Behaviour::kForgeClient:
            if (env->type != MessageType::kPrePrepare) return send_as(std::move(msg), {}, sent);
            return change_normal_case(std::move(msg), *env, add_forged_request, sent);
        case Behaviour::kLyingCheckpoint:
            return lie_in_checkpoint(std::move(msg), *env, sent);
        case Behaviour::kLyingVote:
        case Behaviour::kLyingViewChange:
            return lie_in_view_change(std::move(msg), *env, sent);
        case Behaviour::kEquivocate:
            return equivocate(std::move(msg), *env, sent);
        case Behaviour::kDoubleVote:
            // Its broadcast votes go to no one; echo_votes answers each peer in its own words.
            if (is_broadcast_vote(msg, *env)) return;
            return send_as(std::move(msg), {}, sent);
        case Behaviour::kFalseAck:       // its lie is in on_message
        case Behaviour::kWrongReply:     // not PBFT's messages: node/traitor.h
        case Behaviour::kLyingSnapshot:  // not PBFT's messages: node/traitor.h
        case Behaviour::kRandom:         // rewrite turns it into one of the others, or honesty
            return send_as(std::move(msg), {}, sent);
    }
}

// Each behaviour below turns one message the honest engine wants to send into what goes out
// instead: `msg` itself (changed or not), nothing, or several messages. `env` is `msg` opened.

// wrong-digest, stale-view, future-view, forge-client: a normal-case message with `change`
// made to its header (and batch), re-signed; as it was if it is not one or does not decode.
void TraitorEngine::change_normal_case(Outgoing msg, const crypto::Envelope& env,
                                       HeaderChange change, std::vector<Outgoing>& sent) {
    send_as(std::move(msg),
            is_normal_case(env.type) ? with_normal_case(key_, env, change) : std::string(), sent);
}

// replay: the message goes out, and with it two it sent before (chosen by the seed).
void TraitorEngine::replay_old(Outgoing msg, std::vector<Outgoing>& sent) {
    std::vector<Outgoing> old;
    if (!sent_before_.empty()) {
        std::uniform_int_distribution<size_t> pick(0, sent_before_.size() - 1);
        for (int i = 0; i < 2; ++i) old.push_back(sent_before_[pick(rng_)]);
    }
    sent_before_.push_back(msg);
    if (sent_before_.size() > kReplayKept) sent_before_.pop_front();
    sent.push_back(std::move(msg));
    for (auto& o : old) sent.push_back(std::move(o));
}

// lying-checkpoint: a checkpoint names a digest of its state digest, which no state has.
void TraitorEngine::lie_in_checkpoint(Outgoing msg, const crypto::Envelope& env,
                                      std::vector<Outgoing>& sent) {
    if (env.type != MessageType::kCheckpoint) return send_as(std::move(msg), {}, sent);
    pb::Checkpoint cp;
    if (!cp.ParseFromString(env.body)) return send_as(std::move(msg), {}, sent);
    cp.set_state_digest(bft::pbft::hash_bytes(crypto::sha256(cp.state_digest())));
    send_as(std::move(msg), crypto::seal(key_, env.type, cp.SerializeAsString()), sent);
}

// lying-view-change (and PBFT's lying-vote): a view change hides what prepared here and claims
// a certificate no primary signed.
void TraitorEngine::lie_in_view_change(Outgoing msg, const crypto::Envelope& env,
                                       std::vector<Outgoing>& sent) {
    if (env.type != MessageType::kViewChange) return send_as(std::move(msg), {}, sent);
    pb::ViewChange vc;
    if (!vc.ParseFromString(env.body)) return send_as(std::move(msg), {}, sent);
    vc.clear_prepared();  // hides what prepared here ...
    pb::PrePrepare fake;  // ... and claims a certificate no primary signed
    fake.set_view(vc.new_view() > 0 ? vc.new_view() - 1 : 0);
    fake.set_seq(vc.stable_seq() + 1);
    fake.set_digest(bft::pbft::hash_bytes(bft::pbft::batch_digest({})));
    vc.add_prepared()->set_pre_prepare(
        crypto::seal(key_, MessageType::kPrePrepareHeader, fake.SerializeAsString()));
    send_as(std::move(msg), crypto::seal(key_, env.type, vc.SerializeAsString()), sent);
}

// equivocate: its broadcast votes go to no one (each peer gets, by echo_votes, a vote for the
// digest that peer voted for, and only that one), and as primary each backup gets its own batch.
void TraitorEngine::equivocate(Outgoing msg, const crypto::Envelope& env,
                               std::vector<Outgoing>& sent) {
    if (is_broadcast_vote(msg, env)) return;
    if (env.type != MessageType::kPrePrepare || msg.to != bft::kAllReplicas)
        return send_as(std::move(msg), {}, sent);
    pb::PrePrepare pp;
    if (!pp.ParseFromString(env.body) || pp.requests().empty())
        return send_as(std::move(msg), {}, sent);
    // Backup number k gets the batch with k extra copies of its last request: a
    // different digest for each, every request still validly signed.
    uint32_t k = 0;
    for (ReplicaId to = 0; to < replicas_.size(); ++to) {
        if (to == id_) continue;
        pb::PrePrepare variant = pp;
        for (uint32_t i = 0; i < k; ++i) variant.add_requests(pp.requests(pp.requests_size() - 1));
        std::vector<std::string> batch(variant.requests().begin(), variant.requests().end());
        sent.push_back(
            Outgoing{to, seal_pre_prepare(key_, pp.view(), pp.seq(), batch_digest(batch), batch)});
        ++k;
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
