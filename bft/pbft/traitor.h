// PBFT's traitors: Byzantine behaviours, each a wrapper around an honest engine. Honest code never
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
//   double-vote        equivocation's voter half alone: votes (prepare, commit) to each peer
//                      for exactly the digest that peer votes for, never broadcasting a vote of
//                      its own (Raft's double vote: a yes to every candidate of a term)
//   false-ack          commits every pre-prepare at once, before it prepared (what it has not
//                      checked it vouches for; Raft's: acknowledges entries it did not store)
//   lying-vote         as lying-view-change (Raft's: claims the longest log in its votes)
//   bad-signature      corrupts the signature of everything it sends
//   wrong-digest       pre-prepares, prepares and commits name a digest of nothing
//   stale-view         normal-case messages carry the previous view (in view 0, sequence 0)
//   future-view        normal-case messages carry a view 1000 ahead
//   replay             re-sends messages it sent long ago, along with the new ones
//   forge-client       as primary, adds a request with a forged client signature to batches
//   lying-checkpoint   checkpoints state a digest its state does not have
//   wrong-reply        (not here: node/traitor.h, LyingAnswers — replies are not PBFT's)
//   lying-snapshot     (not here: node/traitor.h, LyingAnswers — nor is state transfer)
//   lying-view-change  view changes hide its prepared certificates and claim a forged one
//   random             for each message, a seeded choice among the above or honesty
// Everything random comes from the seed the caller gives, so a simulation replays exactly.
// It sits beside the protocol whose messages it rewrites; Raft's traitors will sit beside Raft.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "bft/behaviours.h"
#include "bft/engine.h"
#include "bft/traitor_base.h"
#include "crypto/keys.h"

namespace tally::bft::pbft {

namespace pb {
class PrePrepare;
}

class TraitorEngine final : public TraitorBase<Engine> {
public:
    TraitorEngine(std::unique_ptr<Engine> honest, std::vector<Behaviour> behaviours,
                  const crypto::KeyPair& key, std::vector<crypto::PublicKey> replicas, ReplicaId id,
                  uint64_t seed);

    Output on_message(ReplicaId from, const crypto::Envelope& envelope, std::string_view raw) override;

private:
    Output rewrite(Output out) override;
    // Rewrites one message; appends what goes out instead (possibly nothing, or several).
    void rewrite_one(Outgoing msg, Behaviour b, std::vector<Outgoing>& sent);
    // One behaviour each (traitor.cc): `msg` opened is `env`; what goes out is appended to `sent`.
    using HeaderChange = void (*)(uint64_t* view, uint64_t* seq, std::string* digest,
                                  pb::PrePrepare* pp);
    void change_normal_case(Outgoing msg, const crypto::Envelope& env, HeaderChange change,
                            std::vector<Outgoing>& sent);
    void replay_old(Outgoing msg, std::vector<Outgoing>& sent);
    void lie_in_checkpoint(Outgoing msg, const crypto::Envelope& env, std::vector<Outgoing>& sent);
    void lie_in_view_change(Outgoing msg, const crypto::Envelope& env, std::vector<Outgoing>& sent);
    void equivocate(Outgoing msg, const crypto::Envelope& env, std::vector<Outgoing>& sent);
    void echo_votes(ReplicaId from, const crypto::Envelope& envelope, Output& out);
    std::optional<Behaviour> pick_random();  // nullopt: this message goes out honestly

    crypto::KeyPair key_;
    std::vector<crypto::PublicKey> replicas_;
    ReplicaId id_;
    std::mt19937_64 rng_;
    std::deque<Outgoing> sent_before_;  // replay: what it sent, newest last
    std::set<std::tuple<uint64_t, uint64_t, std::string, ReplicaId>> echoed_;
};

}  // namespace tally::bft::pbft
