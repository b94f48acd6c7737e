// Which consensus store a replica may run on (issue 11 §2).
//
// A replica's promise never to contradict what it signed lives in its consensus store
// (DATA_DIR/consensus.db): the view it voted in, what it pre-prepared and prepared. A store
// that is missing, empty, another program's, another replica's or ledger's, or older than the
// ledger (restored from a backup) has forgotten votes, and a replica started on it could vote
// against itself. So the store is bound to its replica and its ledger (node::Store::Binding),
// and open_bound_store() refuses every such store with a message that names the file and says
// what to do: `tallyd --recover`, which sets the old store aside and rejoins as a fresh
// replica — silent (no pre-prepare, prepare or NEW-VIEW) until it has seen the network commit
// in its current view, then voting from the next view (bft/pbft/engine.h, recovering_).
//
// "Older than the ledger" is caught at the granularity of ledger_seq_max's steps (one
// checkpoint interval, K): the node raises it, synced, before the ledger may pass it, so a
// store restored from a backup is caught once the ledger has moved past what the backup
// allowed — at most K blocks after the backup was taken. A backup restored sooner is not
// caught by the seq alone: never restore a consensus store from a backup; use --recover.
//
// What it trusts: the ledger (opened and checked by ledger::State) to say what it is.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "crypto/result.h"
#include "node/store.h"

namespace tally::node {

// The ledger a store must belong to.
struct LedgerIdentity {
    std::string replica_key;  // the replica's public key (32 bytes)
    int64_t ledger_id = 0;    // ledger::State::ledger_id()
    uint64_t last_seq = 0;    // ledger::State::last_seq()
    bool created_now = false; // ledger.db did not exist before this start
};

struct BoundStore {
    std::unique_ptr<Store> store;
    bool recovering = false;   // start the engine silent (pbft::Config::recovering)
    std::string replaced;      // --recover: where the old store was moved ("" if none)
    uint64_t ledger_seq_max = 0;  // the store's Binding::ledger_seq_max
};

// Opens `path` for a replica whose ledger is `ledger`. With `recover`, moves any store at
// `path` (and its -wal and -shm files) aside to `path`.replaced-UNIXTIME and makes a new one,
// bound and marked recovering. Otherwise a new store is made only beside a ledger created in
// this start (a first start). `seq_margin`: how far ahead of the ledger the store's
// ledger_seq_max is set. Errors: "store_refused" (the message says why and what to do), "io".
Result<BoundStore> open_bound_store(const std::string& path, const LedgerIdentity& ledger,
                                    bool recover, uint64_t seq_margin);

// The same decisions for a store the caller opened (Store::open_memory, in the simulator): a
// new store (created()) is bound beside a ledger created now and refused beside an existing
// one; an unbound store with records or beside a ledger past seq 0, another replica's or
// ledger's, or one older than the ledger is refused; the recovering flag is read. With
// `recover` there is no file to set aside: `store` must be new and unbound (Error "not_new"
// otherwise), and is bound marked recovering; `replaced` stays "". Errors as above.
Result<BoundStore> open_bound_store(std::unique_ptr<Store> store, const LedgerIdentity& ledger,
                                    bool recover, uint64_t seq_margin);

}  // namespace tally::node
