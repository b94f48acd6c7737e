// State transfer between replicas (PBFT.md "State transfer"), the node's half: the engine
// decides what state it needs (a stable checkpoint it is behind, with the digest its 2f+1
// proof fixes) and from whom; the node fetches the ledger at that checkpoint from those peers
// a piece at a time, checks it against that digest, installs it, and tells the engine
// (on_state_restored). Pieces are bounded (kSnapshotChunkBytesMax), and neither side holds
// the history in memory: the server reads the transaction records from its database, the
// receiver stages them in one (ledger::SnapshotImport).
//
// What it trusts: nothing a peer sends. A snapshot that does not hash to the proven digest is
// refused by the ledger (SnapshotImport), counted as the peer's misbehaviour, and fetched
// again from the next peer. The answering side serves only checkpoints it executed itself.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>
#include <optional>

#include "node/node.pb.h"
#include "node/replica.h"

namespace tally::node {

namespace {
// How long one peer gets to answer before the next is asked.
constexpr auto kPeerPatience = std::chrono::milliseconds(1000);
constexpr size_t kSnapshotsKept = 2;
// A checkpoint a peer asked for within this time is kept beyond the newest two, so that a
// long transfer is not cut off when the network checkpoints again under load.
constexpr auto kServingHold = std::chrono::seconds(10);
// The smallest piece served: a few records, so that a transfer always moves on.
constexpr size_t kSnapshotChunkBytesMin = 256;
}  // namespace

// A transfer fetches only what the ledger lacks: the accounts, and the records of the blocks
// after its own (ledger::SnapshotImport::Since::kWhatItHolds). A newer checkpoint proven
// meanwhile waits until this one is in, and then needs only what happened since; starting
// over at each checkpoint would never finish a long transfer under load.
void Replica::start_state_transfer(const bft::SnapshotTarget& target) {
    if (target.peers.empty()) return;
    if (fetching_ && fetching_->seq >= target.seq) return;  // already under way
    if (fetching_) {
        next_fetch_ = target;
        return;
    }
    spdlog::info("replica {} is behind stable checkpoint {}: fetching the ledger from peers", id_, target.seq);
    fetch_attempt_ = 0;
    begin_import(target);
    request_piece();
}

void Replica::begin_import(const bft::SnapshotTarget& target) {
    fetching_ = target;
    // A ledger whose own history failed the check with every peer in turn may be the one
    // that went wrong: then it takes the whole history.
    auto since = refused_in_a_row_ >= target.peers.size() ? ledger::SnapshotImport::Since::kGenesis
                                                          : ledger::SnapshotImport::Since::kWhatItHolds;
    import_ = std::make_unique<ledger::SnapshotImport>(*ledger_, target.seq, target.digest, since);
    served_this_import_.clear();
}

// Asks the current peer for the next piece; retry_state_transfer moves on to the next peer
// if no answer comes in time. Pieces are the same from every honest peer, so the next one
// carries on from the same cursor.
void Replica::request_piece() {
    bft::ReplicaId peer = fetching_->peers[fetch_attempt_ % fetching_->peers.size()];
    asked_peer_ = peer;
    fetch_retry_at_ = clock_->now() + kPeerPatience;
    pb::SnapshotRequest request;
    request.set_seq(fetching_->seq);
    request.set_cursor(import_->next_cursor());
    request.set_max_bytes(config_.consensus.snapshot_chunk_bytes);
    send(bft::Outgoing{peer, crypto::seal(key_, crypto::MessageType::kFetchSnapshot, request.SerializeAsString())});
}

void Replica::retry_state_transfer() {
    if (!fetching_) return;
    const auto now = clock_->now();
    if (replaying_ && !replay_awaiting_) {
        if (now >= replay_next_at_) request_blocks_to_checkpoint();  // the next blocks
        return;
    }
    if (now < fetch_retry_at_) return;
    next_state_peer();  // no answer in time
}

void Replica::next_state_peer() {
    ++fetch_attempt_;
    if (next_fetch_) {
        // No answer for this checkpoint: the peers may have dropped it; take the newest.
        bft::SnapshotTarget newer = std::move(*next_fetch_);
        next_fetch_.reset();
        begin_import(newer);
    } else if (replaying_) {
        begin_import(*fetching_);  // the ledger moved on: a snapshot now needs less
    }
    replaying_ = false;
    replay_awaiting_ = false;
    request_piece();
}

void Replica::on_snapshot_request(bft::ReplicaId from, const crypto::Envelope& envelope) {
    pb::SnapshotRequest request;
    if (!request.ParseFromString(envelope.body)) {
        rejections_.count("malformed", "a snapshot request from replica " + std::to_string(from));
        return;
    }
    auto it = snapshots_.find(request.seq());
    if (it == snapshots_.end()) {
        // Not (yet) executed here, or superseded, or dropped by a restart: said at once, so
        // that the asker turns to the blocks (or another peer) without waiting it out.
        pb::SnapshotReply reply;
        reply.set_seq(request.seq());
        reply.set_cursor(request.cursor());
        reply.set_not_held(true);
        send(bft::Outgoing{from, crypto::seal(key_, crypto::MessageType::kSnapshot, reply.SerializeAsString())});
        return;
    }
    const auto now = clock_->now();
    if (now - it->second.asked >= kServingHold)  // a transfer begins (not each of its pieces)
        spdlog::info("serving the ledger snapshot at seq {} to replica {}", it->first, from);
    it->second.asked = now;
    const size_t max_bytes =
        std::clamp<size_t>(request.max_bytes(), kSnapshotChunkBytesMin, kSnapshotChunkBytesMax);
    auto chunk = ledger_->snapshot_chunk(it->second.point, request.cursor(), max_bytes);
    if (!chunk) {
        rejections_.count("malformed", "a snapshot request from replica " + std::to_string(from) +
                                           ": " + chunk.error().message);
        return;
    }
    pb::SnapshotReply reply;
    reply.set_seq(it->first);
    reply.set_cursor(request.cursor());
    *chunk = answers_->on_snapshot_piece(from, it->first, request.cursor(), std::move(*chunk), now);
    reply.set_chunk(std::move(*chunk));
    send(bft::Outgoing{from, crypto::seal(key_, crypto::MessageType::kSnapshot, reply.SerializeAsString())});
}

void Replica::on_snapshot(bft::ReplicaId from, const crypto::Envelope& envelope, bft::Output& out) {
    pb::SnapshotReply reply;
    if (!reply.ParseFromString(envelope.body)) {
        rejections_.count("malformed", "a snapshot from replica " + std::to_string(from));
        return;
    }
    // Only the piece asked for, from the peer asked. Anything else is late (an earlier peer's
    // answer after the patience ran out), or raced by a peer that predicted the cursor: either
    // way it is dropped unread, and nobody's piece is judged by it.
    if (!fetching_ || from != asked_peer_) {
        rejections_.count("unasked_snapshot", "a snapshot piece from replica " + std::to_string(from) +
                                                  ", which was not asked for it");
        return;
    }
    if (reply.seq() != fetching_->seq || reply.cursor() != import_->next_cursor()) return;
    if (ledger_->last_seq() >= reply.seq()) {
        // Caught up meanwhile: the ledger never goes backwards.
        finish_state_transfer(out);
        return;
    }
    if (reply.not_held()) {
        if (config_.protocol == bft::Protocol::kRaft) {
            // No commit certificates to execute the blocks by. The leader offers its newest
            // state with every heartbeat, and the engine asks for a newer one (next_fetch_):
            // take that now, or ask again once the patience runs out.
            if (next_fetch_) next_state_peer();
            return;
        }
        // Restarted since, most likely: the blocks up to the checkpoint serve as well.
        if (!replaying_) request_blocks_to_checkpoint();
        return;
    }
    if (replaying_) return;  // a piece after it said it holds none: the blocks are under way
    Status added = import_->add(reply.chunk());
    if (!added) {
        if (added.error().code == "io") {
            spdlog::error("replica {} cannot stage the snapshot: {}; retrying", id_,
                          added.error().message);
            return;  // the same piece again, after the patience
        }
        ++detected_[bft::Misbehaviour::kBadSnapshot];
        ++refused_in_a_row_;
        ++fetch_attempt_;
        if (added.error().code == "malformed") {
            // The piece alone is wrong (checked whole, nothing of it kept): the next peer is
            // asked for the same piece.
            spdlog::warn("replica {} served a bad snapshot piece for seq {} ({}): asking another peer",
                         from, reply.seq(), added.error().message);
            request_piece();
            return;
        }
        // A digest that the pieces so far do not reach: whoever served one of them lied.
        std::string servers;
        served_this_import_.insert(from);
        for (auto peer : served_this_import_) servers += (servers.empty() ? "" : ",") + std::to_string(peer);
        spdlog::warn("replica {} served a snapshot for seq {} that does not match the checkpoint "
                     "proof ({}; pieces from replicas {}): starting over with another peer",
                     from, reply.seq(), added.error().message, servers);
        begin_import(next_fetch_ ? *next_fetch_ : *fetching_);
        next_fetch_.reset();
        request_piece();
        return;
    }
    served_this_import_.insert(from);
    fetch_retry_at_ = clock_->now() + kPeerPatience;
    if (!import_->complete()) {
        request_piece();
        return;
    }
    Status installed = import_->install();
    if (!installed) {
        spdlog::error("replica {} cannot install the snapshot at seq {}: {}; fetching it again",
                      id_, reply.seq(), installed.error().message);
        begin_import(*fetching_);
        return;  // after the patience
    }
    refused_in_a_row_ = 0;
    ++state_transfers_;
    spdlog::info("replica {} installed the ledger at seq {} ({} transaction records) from replica {}",
                 id_, reply.seq(), import_->records(), from);
    keep_snapshot(reply.seq());
    if (next_fetch_ && next_fetch_->seq > ledger_->last_seq()) {
        // A newer checkpoint was proven meanwhile: what happened since is all it needs.
        bft::SnapshotTarget newer = std::move(*next_fetch_);
        next_fetch_.reset();
        spdlog::info("replica {} fetches what happened up to checkpoint {} meanwhile", id_, newer.seq);
        begin_import(newer);
        request_piece();
        return;
    }
    finish_state_transfer(out);
}

bool Replica::serves(uint64_t seq) const { return snapshots_.count(seq) > 0; }

std::optional<std::string> Replica::snapshot_piece(uint64_t seq, const std::string& cursor) {
    auto served = snapshots_.find(seq);
    if (served == snapshots_.end()) return std::nullopt;
    auto chunk = ledger_->snapshot_chunk(served->second.point, cursor,
                                         config_.consensus.snapshot_chunk_bytes);
    if (!chunk) return std::nullopt;
    return std::move(chunk).value();
}

void Replica::send_snapshot_piece(bft::ReplicaId to, uint64_t seq, const std::string& cursor,
                                  std::string chunk) {
    pb::SnapshotReply reply;
    reply.set_seq(seq);
    reply.set_cursor(cursor);
    reply.set_chunk(std::move(chunk));
    send(bft::Outgoing{to, crypto::seal(key_, crypto::MessageType::kSnapshot, reply.SerializeAsString())});
}

void Replica::finish_state_transfer(bft::Output& out) {
    uint64_t seq = ledger_->last_seq();
    fetching_.reset();
    replaying_ = false;
    replay_awaiting_ = false;
    replayed_ = 0;
    next_fetch_.reset();
    import_.reset();
    start_backfill();  // the blocks between the ledger's last before and the snapshot's
    answer_settled_routes();
    out.append(engine_->on_state_restored(seq, ledger_->last_block().hash()));
}

// Requests admitted while this replica was behind may have executed in the range the transfer
// skipped, where no reply_batch took their routes: each would wait for a reply that never
// comes, and count against its sender and its connection until it expired (ClientRoutes' ttl,
// 30 s) — long enough for a client that multiplexes many accounts over one connection (the
// benchmark's) to be refused "connection_busy" by this replica for all that time. Each one
// the ledger holds a final outcome for now is answered with it, as its retransmission would
// be (on_request). A query keeps its route: it leaves no outcome, and its client's
// retransmission is ordered again.
void Replica::answer_settled_routes() {
    const uint64_t view = engine_->status().view;
    size_t answered = 0;
    for (const auto& pending : routes_.transfers()) {
        const auto done = ledger_->transfer_outcome(pending.tx_id, pending.client, pending.nonce);
        if (!done) continue;
        auto taken = routes_.take(pending.tx_id);
        if (!taken) continue;  // (transfers() lists only pending ones)
        for (auto& routing_id : taken->routing_ids)
            reply(ClientRoute{std::move(routing_id), taken->client, taken->nonce}, pending.tx_id, *done, view);
        ++answered;
    }
    if (answered > 0)
        spdlog::info("replica {} answered {} pending requests that executed in the state it installed", id_,
                     answered);
}

// Keeps the newest two checkpoints, and any a peer asked for lately: a replica that fell
// behind asks for the state at the newest stable checkpoint, which must be served exactly as
// it was, to the end of the transfer.
void Replica::keep_snapshot(uint64_t seq) {
    if (seq % config_.consensus.checkpoint_interval != 0) return;
    snapshots_[seq] = Served{ledger_->snapshot_point(), {}};
    const auto now = clock_->now();
    size_t newer = 0;
    for (auto it = snapshots_.rbegin(); it != snapshots_.rend();) {
        const bool in_use = it->second.asked != std::chrono::steady_clock::time_point{} &&
                            now - it->second.asked < kServingHold;
        if (++newer <= kSnapshotsKept || in_use) {
            ++it;
        } else {
            it = std::make_reverse_iterator(snapshots_.erase(std::next(it).base()));
        }
    }
}

}  // namespace tally::node
