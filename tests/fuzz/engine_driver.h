// Drives one consensus engine (PBFT or Raft) as the node does, from a script (fuzz_common.h):
// messages are sealed by the replica the record names, opened as the transport opens them and
// handed to on_message; committed batches are executed at once, in order (on_executed with
// fuzz::executed_digest); persisted records are kept in a map, as the consensus store would.
// The fuzz targets (fuzz_pbft, fuzz_raft) and the corpus generator's clusters use it.
//
// Properties checked after every input (engine.h's contract for an Output): committed sequence
// numbers are consecutive, a ledger sync never names a seq not executed, and the engine's own
// check_invariants() holds (PBFT).
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bft/engine.h"
#include "bft/pbft/messages.h"
#include "bft/pbft/pbft.h"
#include "bft/raft/raft.h"
#include "crypto/envelope.h"
#include "tests/fuzz/fuzz_common.h"

namespace tally::fuzz {

using Store = std::map<std::string, std::string>;

// Small intervals, so that a short script reaches checkpoints, water marks and view changes
// (the unit tests' harness uses the same).
inline bft::pbft::Config pbft_fuzz_config(bft::ReplicaId id) {
    bft::pbft::Config c;
    c.id = id;
    c.f = 1;
    c.replicas = replica_public_keys();
    c.checkpoint_interval = 4;
    c.watermark_window = 8;
    c.pipeline_depth = 4;
    c.batch_size_max = 4;
    c.view_change_timeout_ticks = 10;
    c.retransmit_ticks = 5;
    return c;
}

// Three Raft replicas (keys 0..2).
inline bft::raft::Config raft_fuzz_config(bft::ReplicaId id) {
    bft::raft::Config c;
    c.id = id;
    auto keys = replica_public_keys();
    c.replicas.assign(keys.begin(), keys.begin() + 3);
    c.seed = 1;
    c.election_timeout_ticks = 10;
    c.heartbeat_ticks = 2;
    c.batch_size_max = 4;
    c.pipeline_depth = 4;
    c.max_inflight = 4;
    c.max_entries_per_append = 4;
    c.snapshot_interval = 8;
    c.snapshot_trailing = 2;
    return c;
}

inline void keep(const bft::Output& out, Store& store) {
    for (const auto& op : out.persist) {
        if (const auto* put = std::get_if<bft::PersistPut>(&op)) {
            store[put->key] = put->value;
        } else {
            const auto& erase = std::get<bft::PersistErase>(op);
            if (erase.from < erase.to)
                store.erase(store.lower_bound(erase.from), store.lower_bound(erase.to));
        }
    }
}

inline std::vector<std::pair<std::string, std::string>> records_of(const Store& store) {
    return {store.begin(), store.end()};
}

struct EngineDriver {
    bft::ReplicaId id = 0;
    std::vector<crypto::PublicKey> replicas;
    std::unique_ptr<bft::Engine> engine;
    std::function<void()> check_invariants;  // may be empty
    LedgerAuthenticator auth;
    Store store;
    uint64_t executed = 0;
    std::optional<bft::SnapshotTarget> fetch;
    // Everything the engine sent, when the caller wants it (the generator's network).
    std::function<void(const bft::Outgoing&)> on_send;
    std::function<void(const bft::Committed&)> on_commit;

    // Applies an output as the node would, executing what it commits (and what that commits).
    void handle(bft::Output first) {
        std::deque<bft::Output> pending;
        pending.push_back(std::move(first));
        while (!pending.empty()) {
            bft::Output out = std::move(pending.front());
            pending.pop_front();
            FUZZ_CHECK(out.ledger_sync_through <= executed);
            keep(out, store);
            if (on_send) {
                for (const auto& o : out.send_early) on_send(o);
                for (const auto& o : out.send) on_send(o);
            }
            for (const auto& c : out.commit) {
                FUZZ_CHECK(c.seq == executed + 1);  // consecutive across outputs (engine.h)
                executed = c.seq;
                if (on_commit) on_commit(c);
                pending.push_back(engine->on_executed(c.seq, executed_digest(c.seq)));
            }
            if (out.fetch_snapshot) fetch = out.fetch_snapshot;
            if (check_invariants) check_invariants();
        }
        (void)engine->take_detected();
    }

    void start(uint64_t executed_seq = 0, const bft::CertificateOf& certificate_of = {}) {
        executed = executed_seq;
        handle(engine->on_start(records_of(store), executed_seq,
                                executed_seq == 0 ? crypto::Hash{} : executed_digest(executed_seq),
                                certificate_of));
    }

    // A pre-prepare is authenticated by its header (bft/pbft/messages.h), which a fuzzed body
    // would almost never carry: the driver signs one as `from` over the fuzzed view, seq and
    // digest, as a primary would, so that fuzzed pre-prepares reach the engine's checks past
    // the header. An empty digest becomes its batch's (a wrong one stays, for the digest
    // check). A body that does not parse goes as it is.
    std::string with_header(bft::ReplicaId from, std::string_view body) const {
        bft::pbft::pb::PrePrepare pp;
        if (!pp.ParseFromArray(body.data(), static_cast<int>(body.size()))) return std::string(body);
        if (pp.digest().empty()) {
            const std::vector<std::string> batch(pp.requests().begin(), pp.requests().end());
            pp.set_digest(bft::pbft::hash_bytes(bft::pbft::batch_digest(batch)));
        }
        bft::pbft::pb::PrePrepare header;
        header.set_view(pp.view());
        header.set_seq(pp.seq());
        header.set_digest(pp.digest());
        pp.set_header(crypto::seal(replica_keys()[from], crypto::MessageType::kPrePrepareHeader,
                                   header.SerializeAsString()));
        return pp.SerializeAsString();
    }

    // Seals `body` as replica `from`'s message of `type` and delivers it, as the transport
    // would (opened, signature checked). Messages from this replica itself are not delivered.
    void deliver(bft::ReplicaId from, uint8_t type, std::string_view body) {
        if (from >= replicas.size() || from == id || !crypto::is_known_type(type)) return;
        const std::string signed_body = type == static_cast<uint8_t>(crypto::MessageType::kPrePrepare)
                                            ? with_header(from, body)
                                            : std::string(body);
        std::string raw = crypto::seal(replica_keys()[from], static_cast<crypto::MessageType>(type), signed_body);
        auto env = crypto::open(raw);
        // A pre-prepare is authenticated by its header (bft/pbft/messages.h): one whose header
        // does not bind it is dropped, as the node's workers drop it.
        if (env && env->type == crypto::MessageType::kPrePrepare && !bft::pbft::pre_prepare_authentic(*env)) return;
        // A kBatchReply's signature is over its batch's root, not its frame (reply_batch.h): the
        // transport refuses such a frame, as it would this one.
        if (!env) {
            FUZZ_CHECK(type == static_cast<uint8_t>(crypto::MessageType::kBatchReply));
            return;
        }
        handle(engine->on_message(from, *env, raw));
    }

    void run(const Record& r) {
        switch (r.op % kEngineOps) {
            case kOpMessage:
                if (r.body.size() >= 2)
                    deliver(static_cast<uint8_t>(r.body[0]) % replicas.size(),
                            static_cast<uint8_t>(r.body[1]), r.body.substr(2));
                break;
            case kOpTick:
                handle(engine->on_tick());
                break;
            case kOpClient: {
                auto info = auth.authenticate(r.body);
                if (info) handle(engine->on_client_request(bft::ClientRequest{*info, std::string(r.body)}));
                break;
            }
            case kOpRestored:
                if (fetch && fetch->seq > executed) {
                    auto target = *fetch;
                    fetch.reset();
                    executed = target.seq;
                    handle(engine->on_state_restored(target.seq, target.digest));
                }
                break;
        }
    }
};

}  // namespace tally::fuzz
