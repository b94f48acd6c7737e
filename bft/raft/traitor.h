// Raft's traitors: Byzantine behaviours around an honest Raft engine, as bft/pbft/traitor.h does
// for PBFT. Raft is a crash-fault protocol: it trusts every replica's word, and these show what
// that costs (`tally demo traitor`, README "Traitors"). The wrapper forwards every input to the
// honest engine and rewrites what it wants to send, sealed as the honest engine seals for that
// peer (RaftEngine::seal_for: the MAC the two share).
//
// Behaviours (several may be combined):
//   silent         sends nothing at all
//   equivocate     as leader, sends half of its followers (those with odd ids) each log entry
//                  without its last request: they commit at the same index a different batch
//                  than the others, and their states part for good (the consistency check
//                  compares terms, never contents). As a voter, grants every candidate of a
//                  term (a double vote). And its clock runs three ticks to one, so that its
//                  election timer fires first and it leads.
//   double-vote    the voter half alone: grants every candidate of a term (two leaders may
//                  win one term; Election Safety rests on each replica voting once)
//   false-ack      acknowledges every append as stored through its last entry, and stores
//                  none of it: the leader counts it towards a majority that holds nothing
//   lying-vote     claims the longest possible log in every vote it asks for (pre-vote too),
//                  so voters grant it whatever it holds; its clock is hurried as equivocate's,
//                  so that it campaigns first, and as leader it overwrites what its log lacks
//   bad-signature  corrupts the authenticator (the MAC) of everything it sends
// (wrong-reply and lying-snapshot are the node's, for both protocols: node/traitor.h.) Every
// other behaviour is PBFT's (bft/behaviours.h, raft_plays).
// Deterministic: no randomness at all.
#pragma once

#include <memory>
#include <vector>

#include "bft/behaviours.h"
#include "bft/engine.h"
#include "bft/raft/raft.h"
#include "bft/traitor_base.h"
#include "crypto/keys.h"

namespace tally::bft::raft {

class TraitorEngine final : public TraitorBase<RaftEngine> {
public:
    TraitorEngine(std::unique_ptr<RaftEngine> honest, std::vector<Behaviour> behaviours);

    Output on_tick() override;
    Output on_message(ReplicaId from, const crypto::Envelope& envelope, std::string_view raw) override;
    Output transfer_leadership(ReplicaId target) override { return rewrite(honest().transfer_leadership(target)); }
    std::string seal_for(ReplicaId to, crypto::MessageType type, const std::string& body) const override {
        return honest().seal_for(to, type, body);
    }

private:
    Output rewrite(Output out) override;
    // An append to a follower that is told another story: each entry loses its last request.
    std::string forked_append(ReplicaId to, const std::string& envelope) const;
    // A vote request claiming a log no voter's can beat.
    std::string lying_vote(ReplicaId to, const std::string& envelope) const;
    Output falsely_acknowledge(ReplicaId from, const crypto::Envelope& envelope, std::string_view raw);
};

}  // namespace tally::bft::raft
