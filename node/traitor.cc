// The node's traitors: lies in replies and snapshot pieces. See traitor.h.
#include "node/traitor.h"

#include <algorithm>
#include <iterator>

#include "bft/pbft/pbft.pb.h"
#include "ledger/ledger.pb.h"
#include "ledger/tx.h"

namespace tally::node {

std::string lie_in_certified_block(std::string bytes, bool forge_header) {
    ledger::pb::CertifiedBlock block;
    if (!block.ParseFromString(bytes)) return bytes;
    if (forge_header) {
        std::string digest = block.header().state_digest();
        if (!digest.empty()) digest[0] = static_cast<char>(digest[0] ^ 0x5a);
        block.mutable_header()->set_state_digest(digest);
    } else {
        bft::pbft::pb::CommittedProof proof;
        if (!proof.ParseFromString(block.certificate()) || proof.commits_size() == 0) return bytes;
        proof.mutable_commits()->RemoveLast();
        block.set_certificate(proof.SerializeAsString());
    }
    return block.SerializeAsString();
}

std::string LyingAnswers::on_backfill_block(uint64_t top, std::string block) {
    return lying_snapshot_ ? lie_in_certified_block(std::move(block), top % 2 == 0) : block;
}

std::string lie_in_snapshot_chunk(std::string chunk, SnapshotLie lie) {
    ledger::pb::SnapshotChunk piece;
    if (!piece.ParseFromString(chunk)) return chunk;
    if (lie == SnapshotLie::kForgedHeader) {
        ledger::pb::BlockRecord* block = piece.mutable_last_block();
        std::string prev = block->prev_hash();
        if (!prev.empty()) prev[0] = static_cast<char>(prev[0] ^ 0x5a);
        block->set_prev_hash(prev);
        std::string root = block->tx_root();
        if (!root.empty()) root[0] = static_cast<char>(root[0] ^ 0x5a);
        block->set_tx_root(root);
        block->set_tx_count(block->tx_count() + 1);
        return piece.SerializeAsString();
    }
    if (lie == SnapshotLie::kDuplicateId && piece.records_size() >= 2) {
        // The first record's id again, in the piece's last block (if it is a later one), then
        // the records sorted again by (seq, id) so that the order checks pass.
        const auto& first = piece.records(0);
        auto& last = *piece.mutable_records(piece.records_size() - 1);
        if (last.seq() > first.seq()) {
            last.set_id(first.id());
            auto* records = piece.mutable_records();
            std::sort(records->begin(), records->end(), [](const auto& a, const auto& b) {
                return a.seq() != b.seq() ? a.seq() < b.seq() : a.id() < b.id();
            });
            return piece.SerializeAsString();
        }
    }
    if (piece.accounts_size() > 0)
        piece.mutable_accounts(0)->set_balance(piece.accounts(0).balance() + 1'000'000);
    if (piece.records_size() > 0) piece.mutable_records(0)->set_value(piece.records(0).value() + 7);
    return piece.SerializeAsString();
}

namespace {
// The cursor a receiver asks for after `chunk` (ledger::SnapshotImport's rule): predictable,
// which is what a racing liar uses.
std::optional<std::string> cursor_after(const std::string& chunk_bytes, uint64_t since_seq) {
    ledger::pb::SnapshotChunk chunk;
    if (!chunk.ParseFromString(chunk_bytes)) return std::nullopt;
    if (chunk.records_end()) return std::nullopt;
    ledger::pb::SnapshotCursor cursor;
    cursor.set_since_seq(since_seq);
    if (!chunk.accounts_end()) {
        if (chunk.accounts_size() == 0) return std::nullopt;
        cursor.set_after_key(chunk.accounts(chunk.accounts_size() - 1).key());
        return cursor.SerializeAsString();
    }
    cursor.set_records(true);
    if (chunk.records_size() == 0) {  // the accounts' last piece, before any record
        cursor.set_after_seq(since_seq);
        return cursor.SerializeAsString();
    }
    const auto& last = chunk.records(chunk.records_size() - 1);
    cursor.set_after_seq(last.seq());
    cursor.set_after_id(last.id());
    return cursor.SerializeAsString();
}
}  // namespace

LyingAnswers::LyingAnswers(bool wrong_reply, bool lying_snapshot, uint64_t checkpoint_interval)
    : wrong_reply_(wrong_reply), lying_snapshot_(lying_snapshot),
      checkpoint_interval_(std::max<uint64_t>(checkpoint_interval, 1)) {}

void LyingAnswers::on_reply(ReplyKind kind, api::pb::Reply& reply) {
    if (!wrong_reply_) return;
    if (kind == ReplyKind::kOrdered) {
        const auto ok = static_cast<uint32_t>(ledger::ResultCode::kOk);
        reply.set_result(reply.result() == ok
                             ? static_cast<uint32_t>(ledger::ResultCode::kInsufficientFunds)
                             : ok);
        reply.set_seq(reply.seq() + 1);
    }
    reply.set_value(reply.value() + 7);
}

std::string LyingAnswers::on_snapshot_piece(bft::ReplicaId to, uint64_t seq,
                                            const std::string& cursor, std::string chunk,
                                            Clock::time_point now) {
    if (!lying_snapshot_) return chunk;
    // One lie per checkpoint, the same in every piece of it.
    const auto lie = kSnapshotLies[(seq / checkpoint_interval_) % std::size(kSnapshotLies)];
    ledger::pb::SnapshotCursor asked;
    if (asked.ParseFromString(cursor)) races_[to] = Race{seq, asked.since_seq(), now, now};
    return lie_in_snapshot_chunk(std::move(chunk), lie);
}

// A lying-snapshot traitor knows what a fetching replica will ask for next, since every
// honest peer serves the same pieces: it sends a forged answer to each of the first cursors,
// again and again, hoping one arrives before the honest peer's answer.
void LyingAnswers::on_turn(SnapshotServer& server, Clock::time_point now) {
    constexpr size_t kRacedPiecesMax = 32;
    constexpr auto kRaceEvery = std::chrono::milliseconds(20);
    constexpr auto kRaceFor = std::chrono::seconds(3);
    for (auto it = races_.begin(); it != races_.end();) {
        auto& [to, race] = *it;
        if (now >= race.until + kRaceFor || !server.serves(race.seq)) {
            it = races_.erase(it);
            continue;
        }
        if (now >= race.next) {
            race.next = now + kRaceEvery;
            ledger::pb::SnapshotCursor first;
            first.set_since_seq(race.since_seq);
            std::optional<std::string> cursor = first.SerializeAsString();
            for (size_t i = 0; i < kRacedPiecesMax && cursor; ++i) {
                auto chunk = server.snapshot_piece(race.seq, *cursor);
                if (!chunk) break;
                auto next = cursor_after(*chunk, race.since_seq);
                server.send_snapshot_piece(to, race.seq, *cursor,
                                           lie_in_snapshot_chunk(std::move(*chunk), SnapshotLie::kBalance));
                cursor = std::move(next);
            }
        }
        ++it;
    }
}

std::unique_ptr<Answers> make_answers(const std::vector<Behaviour>& behaviours,
                                      uint64_t checkpoint_interval) {
    const auto has = [&](Behaviour b) {
        return std::find(behaviours.begin(), behaviours.end(), b) != behaviours.end();
    };
    if (!has(Behaviour::kWrongReply) && !has(Behaviour::kLyingSnapshot))
        return std::make_unique<HonestAnswers>();
    return std::make_unique<LyingAnswers>(has(Behaviour::kWrongReply), has(Behaviour::kLyingSnapshot),
                                          checkpoint_interval);
}

}  // namespace tally::node
