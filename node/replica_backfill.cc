// Backfill (ledger::State, "Backfill"), the node's half: a replica installed by state transfer
// holds the snapshot's block but not the blocks between its own last one and the snapshot.
// It fetches them from its peers, from the top down, with their commit certificates, so that
// every replica holds the whole chain (`tally audit --data DIR` checks it).
//
// What it trusts: nothing a peer sends. Each block is checked before it is kept, the cheap
// checks first: its hash against the proven block above it (the snapshot's block hash is what
// 2f+1 replicas signed in the checkpoint; each block below is proven by the prev_hash of the
// one above), then its commit certificate against the replicas' keys in network.json (for its
// seq), then its transactions' root against the certified batch. A peer can make this replica
// store only blocks of the proven chain, and only one answer at a time: the one it asked for
// (kBlocksPerRequest blocks at most, within one envelope's limit); anything else is dropped
// unread. The accounts and records the snapshot installed are never touched.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "bft/pbft/certificate.h"
#include "bft/quorum.h"
#include "node/certified_replay.h"
#include "node/node.pb.h"
#include "node/replica.h"

namespace tally::node {

namespace {
// Blocks asked for at once: checking one costs 2f+2 signature verifications (~0.2 ms at f = 1).
constexpr uint32_t kBlocksPerRequest = 32;
// What one answer may carry: the blocks asked for, within this many bytes (and at least one
// block, which a batch's bound keeps far below the envelope's limit): a snapshot piece's size.
constexpr size_t kBlocksReplyBytesMax = 1u << 20;
// A peer gets at most one answer per interval (so at most ~100 MiB/s of reads and sends, what
// a traitor can make a replica serve); an honest asker, with one request out at a time, asks
// no sooner than twice that after its last request.
constexpr auto kBlocksAnswerInterval = std::chrono::milliseconds(10);
// How long the peer asked gets before the next is asked; how long to wait when none has them.
constexpr auto kBlocksPatience = std::chrono::milliseconds(1000);
constexpr auto kBlocksNoneHeld = std::chrono::milliseconds(200);
}  // namespace

void Replica::start_backfill() {
    if (config_.protocol == bft::Protocol::kRaft) {
        // Raft's blocks carry no commit certificate that could prove one to this replica (the
        // crash-fault model trusts the leader): it holds the chain from its snapshot on.
        if (ledger_->backfill_height() > 0)
            spdlog::info("replica {} holds the blocks from its snapshot on: under Raft, none below it "
                         "can be proven (no commit certificates)", id_);
        return;
    }
    backfilling_ = true;
    backfill_awaiting_ = false;
    backfill_retry_at_ = clock_->now();
}

void Replica::next_backfill_peer(std::chrono::milliseconds wait) {
    ++backfill_peer_turn_;
    backfill_awaiting_ = false;
    backfill_retry_at_ = clock_->now() + wait;
}

void Replica::backfill() {
    if (!backfilling_ || fetching_ || config_.n() < 2) return;
    const auto now = clock_->now();
    if (now < backfill_retry_at_) return;
    if (backfill_awaiting_) {
        next_backfill_peer(std::chrono::milliseconds(0));  // no answer in time: the next peer
    }
    const uint64_t top = ledger_->backfill_height();
    if (top == 0) {
        backfilling_ = false;
        if (backfilled_ > 0)
            spdlog::info("replica {} holds the whole chain: {} blocks fetched with their certificates",
                         id_, backfilled_);
        return;
    }
    if (backfill_top_ != top && backfilled_ == 0)
        spdlog::info("replica {} lacks blocks below {}: fetching them with their certificates", id_, top + 1);
    // Every peer but this replica, in turn.
    bft::ReplicaId peer = static_cast<bft::ReplicaId>(backfill_peer_turn_ % (config_.n() - 1));
    if (peer >= id_) ++peer;
    backfill_peer_ = peer;
    backfill_top_ = top;
    backfill_awaiting_ = true;
    backfill_asked_at_ = now;
    backfill_retry_at_ = now + kBlocksPatience;
    pb::BlocksRequest request;
    request.set_top(top);
    request.set_count(kBlocksPerRequest);
    send(bft::Outgoing{peer, crypto::seal(key_, crypto::MessageType::kFetchBlocks, request.SerializeAsString())});
}

void Replica::on_blocks_request(bft::ReplicaId from, const crypto::Envelope& envelope) {
    pb::BlocksRequest request;
    if (!request.ParseFromString(envelope.body)) {
        rejections_.count("malformed", "a blocks request from replica " + std::to_string(from));
        return;
    }
    const auto now = clock_->now();
    auto& last = blocks_answered_[from];
    if (now - last < kBlocksAnswerInterval) {
        rejections_.count("blocks_flood", "a blocks request from replica " + std::to_string(from) +
                                              " sooner than one per " +
                                              std::to_string(kBlocksAnswerInterval.count()) + " ms");
        return;
    }
    last = now;
    pb::BlocksReply reply;
    reply.set_top(request.top());
    reply.set_from(request.from());
    const uint32_t count = std::min(request.count(), kBlocksPerRequest);
    // Down from `top` (backfill), or up from `from` (catching up to a checkpoint).
    const bool up = request.from() > 0;
    size_t bytes = 0;
    for (uint64_t h = up ? request.from() : request.top();
         h >= 1 && h <= ledger_->last_seq() && static_cast<uint32_t>(reply.blocks_size()) < count;
         up ? ++h : --h) {
        auto block = ledger_->certified_block(h);
        if (!block || block->certificate.empty()) break;  // not held whole here (yet)
        std::string encoded = ledger::encode_certified_block(*block);
        if (reply.blocks_size() > 0 && bytes + encoded.size() > kBlocksReplyBytesMax) break;
        bytes += encoded.size();
        reply.add_blocks(std::move(encoded));
    }
    if (reply.blocks_size() > 0)
        reply.set_blocks(0, answers_->on_backfill_block(up ? request.from() : request.top(), reply.blocks(0)));
    send(bft::Outgoing{from, crypto::seal(key_, crypto::MessageType::kBlocks, reply.SerializeAsString())});
}

void Replica::on_blocks(bft::ReplicaId from, const crypto::Envelope& envelope, bft::Output& out) {
    pb::BlocksReply reply;
    // Only the answer asked for, from the peer asked: read nothing else.
    const bool asked_to_catch_up = replay_awaiting_ && from == asked_peer_;
    const bool asked_to_backfill = backfill_awaiting_ && from == backfill_peer_;
    if (asked_to_catch_up || asked_to_backfill) {
        if (!reply.ParseFromString(envelope.body)) {
            rejections_.count("malformed", "blocks from replica " + std::to_string(from));
            return;
        }
        if (asked_to_catch_up && reply.from() == replay_from_) return on_blocks_to_checkpoint(from, reply, out);
    }
    if (!asked_to_backfill || reply.from() != 0 || reply.top() != backfill_top_) {
        rejections_.count("unasked_blocks", "blocks from replica " + std::to_string(from) +
                                                ", which was not asked for them");
        return;
    }
    backfill_awaiting_ = false;
    if (reply.blocks_size() == 0) {
        next_backfill_peer(kBlocksNoneHeld);  // it does not hold them (yet): ask another
        return;
    }
    auto refuse = [&](const std::string& why) {
        ++detected_[bft::Misbehaviour::kBadBlocks];
        spdlog::warn("replica {} served a bad block for backfill ({}): asking another peer", from, why);
        next_backfill_peer(std::chrono::milliseconds(0));
    };
    if (reply.blocks_size() > static_cast<int>(kBlocksPerRequest))
        return refuse(std::to_string(reply.blocks_size()) + " blocks, more than asked");
    std::vector<crypto::PublicKey> keys;
    for (const auto& replica : config_.replicas) keys.push_back(replica.public_key);
    const size_t quorum = bft::ByzantineQuorum{config_.f}.quorum();
    uint64_t expected = backfill_top_;
    for (const std::string& bytes : reply.blocks()) {
        auto block = ledger::decode_certified_block(bytes);
        if (!block) return refuse(block.error().message);
        if (block->header.height != expected)
            return refuse("block " + std::to_string(block->header.height) + " where " +
                          std::to_string(expected) + " was due");
        // Cheap first: is it the block the chain above proves? Then its certificate.
        if (auto proven = ledger_->check_missing_block(block->header); !proven) {
            if (proven.error().code == "not_needed") break;  // filled meanwhile: ask again
            return refuse(proven.error().message);
        }
        auto batch = bft::pbft::check_commit_certificate(block->certificate, keys, quorum);
        if (!batch) return refuse("block " + std::to_string(expected) + ": " + batch.error().message);
        if (batch->seq != expected)
            return refuse("block " + std::to_string(expected) + ": a certificate for seq " +
                          std::to_string(batch->seq));
        auto added = ledger_->add_missing_block(block->header, batch->requests, block->certificate);
        if (!added) {
            if (added.error().code == "digest_mismatch") return refuse(added.error().message);
            // This ledger's own chain disagrees with the proven one, or a local I/O error:
            // nothing a peer can mend. Said once; backfill stops until the next restart.
            spdlog::error("replica {} cannot add block {} to its chain: {}: {}", id_, expected,
                          added.error().code, added.error().message);
            backfilling_ = false;
            return;
        }
        ++backfilled_;
        if (--expected == 0) break;
    }
    // The next blocks, from the same peer, as soon as it will answer.
    backfill_retry_at_ = backfill_asked_at_ + 2 * kBlocksAnswerInterval;
}

}  // namespace tally::node

namespace tally::node {

// Catching up by certified blocks (node/certified_replay.h), the state transfer's other way:
// the peer asked for the checkpoint's snapshot no longer holds it (it restarted since; it
// keeps snapshots in memory), but it holds the blocks up to it with their certificates. This
// replica asks that peer for them, kBlocksPerRequest at a time from its own last one up, and
// executes each from its certificate; the state it reaches at the checkpoint is the one 2f+1
// replicas proved, as after a snapshot.
void Replica::request_blocks_to_checkpoint() {
    const auto now = clock_->now();
    const uint64_t last = ledger_->last_seq();
    if (!replaying_)
        spdlog::info("replica {} holds no snapshot at checkpoint {}: replica {} executes the blocks "
                     "{}..{} from their certificates instead",
                     asked_peer_, fetching_->seq, id_, last + 1, fetching_->seq);
    replaying_ = true;
    replay_awaiting_ = true;
    replay_from_ = last + 1;
    fetch_retry_at_ = now + kBlocksPatience;
    pb::BlocksRequest request;
    request.set_from(replay_from_);
    request.set_count(static_cast<uint32_t>(std::min<uint64_t>(kBlocksPerRequest, fetching_->seq - last)));
    send(bft::Outgoing{asked_peer_, crypto::seal(key_, crypto::MessageType::kFetchBlocks, request.SerializeAsString())});
    replay_next_at_ = now + 2 * kBlocksAnswerInterval;  // the peer answers once per interval
}

void Replica::on_blocks_to_checkpoint(bft::ReplicaId from, const pb::BlocksReply& reply, bft::Output& out) {
    replay_awaiting_ = false;
    if (ledger_->last_seq() + 1 != replay_from_) return;  // moved meanwhile: asked again when due
    if (reply.blocks_size() == 0) return next_state_peer();  // it does not hold them either
    auto refuse = [&](const std::string& why) {
        ++detected_[bft::Misbehaviour::kBadBlocks];
        spdlog::warn("replica {} served a bad block to catch up with ({}): asking another peer", from, why);
        next_state_peer();
    };
    if (reply.blocks_size() > static_cast<int>(kBlocksPerRequest))
        return refuse(std::to_string(reply.blocks_size()) + " blocks, more than asked");
    std::vector<crypto::PublicKey> keys;
    for (const auto& replica : config_.replicas) keys.push_back(replica.public_key);
    const size_t quorum = bft::ByzantineQuorum{config_.f}.quorum();
    for (const std::string& bytes : reply.blocks()) {
        if (ledger_->last_seq() >= fetching_->seq) break;
        auto block = ledger::decode_certified_block(bytes);
        if (!block) return refuse(block.error().message);
        auto executed = execute_certified_block(*ledger_, *block, keys, quorum);
        if (!executed) {
            if (executed.error().code == "bad_block") return refuse(executed.error().message);
            // This replica's own ledger failed (a full disk, ...): nothing a peer can mend. The
            // same blocks again after the patience.
            spdlog::error("replica {} cannot execute block {} to catch up: {}: {}", id_,
                          ledger_->last_seq() + 1, executed.error().code, executed.error().message);
            replay_next_at_ = fetch_retry_at_;
            return;
        }
        ++replayed_;
        // The live view's timeline: executed here, without this replica's own phases.
        traces_.executed_batch(executed->header.height,
                               static_cast<uint32_t>(executed->outcomes.size()), wall_ms(),
                               mono_us());
    }
    if (ledger_->last_seq() < fetching_->seq) return;  // the next blocks when due
    spdlog::info("replica {} reached checkpoint {} by executing {} certified blocks from replica {}", id_,
                 fetching_->seq, replayed_, from);
    replaying_ = false;
    keep_snapshot(ledger_->last_seq());
    if (next_fetch_ && next_fetch_->seq > ledger_->last_seq()) {
        bft::SnapshotTarget newer = std::move(*next_fetch_);
        next_fetch_.reset();
        begin_import(newer);
        request_piece();
        return;
    }
    finish_state_transfer(out);
}

}  // namespace tally::node
