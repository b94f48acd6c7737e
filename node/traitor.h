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
//                      forged pieces to replicas fetching from others (node/simulator); and
//                      serves forged blocks to a replica filling the blocks below a snapshot
//                      (lie_in_blocks_reply; node only)
//   lying-view-change  view changes hide its prepared certificates and claim a forged one
//   random             for each message, a seeded choice among the above or honesty
// Everything random comes from the seed the caller gives, so a simulation replays exactly.
#pragma once

#include <cstdint>
#include <deque>
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

namespace tally::node {

enum class Behaviour {
    kSilent,
    kEquivocate,
    kBadSignature,
    kWrongDigest,
    kStaleView,
    kFutureView,
    kReplay,
    kForgeClient,
    kLyingCheckpoint,
    kWrongReply,
    kLyingSnapshot,
    kLyingViewChange,
    kRandom,
};

std::string_view behaviour_name(Behaviour b);
std::vector<Behaviour> all_behaviours();
// "silent,equivocate" -> behaviours. Error "unknown_behaviour" naming it and listing the known.
Result<std::vector<Behaviour>> parse_behaviours(std::string_view csv);

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
    // wrong-reply: whether to corrupt the reply the caller is about to send a client.
    bool lies_to_clients() const { return has(Behaviour::kWrongReply); }
    // lying-snapshot: whether to corrupt the state-transfer pieces the caller serves.
    bool lies_in_snapshots() const { return has(Behaviour::kLyingSnapshot); }

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

}  // namespace tally::node
