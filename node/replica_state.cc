// State transfer between replicas (PBFT.md "State transfer"), the node's half: the engine
// decides what state it needs (a stable checkpoint it is behind, with the digest its 2f+1
// proof fixes) and from whom; the node fetches a ledger snapshot from those peers in turn,
// checks it against that digest, installs it, and tells the engine (on_state_restored).
//
// What it trusts: nothing a peer sends. A snapshot that does not hash to the proven digest is
// refused by the ledger (State::import_snapshot), counted as the peer's misbehaviour, and the
// next peer is asked. The answering side serves only snapshots it exported itself.
#include <spdlog/spdlog.h>

#include "node/node.pb.h"
#include "node/replica.h"

namespace tally::node {

namespace {
// How long one peer gets to answer before the next is asked.
constexpr auto kPeerPatience = std::chrono::milliseconds(1000);
constexpr size_t kSnapshotsKept = 2;
}  // namespace

void Replica::start_state_transfer(const bft::StateTarget& target) {
    if (target.peers.empty()) return;
    if (fetching_ && fetching_->seq == target.seq) return;  // already under way
    spdlog::info("replica {} is behind stable checkpoint {}: fetching the ledger from peers", id_, target.seq);
    fetching_ = target;
    fetch_attempt_ = 0;
    fetch_retry_at_ = {};
    retry_state_transfer();
}

void Replica::retry_state_transfer() {
    if (!fetching_) return;
    auto now = std::chrono::steady_clock::now();
    if (now < fetch_retry_at_) return;
    bft::ReplicaId peer = fetching_->peers[fetch_attempt_ % fetching_->peers.size()];
    ++fetch_attempt_;
    fetch_retry_at_ = now + kPeerPatience;
    pb::SnapshotRequest request;
    request.set_seq(fetching_->seq);
    send(bft::Outgoing{peer, crypto::seal(key_, crypto::MessageType::kFetchSnapshot, request.SerializeAsString())});
}

void Replica::on_snapshot_request(bft::ReplicaId from, const crypto::Envelope& envelope) {
    pb::SnapshotRequest request;
    if (!request.ParseFromString(envelope.body)) {
        rejections_.count("malformed", "a snapshot request from replica " + std::to_string(from));
        return;
    }
    auto it = snapshots_.find(request.seq());
    if (it == snapshots_.end()) return;  // not (yet) executed here, or already superseded
    pb::SnapshotReply reply;
    reply.set_seq(it->first);
    reply.set_snapshot(it->second);
    std::string envelope_bytes = crypto::seal(key_, crypto::MessageType::kSnapshot, reply.SerializeAsString());
    if (envelope_bytes.size() > crypto::kEnvelopeMaxBytes) {
        spdlog::error("snapshot at seq {} is {} bytes, more than a message may carry; replica {} must "
                      "catch up another way",
                      it->first, envelope_bytes.size(), from);
        return;
    }
    spdlog::info("serving the ledger snapshot at seq {} ({} bytes) to replica {}", it->first,
                 envelope_bytes.size(), from);
    send(bft::Outgoing{from, std::move(envelope_bytes)});
}

void Replica::on_snapshot(bft::ReplicaId from, const crypto::Envelope& envelope, bft::Output& out) {
    pb::SnapshotReply reply;
    if (!reply.ParseFromString(envelope.body)) {
        rejections_.count("malformed", "a snapshot from replica " + std::to_string(from));
        return;
    }
    if (!fetching_ || reply.seq() != fetching_->seq) return;  // late or unasked: not an error
    if (ledger_->last_seq() >= reply.seq()) {
        // Caught up meanwhile: the ledger never goes backwards.
        uint64_t seq = ledger_->last_seq();
        fetching_.reset();
        out.append(engine_->on_state_restored(seq, ledger_->state_digest()));
        return;
    }
    auto installed = ledger_->import_snapshot(reply.snapshot(), fetching_->digest);
    if (!installed) {
        ++detected_["bad_snapshot"];
        spdlog::warn("replica {} served a snapshot for seq {} that does not match the checkpoint "
                     "proof ({}): asking another peer",
                     from, reply.seq(), installed.error().message);
        fetch_retry_at_ = {};
        retry_state_transfer();
        return;
    }
    uint64_t seq = fetching_->seq;
    fetching_.reset();
    spdlog::info("replica {} installed the ledger at seq {} from replica {}", id_, seq, from);
    out.append(engine_->on_state_restored(seq, ledger_->state_digest()));
}

// Exports the ledger at every checkpoint and keeps the newest two: a replica that fell behind
// asks for the state at the newest stable checkpoint, which must exist exactly as it was.
void Replica::keep_snapshot(uint64_t seq) {
    if (seq % config_.consensus.checkpoint_interval != 0) return;
    snapshots_[seq] = ledger_->export_snapshot();
    while (snapshots_.size() > kSnapshotsKept) snapshots_.erase(snapshots_.begin());
}

}  // namespace tally::node
