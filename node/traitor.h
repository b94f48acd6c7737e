// Traitors: Byzantine behaviours, each a wrapper around an honest engine. Honest code never
// asks "am I a traitor?": a TraitorEngine forwards every input to the honest PBFT engine it
// wraps, then rewrites the messages that engine wants to send (and, for a few behaviours,
// adds messages of its own, signed with the replica's real key). The node and the simulator
// wrap an engine the same way, so what a test shows is what `tallyd --traitor` does.
//
// Behaviours (several may be combined):
//   silent             sends nothing at all
//   equivocate         as primary, sends each backup a different batch for one sequence
//                      number; and votes (prepare, commit) to each peer for exactly the digest
//                      that peer votes for, never broadcasting a vote of its own
//   bad-signature      corrupts the signature of everything it sends
//   wrong-digest       pre-prepares, prepares and commits name a digest of nothing
//   stale-view         normal-case messages carry the previous view (in view 0, sequence 0)
//   future-view        normal-case messages carry a view 1000 ahead
//   replay             re-sends messages it sent long ago, along with the new ones
//   forge-client       as primary, adds a request with a forged client signature to batches
//   lying-checkpoint   checkpoints state a digest its state does not have
//   wrong-reply        answers clients with wrong results (applied by the node/simulator)
//   lying-snapshot     serves state-transfer pieces its ledger does not have: a balance, a
//                      duplicated record id, a forged block header (SnapshotLie), and races
//                      forged pieces to replicas fetching from others (node/simulator)
//   lying-view-change  view changes hide its prepared certificates and claim a forged one
//   random             for each message, a seeded choice among the above or honesty
// Everything random comes from the seed the caller gives, so a simulation replays exactly.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "bft/engine.h"
#include "crypto/keys.h"
#include "crypto/result.h"
#include "node/answers.h"
#include "node/api/behaviours.h"

namespace tally::node {

// The behaviours' names live with network.json (node/api/behaviours.h), which the client links
// without this file; the engine wrapper that gives them meaning lives here.
using api::all_behaviours;
using api::Behaviour;
using api::behaviour_name;
using api::parse_behaviours;

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

class TraitorEngine final : public bft::Engine {
public:
    TraitorEngine(std::unique_ptr<bft::Engine> honest, std::vector<Behaviour> behaviours,
                  const crypto::KeyPair& key, std::vector<crypto::PublicKey> replicas, bft::ReplicaId id,
                  uint64_t seed);

    bft::Output on_tick() override;
    bft::Output on_message(bft::ReplicaId from, const crypto::Envelope& envelope, std::string_view raw) override;
    bft::Output on_client_request(const bft::ClientRequest& request) override;
    bft::Output on_executed(uint64_t seq, const crypto::Hash& digest) override;
    bft::Output on_state_restored(uint64_t seq, const crypto::Hash& digest) override;
    bft::Output on_start(const std::vector<std::pair<std::string, std::string>>& records, uint64_t executed_seq,
                         const crypto::Hash& digest) override;
    bft::EngineStatus status() const override { return honest_->status(); }
    std::vector<bft::Detected> take_detected() override { return honest_->take_detected(); }

    const std::vector<Behaviour>& behaviours() const { return behaviours_; }
    bool has(Behaviour b) const;

private:
    bft::Output rewrite(bft::Output out);
    // Rewrites one message; appends what goes out instead (possibly nothing, or several).
    void rewrite_one(bft::Outgoing msg, Behaviour b, std::vector<bft::Outgoing>& sent);
    void echo_votes(bft::ReplicaId from, const crypto::Envelope& envelope, bft::Output& out);
    std::optional<Behaviour> pick_random();  // nullopt: this message goes out honestly

    std::unique_ptr<bft::Engine> honest_;
    std::vector<Behaviour> behaviours_;
    crypto::KeyPair key_;
    std::vector<crypto::PublicKey> replicas_;
    bft::ReplicaId id_;
    std::mt19937_64 rng_;
    std::deque<bft::Outgoing> sent_before_;  // replay: what it sent, newest last
    std::set<std::tuple<uint64_t, uint64_t, std::string, bft::ReplicaId>> echoed_;
};

// wrong-reply and lying-snapshot, the lies told outside consensus (node/answers.h):
//   wrong-reply     a plausible lie in every reply — another result, seq and value for an
//                   ordered one, another value for a read — signed as well as the truth, so
//                   only the client's quorum exposes it
//   lying-snapshot  every piece it serves lies (one SnapshotLie per checkpoint, the same in
//                   each of its pieces), and it races forged pieces to a replica that asked it
//                   for one, for the cursors that replica will ask its other peers next
class LyingAnswers final : public Answers {
public:
    LyingAnswers(bool wrong_reply, bool lying_snapshot, uint64_t checkpoint_interval);

    void on_reply(ReplyKind kind, api::pb::Reply& reply) override;
    std::string on_snapshot_piece(bft::ReplicaId to, uint64_t seq, const std::string& cursor,
                                  std::string chunk, Clock::time_point now) override;
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
