// Commit certificates. See certificate.h.
#include "bft/pbft/certificate.h"

#include <optional>
#include <set>

#include "bft/pbft/messages.h"
#include "crypto/envelope.h"

namespace tally::bft::pbft {

namespace {

Error bad(const std::string& why) { return make_error("bad_certificate", why); }

std::optional<uint32_t> replica_of(const crypto::PublicKey& key,
                                   const std::vector<crypto::PublicKey>& replicas) {
    for (uint32_t i = 0; i < replicas.size(); ++i)
        if (replicas[i] == key) return i;
    return std::nullopt;
}

}  // namespace

Result<CertifiedBatch> check_commit_certificate(const pb::CommittedProof& proof,
                                                const std::vector<crypto::PublicKey>& replicas,
                                                size_t quorum) {
    if (replicas.empty()) return bad("no replica keys");
    // Shape, from the headers alone: a certificate padded with copies costs no signature.
    if (static_cast<size_t>(proof.commits_size()) != quorum)
        return bad("it holds " + std::to_string(proof.commits_size()) + " commits, not " +
                   std::to_string(quorum) + " (2f+1)");
    crypto::OpenOptions header_only;
    header_only.verify_signature = false;
    std::set<uint32_t> senders;
    for (const auto& raw : proof.commits()) {
        auto env = crypto::open(raw, header_only);
        if (!env) return bad("a commit does not frame as an envelope (" + env.error().code + ")");
        if (env->type != crypto::MessageType::kCommit) return bad("a commit is not of type commit");
        auto sender = replica_of(env->sender, replicas);
        if (!sender) return bad("a commit is signed by a key that is not a replica's");
        if (!senders.insert(*sender).second)
            return bad("two commits from replica " + std::to_string(*sender));
    }

    // The pre-prepare is authenticated by its header (messages.h), not its envelope's signature;
    // one certified before headers (d839607) has none, and its envelope's signature is checked.
    auto pp_env = crypto::open(proof.pre_prepare(), header_only);
    if (!pp_env) return bad("the pre-prepare does not open (" + pp_env.error().code + ")");
    if (pp_env->type != crypto::MessageType::kPrePrepare) return bad("the pre-prepare is not of type pre-prepare");
    auto primary = replica_of(pp_env->sender, replicas);
    if (!primary) return bad("the pre-prepare is signed by a key that is not a replica's");
    pb::PrePrepare pp;
    if (!decode(pp_env->body, pp)) return bad("the pre-prepare's body does not decode");
    if (pp.header().empty() ? !crypto::open(proof.pre_prepare()).ok()
                            : !header_binds(pp, pp_env->sender, /*check_signature=*/true))
        return bad("the pre-prepare's header does not verify, or names another view, seq or batch");
    const uint64_t n = replicas.size();
    if (*primary != pp.view() % n)
        return bad("the pre-prepare of view " + std::to_string(pp.view()) + " is signed by replica " +
                   std::to_string(*primary) + ", not by its primary " + std::to_string(pp.view() % n));
    std::vector<std::string> batch(pp.requests().begin(), pp.requests().end());
    const crypto::Hash digest = hash_from_bytes(pp.digest());
    if (batch_digest(batch) != digest) return bad("the pre-prepare's digest is not its batch's");

    for (const auto& raw : proof.commits()) {
        auto env = crypto::open(raw);
        if (!env) {
            crypto::OpenOptions header;
            header.verify_signature = false;
            auto read = crypto::open(raw, header);
            const auto who = read ? replica_of(read->sender, replicas) : std::nullopt;
            return bad("the commit of replica " + (who ? std::to_string(*who) : std::string("?")) +
                       " does not verify (" + env.error().code + ")");
        }
        const uint32_t sender = *replica_of(env->sender, replicas);
        pb::Vote vote;
        if (!decode(env->body, vote))
            return bad("the commit of replica " + std::to_string(sender) + " does not decode");
        if (vote.view() != pp.view() || vote.seq() != pp.seq() || hash_from_bytes(vote.digest()) != digest)
            return bad("the commit of replica " + std::to_string(sender) +
                       " is for another view, seq or batch than the pre-prepare");
    }
    return CertifiedBatch{pp.view(), pp.seq(), digest, std::move(batch)};
}

Result<CertifiedBatch> check_commit_certificate(std::string_view proof_bytes,
                                                const std::vector<crypto::PublicKey>& replicas,
                                                size_t quorum) {
    pb::CommittedProof proof;
    if (proof_bytes.size() > crypto::kEnvelopeMaxBytes * 2 ||
        !proof.ParseFromArray(proof_bytes.data(), static_cast<int>(proof_bytes.size())))
        return bad("it does not decode");
    return check_commit_certificate(proof, replicas, quorum);
}

}  // namespace tally::bft::pbft
