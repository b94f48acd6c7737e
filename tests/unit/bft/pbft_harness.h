// Helpers for PBFT rule tests: four replicas' keys, messages sealed as any of them, and a
// direct line into one engine under test. No network, no time but ticks.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bft/pbft/messages.h"
#include "bft/pbft/pbft.h"
#include "bft/quorum.h"
#include "crypto/envelope.h"
#include "ledger/tx.h"

namespace tally::bft::pbft::testing {

// The ledger's own check of a request: decode, verify, read client and nonce.
class LedgerAuthenticator : public RequestAuthenticator {
public:
    Result<RequestInfo> authenticate(std::string_view payload) override {
        auto tx = ledger::decode_tx(payload);
        if (!tx) return tx.error();
        if (!ledger::verify_tx(*tx)) return make_error("bad_signature", "client signature");
        return RequestInfo{tx->sender, tx->nonce};
    }
};

inline crypto::KeyPair key_of(uint32_t i) {
    crypto::Seed seed{};
    seed[0] = static_cast<uint8_t>(i + 1);
    seed[1] = 0x5a;
    return crypto::KeyPair::from_seed(seed);
}

struct Harness {
    uint32_t f = 1;
    std::vector<crypto::KeyPair> keys;
    LedgerAuthenticator auth;
    std::unique_ptr<Engine> engine;
    ReplicaId id;
    crypto::KeyPair client = key_of(100);
    uint64_t client_nonce = 0;
    Config config;

    explicit Harness(ReplicaId under_test, uint32_t faults = 1) : f(faults), id(under_test) {
        for (uint32_t i = 0; i < ByzantineQuorum{f}.n(); ++i) keys.push_back(key_of(i));
        config.id = id;
        config.f = f;
        for (const auto& k : keys) config.replicas.push_back(k.public_key());
        config.checkpoint_interval = 4;
        config.watermark_window = 8;
        config.pipeline_depth = 4;
        config.batch_size_max = 4;
        config.view_change_timeout_ticks = 10;
        config.retransmit_ticks = 1000;
        restart({});
    }

    // A new engine with the given persisted records (an empty ledger).
    Output restart(const std::vector<std::pair<std::string, std::string>>& records,
                   uint64_t executed = 0) {
        engine = make_engine(config, keys[id], auth);
        return engine->on_start(records, executed, crypto::Hash{}, {});
    }

    std::string request() {
        return ledger::make_transfer(client, key_of(101).public_key(), 5, ++client_nonce);
    }

    // A pre-prepare with its signed header (a `digest` other than the batch's makes a lie).
    std::string pre_prepare(ReplicaId from, uint64_t view, uint64_t seq, const std::vector<std::string>& requests,
                            std::optional<crypto::Hash> digest = std::nullopt) const {
        return seal_pre_prepare(keys[from], view, seq, digest ? *digest : batch_digest(requests), requests);
    }

    // The header alone, as a VIEW-CHANGE's certificate carries it.
    std::string header(ReplicaId from, uint64_t view, uint64_t seq, const crypto::Hash& digest) const {
        return header_of(pre_prepare(from, view, seq, {}, digest));
    }

    std::string vote(crypto::MessageType type, ReplicaId from, uint64_t view, uint64_t seq,
                     const crypto::Hash& digest) const {
        pb::Vote v;
        v.set_view(view);
        v.set_seq(seq);
        v.set_digest(hash_bytes(digest));
        return crypto::seal(keys[from], type, v.SerializeAsString());
    }

    std::string checkpoint(ReplicaId from, uint64_t seq, const crypto::Hash& digest) const {
        pb::Checkpoint cp;
        cp.set_seq(seq);
        cp.set_state_digest(hash_bytes(digest));
        return crypto::seal(keys[from], crypto::MessageType::kCheckpoint, cp.SerializeAsString());
    }

    // Delivers a sealed message as the transport would: opened and authenticated (a pre-prepare
    // by its header, messages.h), sender mapped to its id. A test that hands it one the
    // transport would drop fails: check pre_prepare_authentic, or use deliver_unchecked.
    Output deliver(const std::string& raw) {
        crypto::OpenOptions unchecked;
        unchecked.verify_signature = false;
        auto env = crypto::open(raw, unchecked);
        const bool authentic = env && (env->type == crypto::MessageType::kPrePrepare ? pre_prepare_authentic(*env)
                                                                                   : crypto::open(raw).ok());
        if (!authentic) {
            ADD_FAILURE() << "deliver(): a message the transport would drop";
            return {};
        }
        return deliver_unchecked(raw);
    }

    // Hands the engine a message its caller did not authenticate (a pre-prepare's header
    // unchecked): what the engine's own checks refuse.
    Output deliver_unchecked(const std::string& raw) {
        crypto::OpenOptions unchecked;
        unchecked.verify_signature = false;
        auto env = crypto::open(raw, unchecked);
        ReplicaId from = 0;
        for (ReplicaId i = 0; i < keys.size(); ++i)
            if (keys[i].public_key() == env->sender) from = i;
        return engine->on_message(from, *env, raw);
    }

    bool detected(Misbehaviour kind) {
        auto all = engine->take_detected();
        return std::any_of(all.begin(), all.end(), [&](const Detected& d) { return d.kind == kind; });
    }
};

// What an engine persisted, as the store would return it on the next start.
using Store = std::map<std::string, std::string>;

// Applies everything an output wrote to `store`, as the node's store would.
inline void keep(const Output& out, Store& store) {
    for (const auto& op : out.persist) {
        if (const auto* put = std::get_if<PersistPut>(&op)) {
            store[put->key] = put->value;
        } else {
            const auto& erase = std::get<PersistErase>(op);
            store.erase(store.lower_bound(erase.from), store.lower_bound(erase.to));
        }
    }
}

// An empty VIEW-CHANGE (no checkpoint, no certificate) from `from` for `new_view`.
inline std::string view_change(const Harness& h, ReplicaId from, uint64_t new_view) {
    pb::ViewChange vc;
    vc.set_new_view(new_view);
    return crypto::seal(h.keys[from], crypto::MessageType::kViewChange, vc.SerializeAsString());
}

// The messages of one type an output sends, early (engine.h) or not.
inline std::vector<crypto::Envelope> sent(const Output& out, crypto::MessageType type) {
    std::vector<crypto::Envelope> result;
    for (const auto* sends : {&out.send_early, &out.send}) {
        for (const auto& o : *sends) {
            auto env = crypto::open(o.envelope);
            if (env && env->type == type) result.push_back(*env);
        }
    }
    return result;
}

}  // namespace tally::bft::pbft::testing
