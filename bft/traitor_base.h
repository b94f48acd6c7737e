// What every traitor shares (bft/pbft/traitor.h, bft/raft/traitor.h): it forwards every input to
// the honest engine it wraps and passes what that engine wants done through rewrite(), where
// the lies are told. `Interface` is bft::Engine or an engine's wider interface (Raft's
// RaftEngine). A traitor overrides an input only to add to it (PBFT's echoed votes, Raft's
// double vote and hurried clock).
#pragma once

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "bft/behaviours.h"
#include "bft/engine.h"

namespace tally::bft {

template <typename Interface>
class TraitorBase : public Interface {
public:
    TraitorBase(std::unique_ptr<Interface> honest, std::vector<Behaviour> behaviours)
        : honest_(std::move(honest)), behaviours_(std::move(behaviours)) {}

    Output on_tick() override { return rewrite(honest_->on_tick()); }
    Output on_message(ReplicaId from, const crypto::Envelope& envelope, std::string_view raw) override {
        return rewrite(honest_->on_message(from, envelope, raw));
    }
    Output on_client_request(const ClientRequest& request) override {
        return rewrite(honest_->on_client_request(request));
    }
    Output on_executed(uint64_t seq, const crypto::Hash& digest) override {
        return rewrite(honest_->on_executed(seq, digest));
    }
    Output on_state_restored(uint64_t seq, const crypto::Hash& digest) override {
        return rewrite(honest_->on_state_restored(seq, digest));
    }
    Output on_start(const std::vector<std::pair<std::string, std::string>>& records, uint64_t executed_seq,
                    const crypto::Hash& digest, const CertificateOf& certificate_of) override {
        return rewrite(honest_->on_start(records, executed_seq, digest, certificate_of));
    }
    EngineStatus status() const override { return honest_->status(); }
    bool takes_client_requests() const override { return honest_->takes_client_requests(); }
    bool offers_read_index() const override { return honest_->offers_read_index(); }
    std::optional<Output> hand_over() override {
        auto out = honest_->hand_over();
        if (!out) return std::nullopt;
        return rewrite(std::move(*out));
    }
    Output read_index(uint64_t read_id) override { return rewrite(honest_->read_index(read_id)); }
    std::vector<ReadResult> take_reads() override { return honest_->take_reads(); }
    std::vector<Detected> take_detected() override { return honest_->take_detected(); }

    const std::vector<Behaviour>& behaviours() const { return behaviours_; }
    bool has(Behaviour b) const { return std::find(behaviours_.begin(), behaviours_.end(), b) != behaviours_.end(); }

protected:
    // What the honest engine wants done, as this traitor does it instead.
    virtual Output rewrite(Output out) = 0;
    Interface& honest() { return *honest_; }
    const Interface& honest() const { return *honest_; }

private:
    std::unique_ptr<Interface> honest_;
    std::vector<Behaviour> behaviours_;
};

}  // namespace tally::bft
