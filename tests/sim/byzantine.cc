// Mutating traitors and twins. See byzantine.h.
#include "sim/byzantine.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/reflection.h>

#include <algorithm>
#include <memory>

#include "bft/pbft/messages.h"
#include "crypto/assert.h"
#include "crypto/envelope.h"
#include "crypto/hash.h"

namespace tally::sim {

namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// The body message of an envelope type (nullptr: not a PBFT message with a body to change).
std::unique_ptr<Message> body_for(crypto::MessageType type) {
    namespace pb = bft::pbft::pb;
    switch (type) {
        case crypto::MessageType::kPrePrepare:
            return std::make_unique<pb::PrePrepare>();
        case crypto::MessageType::kPrepare:
        case crypto::MessageType::kCommit:
            return std::make_unique<pb::Vote>();
        case crypto::MessageType::kCheckpoint:
            return std::make_unique<pb::Checkpoint>();
        case crypto::MessageType::kViewChange:
            return std::make_unique<pb::ViewChange>();
        case crypto::MessageType::kNewView:
            return std::make_unique<pb::NewView>();
        case crypto::MessageType::kFetchCommitted:
            return std::make_unique<pb::FetchCommitted>();
        case crypto::MessageType::kCommitted:
            return std::make_unique<pb::CommittedReply>();
        default:
            return nullptr;
    }
}

// Every (message, field) of `m` and its set sub-messages, depth-first: the mutation targets.
void targets(Message* m, std::vector<std::pair<Message*, const FieldDescriptor*>>& out,
             int depth = 0) {
    const auto* d = m->GetDescriptor();
    const auto* r = m->GetReflection();
    for (int i = 0; i < d->field_count(); ++i) {
        const FieldDescriptor* f = d->field(i);
        out.emplace_back(m, f);
        if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || depth > 2) continue;
        if (f->is_repeated()) {
            for (int k = 0; k < r->FieldSize(*m, f); ++k)
                targets(r->MutableRepeatedMessage(m, f, k), out, depth + 1);
        } else if (r->HasField(*m, f)) {
            targets(r->MutableMessage(m, f), out, depth + 1);
        }
    }
}

}  // namespace

MutatingEngine::MutatingEngine(std::unique_ptr<bft::Engine> honest, const crypto::KeyPair& key,
                               uint32_t n, bft::ReplicaId id, uint64_t seed, double rate)
    : honest_(std::move(honest)), key_(key), n_(n), id_(id), rng_(seed), rate_(rate) {}

std::vector<bft::ReplicaId> MutatingEngine::random_subset() {
    std::vector<bft::ReplicaId> to;
    std::bernoulli_distribution in(0.5);
    for (bft::ReplicaId i = 0; i < n_; ++i)
        if (i != id_ && in(rng_)) to.push_back(i);
    return to;
}

std::string MutatingEngine::mutate_field(const std::string& envelope) {
    crypto::OpenOptions header_only;
    header_only.verify_signature = false;
    auto env = crypto::open(envelope, header_only);
    if (!env) return {};
    auto body = body_for(env->type);
    if (!body || !body->ParseFromString(env->body)) return {};
    std::vector<std::pair<Message*, const FieldDescriptor*>> all;
    targets(body.get(), all);
    if (all.empty()) return {};
    auto [m, f] = all[std::uniform_int_distribution<size_t>(0, all.size() - 1)(rng_)];
    const auto* r = m->GetReflection();
    auto pick = [&](size_t count) {
        return std::uniform_int_distribution<size_t>(0, count - 1)(rng_);
    };
    auto new_bytes = [&](std::string old) {
        if (old.size() == 32) {  // a digest: another one this replica sent, or garbage
            if (!digests_.empty() && pick(2) == 0) return digests_[pick(digests_.size())];
            return bft::pbft::hash_bytes(crypto::sha256(old));
        }
        if (old.empty()) return std::string(32, '\x01');
        switch (pick(3)) {
            case 0:
                old[pick(old.size())] ^= 0x01;
                return old;  // e.g. a signature that fails
            case 1:
                return old.substr(0, old.size() / 2);
            default:
                return std::string();
        }
    };
    if (f->is_repeated()) {
        int size = r->FieldSize(*m, f);
        if (size == 0 || pick(4) == 0) {
            r->ClearField(m, f);
        } else if (pick(2) == 0) {  // drop one entry
            r->SwapElements(m, f, static_cast<int>(pick(size)), size - 1);
            r->RemoveLast(m, f);
        } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {  // duplicate one entry
            r->AddString(m, f, r->GetRepeatedString(*m, f, static_cast<int>(pick(size))));
        } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
            std::unique_ptr<Message> copy(
                r->GetRepeatedMessage(*m, f, static_cast<int>(pick(size))).New());
            copy->CopyFrom(r->GetRepeatedMessage(*m, f, static_cast<int>(pick(size))));
            r->AddMessage(m, f)->CopyFrom(*copy);
        } else {
            r->RemoveLast(m, f);
        }
    } else {
        switch (f->cpp_type()) {
            case FieldDescriptor::CPPTYPE_UINT64: {
                uint64_t v = r->GetUInt64(*m, f);
                const uint64_t choices[] = {v + 1, v - 1, 0, v * 2, v + 1000};
                r->SetUInt64(m, f, choices[pick(std::size(choices))]);
                break;
            }
            case FieldDescriptor::CPPTYPE_UINT32: {
                uint32_t v = r->GetUInt32(*m, f);
                const uint32_t choices[] = {v + 1, v - 1, 0};
                r->SetUInt32(m, f, choices[pick(std::size(choices))]);
                break;
            }
            case FieldDescriptor::CPPTYPE_STRING:
                r->SetString(m, f, new_bytes(r->GetString(*m, f)));
                break;
            case FieldDescriptor::CPPTYPE_BOOL:
                r->SetBool(m, f, !r->GetBool(*m, f));
                break;
            case FieldDescriptor::CPPTYPE_MESSAGE:
                r->ClearField(m, f);
                break;
            default:
                return {};
        }
    }
    // A pre-prepare whose view, seq or digest changed gets a matching signed header (unless
    // the header itself was the change): the lie then reaches the checks behind the header's.
    auto* pp = dynamic_cast<bft::pbft::pb::PrePrepare*>(body.get());
    if (pp && f->name() != "header") {
        std::vector<std::string> batch(pp->requests().begin(), pp->requests().end());
        return bft::pbft::seal_pre_prepare(key_, pp->view(), pp->seq(), bft::pbft::hash_from_bytes(pp->digest()),
                                           batch);
    }
    return crypto::seal(key_, env->type, body->SerializeAsString());
}

bft::Output MutatingEngine::rewrite(bft::Output out) {
    out.fold_send_early();
    std::vector<bft::Outgoing> sent;
    std::uniform_real_distribution<double> coin(0.0, 1.0);
    for (auto& msg : out.send) {
        // Remember the digests it signs, to put one where another belongs later.
        crypto::OpenOptions header_only;
        header_only.verify_signature = false;
        if (auto env = crypto::open(msg.envelope, header_only); env) {
            auto body = body_for(env->type);
            if (body && body->ParseFromString(env->body)) {
                const auto* d = body->GetDescriptor();
                for (int i = 0; i < d->field_count(); ++i) {
                    const auto* f = d->field(i);
                    if (f->type() != FieldDescriptor::TYPE_BYTES || f->is_repeated()) continue;
                    std::string v = body->GetReflection()->GetString(*body, f);
                    if (v.size() != 32) continue;
                    digests_.push_back(v);
                    if (digests_.size() > 64) digests_.pop_front();
                }
            }
        }
        if (coin(rng_) >= rate_) {
            sent.push_back(std::move(msg));
            continue;
        }
        ++mutations_;
        switch (std::uniform_int_distribution<int>(0, 5)(rng_)) {
            case 0:
                break;  // drop
            case 1:     // duplicate
                sent.push_back(msg);
                sent.push_back(std::move(msg));
                break;
            case 2:  // to a subset
                if (msg.to == bft::kAllReplicas) {
                    for (bft::ReplicaId to : random_subset())
                        sent.push_back(bft::Outgoing{to, msg.envelope});
                } else {
                    sent.push_back(std::move(msg));
                }
                break;
            case 3: {  // changed, to a subset; the original to the others
                std::string changed = mutate_field(msg.envelope);
                if (changed.empty() || msg.to != bft::kAllReplicas) {
                    sent.push_back(std::move(msg));
                    break;
                }
                auto subset = random_subset();
                for (bft::ReplicaId to = 0; to < n_; ++to) {
                    if (to == id_) continue;
                    bool changed_here = std::find(subset.begin(), subset.end(), to) != subset.end();
                    sent.push_back(bft::Outgoing{to, changed_here ? changed : msg.envelope});
                }
                break;
            }
            default: {  // changed, to everyone it was for
                std::string changed = mutate_field(msg.envelope);
                if (!changed.empty()) msg.envelope = std::move(changed);
                sent.push_back(std::move(msg));
                break;
            }
        }
    }
    out.send = std::move(sent);
    return out;
}

// --- Twins -----------------------------------------------------------------------------------

TwinsEngine::TwinsEngine(std::unique_ptr<bft::Engine> a, const bft::pbft::Config& config,
                         const crypto::KeyPair& key, const ledger::Genesis& genesis, uint64_t seed,
                         uint64_t period)
    : a_(std::move(a)), config_(config), rng_(seed), period_(std::max<uint64_t>(period, 1)) {
    b_ = bft::pbft::make_engine(config, key, authenticator_b_);
    auto state = ledger::State::open(":memory:", genesis);
    TALLY_ASSERT(state.ok());
    ledger_b_ = std::move(state).value();
    side_.assign(config.replicas.size(), kBoth);
    repartition();
}

void TwinsEngine::repartition() {
    std::uniform_int_distribution<int> pick(1, 3);
    for (auto& s : side_) s = static_cast<Side>(pick(rng_));
}

void TwinsEngine::restrict(std::vector<bft::Outgoing>& send, Side twin) const {
    std::vector<bft::Outgoing> kept;
    for (auto& msg : send) {
        if (msg.to == bft::kAllReplicas) {
            for (bft::ReplicaId to = 0; to < side_.size(); ++to)
                if (to != config_.id && (side_[to] & twin))
                    kept.push_back(bft::Outgoing{to, msg.envelope});
        } else if (msg.to < side_.size() && (side_[msg.to] & twin)) {
            kept.push_back(std::move(msg));
        }
    }
    send = std::move(kept);
}

bft::Output TwinsEngine::route_a(bft::Output out) {
    out.fold_send_early();
    restrict(out.send, kA);
    return out;
}

std::vector<bft::Outgoing> TwinsEngine::run_b(bft::Output first) {
    std::vector<bft::Outgoing> sent;
    std::deque<bft::Output> pending;
    pending.push_back(std::move(first));
    while (!pending.empty()) {
        bft::Output out = std::move(pending.front());
        pending.pop_front();
        out.fold_send_early();
        restrict(out.send, kB);
        for (auto& m : out.send) sent.push_back(std::move(m));
        if (out.fetch_snapshot) b_stuck_ = true;  // no state transfer for twin B: it stays behind
        for (const auto& batch : out.commit) {
            if (b_stuck_) break;
            auto applied = ledger_b_->apply_block(batch.seq, batch.view, batch.requests,
                                                  ledger::Verify::kTrusted);
            if (!applied.ok()) {
                b_stuck_ = true;
                break;
            }
            pending.push_back(b_->on_executed(batch.seq, ledger_b_->last_block().hash()));
        }
        // A traitor orders whatever a peer forwards it.
        for (const auto& request : out.forwarded) pending.push_back(b_->on_client_request(request));
    }
    b_->take_detected();
    return sent;
}

bft::Output TwinsEngine::on_tick() {
    if (++now_ % period_ == 0) repartition();
    bft::Output out = route_a(a_->on_tick());
    for (auto& m : run_b(b_->on_tick())) out.send.push_back(std::move(m));
    return out;
}

bft::Output TwinsEngine::on_message(bft::ReplicaId from, const crypto::Envelope& envelope,
                                    std::string_view raw) {
    bft::Output out;
    Side side = from < side_.size() ? side_[from] : kBoth;
    if (side & kA) out = route_a(a_->on_message(from, envelope, raw));
    if (side & kB)
        for (auto& m : run_b(b_->on_message(from, envelope, raw))) out.send.push_back(std::move(m));
    return out;
}

bft::Output TwinsEngine::on_client_request(const bft::ClientRequest& request) {
    bft::Output out = route_a(a_->on_client_request(request));
    for (auto& m : run_b(b_->on_client_request(request))) out.send.push_back(std::move(m));
    return out;
}

bft::Output TwinsEngine::on_start(const std::vector<std::pair<std::string, std::string>>& records,
                                  uint64_t executed_seq, const crypto::Hash& digest,
                                  const bft::CertificateOf& certificate_of) {
    bft::Output out = route_a(a_->on_start(records, executed_seq, digest, certificate_of));
    // Twin B starts over with the wrapper: from genesis, nothing persisted.
    for (auto& m : run_b(b_->on_start({}, ledger_b_->last_seq(), ledger_b_->last_block().hash(), {})))
        out.send.push_back(std::move(m));
    return out;
}

}  // namespace tally::sim
