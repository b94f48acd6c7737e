// Answers: what a replica says outside consensus — its replies to clients and the pieces of
// its ledger it serves to peers in state transfer — passes through one before it is signed.
// The honest replica's changes nothing. A traitor's (node/traitor.h, LyingAnswers) lies
// there, as a TraitorEngine lies in consensus messages: the replica never asks whether it is
// a traitor; it is handed parts that are.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "bft/engine.h"
#include "node/api/client.pb.h"

namespace tally::node {

enum class ReplyKind {
    kOrdered,  // a request's result (a transfer or an ordered query)
    kRead,     // an unordered read from the replica's current state
};

// What the snapshot path offers an Answers that sends pieces of its own.
class SnapshotServer {
public:
    virtual ~SnapshotServer() = default;
    // Whether this replica still serves the ledger at checkpoint `seq`.
    virtual bool serves(uint64_t seq) const = 0;
    // The piece at `cursor` of the ledger at checkpoint `seq`, as this replica would serve it;
    // nullopt when it serves `seq` no more or the cursor does not decode.
    virtual std::optional<std::string> snapshot_piece(uint64_t seq, const std::string& cursor) = 0;
    // Sends `chunk` to `to`, signed, as the answer for (seq, cursor).
    virtual void send_snapshot_piece(bft::ReplicaId to, uint64_t seq, const std::string& cursor,
                                     std::string chunk) = 0;
};

class Answers {
public:
    using Clock = std::chrono::steady_clock;
    virtual ~Answers() = default;
    // A reply to a client, before it is signed.
    virtual void on_reply(ReplyKind kind, api::pb::Reply& reply) = 0;
    // The piece of checkpoint `seq` at `cursor` that `to` asked for, before it is signed;
    // returns what goes out.
    virtual std::string on_snapshot_piece(bft::ReplicaId to, uint64_t seq, const std::string& cursor,
                                          std::string chunk, Clock::time_point now) = 0;
    // A block served to a peer filling the blocks below a snapshot (ledger::pb::CertifiedBlock
    // bytes; the first of an answer whose blocks end at `top`), before it is signed.
    virtual std::string on_backfill_block(uint64_t top, std::string block) = 0;
    // Once per turn of the replica's loop.
    virtual void on_turn(SnapshotServer& server, Clock::time_point now) = 0;
};

// Says what the replica's state says.
class HonestAnswers final : public Answers {
public:
    void on_reply(ReplyKind, api::pb::Reply&) override {}
    std::string on_snapshot_piece(bft::ReplicaId, uint64_t, const std::string&, std::string chunk,
                                  Clock::time_point) override {
        return chunk;
    }
    std::string on_backfill_block(uint64_t, std::string block) override { return block; }
    void on_turn(SnapshotServer&, Clock::time_point) override {}
};

}  // namespace tally::node
