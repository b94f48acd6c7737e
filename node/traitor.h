// The node's traitors: the lies a replica tells outside consensus, to clients (wrong-reply)
// and to peers fetching its state (lying-snapshot), as an Answers (node/answers.h) the
// replica is handed; the honest replica never asks whether it is a traitor. The lies in
// consensus messages are PBFT's TraitorEngine (bft/pbft/traitor.h); the names of all
// behaviours are bft/behaviours.h.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bft/behaviours.h"
#include "node/answers.h"

namespace tally::node {

using bft::Behaviour;

// lying-snapshot's lies, one per piece (ledger::pb::SnapshotChunk bytes; bytes that do not
// decode go out unchanged):
//   kBalance       its first account's balance raised and its first record's value changed
//   kDuplicateId   one record id recorded again at a later block of the piece, in order (it
//                  passes the order checks; a piece with records of one block only gets
//                  kBalance instead)
//   kForgedHeader  the block header's prev_hash, tx_root and tx_count changed (the state
//                  digest, height and seq kept), the same in every piece
// A lying-snapshot replica also races: it sends forged pieces to a replica that is fetching
// from someone else, for the cursors it will ask next (node/replica_state.cc).
enum class SnapshotLie { kBalance, kDuplicateId, kForgedHeader };
inline constexpr SnapshotLie kSnapshotLies[] = {SnapshotLie::kBalance, SnapshotLie::kDuplicateId,
                                                 SnapshotLie::kForgedHeader};
std::string lie_in_snapshot_chunk(std::string chunk, SnapshotLie lie = SnapshotLie::kBalance);
// lying-snapshot's lie in a backfill answer, in its first block (ledger::pb::CertifiedBlock
// bytes; bytes that do not decode go out unchanged): with `forge_header`, the block's state
// digest changed (it no longer hashes to what the block above proves), else its certificate
// short of its last commit (the header is right, the certificate is not).
std::string lie_in_certified_block(std::string block, bool forge_header);

// wrong-reply and lying-snapshot, the lies told outside consensus (node/answers.h):
//   wrong-reply     a plausible lie in every reply — another result, seq and value for an
//                   ordered one, another value for a read — signed as well as the truth, so
//                   only the client's quorum exposes it
//   lying-snapshot  every piece it serves lies (one SnapshotLie per checkpoint, the same in
//                   each of its pieces), and it races forged pieces to a replica that asked it
//                   for one, for the cursors that replica will ask its other peers next;
//                   and every block it serves to a peer filling the blocks below a snapshot
//                   is forged (lie_in_certified_block)
class LyingAnswers final : public Answers {
public:
    LyingAnswers(bool wrong_reply, bool lying_snapshot, uint64_t checkpoint_interval);

    void on_reply(ReplyKind kind, api::pb::Reply& reply) override;
    std::string on_snapshot_piece(bft::ReplicaId to, uint64_t seq, const std::string& cursor,
                                  std::string chunk, Clock::time_point now) override;
    std::string on_backfill_block(uint64_t top, std::string block) override;
    void on_turn(SnapshotServer& server, Clock::time_point now) override;

private:
    // A replica that asked for a snapshot lately, to race pieces to.
    struct Race {
        uint64_t seq = 0;
        uint64_t since_seq = 0;
        Clock::time_point until{};  // last asked: it races a while after
        Clock::time_point next{};
    };

    bool wrong_reply_;
    bool lying_snapshot_;
    uint64_t checkpoint_interval_;
    std::map<bft::ReplicaId, Race> races_;
};

// The Answers of a replica started with `behaviours`: a LyingAnswers when they include
// wrong-reply or lying-snapshot, else honest ones.
std::unique_ptr<Answers> make_answers(const std::vector<Behaviour>& behaviours,
                                      uint64_t checkpoint_interval);

}  // namespace tally::node
