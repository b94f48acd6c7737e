// ReplyQuorum: the client's f+1 (ordered) / 2f+1 (fast read) matching-reply rule. See the header.
#include "client/reply_quorum.h"

#include <algorithm>

#include "crypto/assert.h"
#include "crypto/reply_batch.h"
#include "ledger/tx.h"

namespace tally::client {
namespace {

// A lying replica could send endless different replies for one request; each replica may
// hold a place in at most this many groups (an honest one needs one; a retransmission after
// a view change repeats the same key, which is a duplicate, not a new group).
constexpr uint32_t kGroupsPerReplicaMax = 2;

std::string_view bytes_of(const crypto::Hash& h) { return crypto::as_bytes(h); }

}  // namespace

ReplyCounters& ReplyCounters::operator+=(const ReplyCounters& other) {
    accepted += other.accepted;
    bad_signature += other.bad_signature;
    malformed += other.malformed;
    mismatch += other.mismatch;
    duplicate += other.duplicate;
    stale += other.stale;
    superseded += other.superseded;
    disagreed += other.disagreed;
    redirected += other.redirected;
    return *this;
}

Result<node::api::pb::Reply> decode_ordered_reply(const crypto::Envelope& envelope) {
    std::string_view bytes = envelope.body;
    std::optional<crypto::BatchedReply> batched;
    if (envelope.type == crypto::MessageType::kBatchReply) {
        auto decoded = crypto::decode_reply_batch(envelope.body);
        if (!decoded) return decoded.error();
        batched = std::move(*decoded);
        bytes = batched->leaf;
    } else if (envelope.type != crypto::MessageType::kReply) {
        return make_error("malformed", "a " + std::string(crypto::type_name(envelope.type)) +
                                           " is not an ordered reply");
    }
    node::api::pb::Reply reply;
    if (!reply.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
        return make_error("malformed", "a reply's body does not decode");
    return reply;
}

ReplyKey reply_key(const node::api::pb::Reply& reply, QuorumKind kind, std::string_view state_digest) {
    ReplyKey key;
    key.tx_id = reply.tx_id();
    key.client = reply.client();
    key.nonce = reply.nonce();
    key.result = reply.result();
    key.seq = reply.seq();
    key.value = reply.value();
    key.account_nonce = reply.account_nonce();
    if (kind == QuorumKind::kRead) key.state_digest = std::string(state_digest);
    return key;
}

bool supersedes(const ReplyKey& later, const ReplyKey& earlier, bool query) {
    const auto not_final = [](uint32_t result) {
        return result == static_cast<uint32_t>(ledger::ResultCode::kNonceTooHigh) ||
               result == static_cast<uint32_t>(ledger::ResultCode::kUnknownSender) ||
               result == static_cast<uint32_t>(ledger::ResultCode::kBusy);
    };
    if (later.tx_id != earlier.tx_id || later.client != earlier.client || later.nonce != earlier.nonce)
        return false;
    // A replica's refusal to admit (seq 0: never ordered, for a reason that may be its lag)
    // does not contradict an ordered result either way: an honest replica that had not yet
    // executed the block funding the sender sends one while the others order the request.
    if (later.seq == 0 && earlier.seq != 0 && not_final(later.result)) return true;
    if (query) return later.seq != earlier.seq;
    return not_final(earlier.result) && later.seq > earlier.seq;
}

ReplyQuorum::ReplyQuorum(QuorumKind kind, uint32_t quorum, uint32_t n,
                         const ExpectedRequest& expected, VerifiedRoots* roots)
    : kind_(kind),
      quorum_(quorum),
      n_(n),
      expected_(expected),
      roots_(roots),
      groups_per_replica_(n, 0) {
    TALLY_ASSERT(quorum_ >= 1 && quorum_ <= n_);
}

Vote ReplyQuorum::add(uint32_t replica, const crypto::PublicKey& replica_key,
                      std::string_view frame) {
    TALLY_ASSERT(replica < n_);
    // Frame checks only: the signature is checked when the reply could complete a quorum.
    crypto::OpenOptions options;
    options.expected_sender = replica_key;
    options.verify_signature = false;
    auto envelope = crypto::open(frame, options);
    if (!envelope) {
        ++counters_.malformed;
        return Vote::kRejected;
    }
    Member member;
    member.replica = replica;
    member.key = replica_key;
    if (kind_ == QuorumKind::kOrdered) {
        auto reply = decode_ordered_reply(*envelope);
        if (!reply) {
            ++counters_.malformed;
            return Vote::kRejected;
        }
        member.reply = std::move(*reply);
    } else {
        if (envelope->type != crypto::MessageType::kReadReply) {
            ++counters_.malformed;
            return Vote::kRejected;
        }
        node::api::pb::ReadReply read;
        if (!read.ParseFromString(envelope->body) || !read.has_reply()) {
            ++counters_.malformed;
            return Vote::kRejected;
        }
        member.reply = std::move(*read.mutable_reply());
        member.state_digest = read.state_digest();
    }
    // The reply must be about this request, from this replica.
    const auto& r = member.reply;
    if (r.tx_id() != bytes_of(expected_.tx_id) || r.client() != crypto::as_bytes(expected_.client) ||
        r.nonce() != expected_.nonce || r.replica() != replica) {
        ++counters_.mismatch;
        return Vote::kRejected;
    }

    const ReplyKey key = reply_key(r, kind_, member.state_digest);
    if (accepted_key_) {
        // Late: the result is decided. Agreeing replies are fine; others are counted as lies
        // (without spending a verification on them: either way they are not used).
        if (key == *accepted_key_) return Vote::kLate;
        if (kind_ == QuorumKind::kRead) {
            ++counters_.disagreed;
        } else if (supersedes(key, *accepted_key_, expected_.query)) {
            ++counters_.superseded;
        } else {
            ++counters_.mismatch;
        }
        return Vote::kLate;
    }

    auto& group = groups_[key];
    for (const auto& m : group) {
        if (m.replica == replica) {
            ++counters_.duplicate;
            return Vote::kDuplicate;
        }
    }
    if (groups_per_replica_[replica] >= kGroupsPerReplicaMax) {
        if (group.empty()) groups_.erase(key);
        ++counters_.mismatch;
        return Vote::kRejected;
    }
    member.frame = std::string(frame);
    group.push_back(std::move(member));
    ++groups_per_replica_[replica];
    if (group.size() + 1 < quorum_) return Vote::kPending;

    verify_group(group);  // one short of a quorum, or complete (reply_quorum.h: "lazily")
    if (group.size() < quorum_) {
        // Our reply may have been the bad one; report that precisely.
        const bool ours_dropped = std::none_of(group.begin(), group.end(), [&](const Member& m) {
            return m.replica == replica;
        });
        if (group.empty()) groups_.erase(key);
        return ours_dropped ? Vote::kRejected : Vote::kPending;
    }

    accepted_key_ = key;
    accepted_ = group.front().reply;
    accepted_digest_ = group.front().state_digest;
    counters_.accepted += group.size();
    // Replies that disagreed with the accepted result: lies, for ordered requests (every honest
    // replica executes a request at the same point); replicas at other points, for reads.
    for (const auto& [other_key, members] : groups_) {
        if (other_key == key) continue;
        if (kind_ == QuorumKind::kRead) {
            counters_.disagreed += members.size();
        } else if (supersedes(other_key, key, expected_.query)) {
            counters_.superseded += members.size();
        } else {
            counters_.mismatch += members.size();
        }
    }
    groups_.clear();
    return Vote::kAccepted;
}

void ReplyQuorum::verify_group(std::vector<Member>& group) {
    for (auto it = group.begin(); it != group.end();) {
        if (it->verified) {
            ++it;
            continue;
        }
        if (verify_member(*it)) {
            it->verified = true;
            it->frame.clear();
            it->frame.shrink_to_fit();
            ++it;
        } else {
            ++counters_.bad_signature;
            // A forged frame must not keep the real replica from being counted later.
            --groups_per_replica_[it->replica];
            it = group.erase(it);
        }
    }
}

bool ReplyQuorum::verify_member(const Member& member) {
    crypto::OpenOptions options;
    options.expected_sender = member.key;
    options.verify_signature = false;
    auto envelope = crypto::open(member.frame, options);
    if (!envelope) return false;
    if (envelope->type != crypto::MessageType::kBatchReply) {
        options.verify_signature = true;
        return crypto::open(member.frame, options).ok();
    }
    // The path leads to a root (a few hashes); only a root not seen before costs a signature.
    auto reply = crypto::decode_reply_batch(envelope->body);
    if (!reply) return false;
    auto claim = crypto::reply_batch_claim(*reply);
    if (!claim) return false;
    if (roots_ && roots_->contains(member.key, *claim)) return true;
    if (!crypto::verify_reply_batch(member.key, *claim, envelope->signature)) return false;
    if (roots_) roots_->insert(member.key, std::move(*claim));
    return true;
}

bool ReplyQuorum::impossible() const {
    if (done()) return false;
    const uint32_t silent = n_ - std::min(n_, replicas_heard());
    size_t best = 0;
    for (const auto& [key, members] : groups_) best = std::max(best, members.size());
    return best + silent < quorum_;
}

uint32_t ReplyQuorum::replicas_heard() const {
    std::set<uint32_t> heard;
    for (const auto& [key, members] : groups_)
        for (const auto& m : members) heard.insert(m.replica);
    return static_cast<uint32_t>(heard.size());
}

}  // namespace tally::client
