// Byzantine replicas no list of behaviours enumerates, for the simulator's random search
// (NodeSearch, sim/node_search_sim_test.cc). Both wrap an honest PBFT engine
// (NodeSimConfig::wrap) and are seeded, so a run replays exactly.
//
// MutatingEngine (after ByzzFuzz, Winter et al., 2023: small-scope mutations). Each message the
// honest engine sends is, with probability `rate`, sent changed in one small way:
//   drop            not sent at all
//   duplicate       sent twice
//   subset          a broadcast reaches only a random subset of the replicas
//   field           one field of the body changed (protobuf reflection, so every message type
//                   and every field is a target): a number +1, -1, 0, doubled or far ahead; a
//                   digest replaced by another this replica sent before, or by garbage; a byte
//                   of an embedded envelope flipped; a list entry dropped, duplicated, or the
//                   list cleared. Re-signed with the replica's own key.
//   split           the changed message to a random subset, the original to the rest
//                   (equivocation the mutation invents)
//
// TwinsEngine (after Twins, Bano et al., 2022): two honest instances of one replica, with the
// same key, each seeing part of the network. Every `period` ticks each other replica is put,
// at random, on twin A's side, twin B's, or both; a twin hears from and talks to only the
// replicas on its side. Twin A is the one the simulator executes for (its ledger, store and
// state transfer); twin B executes on a ledger of its own and, when it falls behind a
// checkpoint, stays behind. Together they are one Byzantine replica: two honest copies that
// may each sign something different for the same slot.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bft/engine.h"
#include "bft/pbft/pbft.h"
#include "crypto/keys.h"
#include "ledger/state.h"
#include "node/authenticator.h"

namespace tally::sim {

class MutatingEngine final : public bft::Engine {
  public:
    MutatingEngine(std::unique_ptr<bft::Engine> honest, const crypto::KeyPair& key, uint32_t n,
                   bft::ReplicaId id, uint64_t seed, double rate);

    bft::Output on_tick() override { return rewrite(honest_->on_tick()); }
    bft::Output on_message(bft::ReplicaId from, const crypto::Envelope& envelope,
                           std::string_view raw) override {
        return rewrite(honest_->on_message(from, envelope, raw));
    }
    bft::Output on_client_request(const bft::ClientRequest& request) override {
        return rewrite(honest_->on_client_request(request));
    }
    bft::Output on_executed(uint64_t seq, const crypto::Hash& digest) override {
        return rewrite(honest_->on_executed(seq, digest));
    }
    bft::Output on_state_restored(uint64_t seq, const crypto::Hash& digest) override {
        return rewrite(honest_->on_state_restored(seq, digest));
    }
    bft::Output on_start(const std::vector<std::pair<std::string, std::string>>& records,
                         uint64_t executed_seq, const crypto::Hash& digest,
                         const bft::CertificateOf& certificate_of) override {
        return rewrite(honest_->on_start(records, executed_seq, digest, certificate_of));
    }
    bft::EngineStatus status() const override { return honest_->status(); }
    std::vector<bft::Detected> take_detected() override { return honest_->take_detected(); }

    uint64_t mutations() const { return mutations_; }

  private:
    bft::Output rewrite(bft::Output out);
    // The envelope with one field of its body changed; empty when it has no body to change.
    std::string mutate_field(const std::string& envelope);
    std::vector<bft::ReplicaId> random_subset();

    std::unique_ptr<bft::Engine> honest_;
    crypto::KeyPair key_;
    uint32_t n_;
    bft::ReplicaId id_;
    std::mt19937_64 rng_;
    double rate_;
    std::deque<std::string> digests_;  // 32-byte values this replica sent before
    uint64_t mutations_ = 0;
};

class TwinsEngine final : public bft::Engine {
  public:
    TwinsEngine(std::unique_ptr<bft::Engine> a, const bft::pbft::Config& config,
                const crypto::KeyPair& key, const ledger::Genesis& genesis, uint64_t seed,
                uint64_t period);

    bft::Output on_tick() override;
    bft::Output on_message(bft::ReplicaId from, const crypto::Envelope& envelope,
                           std::string_view raw) override;
    bft::Output on_client_request(const bft::ClientRequest& request) override;
    bft::Output on_executed(uint64_t seq, const crypto::Hash& digest) override {
        return route_a(a_->on_executed(seq, digest));
    }
    bft::Output on_state_restored(uint64_t seq, const crypto::Hash& digest) override {
        return route_a(a_->on_state_restored(seq, digest));
    }
    bft::Output on_start(const std::vector<std::pair<std::string, std::string>>& records,
                         uint64_t executed_seq, const crypto::Hash& digest,
                         const bft::CertificateOf& certificate_of) override;
    bft::EngineStatus status() const override { return a_->status(); }
    std::vector<bft::Detected> take_detected() override { return a_->take_detected(); }

  private:
    enum Side : uint8_t { kA = 1, kB = 2, kBoth = 3 };
    void repartition();
    // Keeps only the messages to replicas on `twin`'s side (a broadcast becomes one per replica).
    void restrict(std::vector<bft::Outgoing>& send, Side twin) const;
    bft::Output route_a(bft::Output out);
    // Runs twin B's output: executes its commits on its own ledger; returns what it sends.
    std::vector<bft::Outgoing> run_b(bft::Output out);

    std::unique_ptr<bft::Engine> a_;
    node::TxAuthenticator authenticator_b_;
    std::unique_ptr<bft::Engine> b_;
    std::unique_ptr<ledger::State> ledger_b_;
    bool b_stuck_ = false;
    bft::pbft::Config config_;
    std::mt19937_64 rng_;
    uint64_t period_;
    uint64_t now_ = 0;
    std::vector<Side> side_;
};

}  // namespace tally::sim
