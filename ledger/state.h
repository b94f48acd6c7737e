// The ledger: accounts, transactions with their results, and hash-chained blocks, kept in
// SQLite (WAL mode). A consensus engine orders batches; the ledger applies each batch as one
// block inside one SQLite transaction, deterministically, so every replica fed the same
// batches reaches the same blocks and the same state digest.
//
// What it trusts: nothing in a batch. Every transaction is decoded strictly and (unless the
// caller verified it already) its signature checked; each gets a result code.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/result.h"
#include "ledger/tx.h"

namespace tally::ledger {

struct Account {
    crypto::PublicKey key{};
    uint64_t balance = 0;
    uint64_t nonce = 0;  // the last applied nonce; the next transfer must carry nonce + 1
};

struct Genesis {
    std::vector<Account> accounts;  // nonce 0
};

struct BlockHeader {
    uint64_t height = 0;  // == the consensus sequence number it was ordered at
    uint64_t seq = 0;
    uint64_t view = 0;  // PBFT view / Raft term this replica committed it in; informational,
                        // not hashed: replicas may commit one batch in different views
    crypto::Hash prev_hash{};
    crypto::Hash tx_root{};       // Merkle root of the transactions' ids, in batch order
    crypto::Hash state_digest{};  // after the block
    uint32_t tx_count = 0;
    crypto::Hash hash() const;  // SHA-256 over every field above but view, fixed-width, big-endian
};

// What happened to one transaction of a block (or one query).
// For a tx query, code, seq and value are the QUERIED transaction's recorded ones (kUnknownTx
// when it has none); tx_id is always the id of the transaction this outcome answers.
struct Outcome {
    crypto::Hash tx_id{};
    ResultCode code = ResultCode::kOk;
    uint64_t value = 0;      // balance for a balance query; 0 otherwise
    uint64_t nonce = 0;      // account nonce for a balance query
    uint64_t seq = 0;        // where the transaction was (first) applied
    bool duplicate = false;  // already applied earlier: this repeats the first outcome
    bool query = false;      // it answered a query: read-only and never recorded, so a
                             // retransmission is the caller's to answer (node/replica.h)
};

struct AppliedBlock {
    BlockHeader header;
    std::vector<Outcome> outcomes;  // one per transaction, in batch order
};

enum class Verify {
    kCheck,    // check every signature (the default: the ledger trusts nothing)
    kTrusted,  // the caller checked every signature already (consensus did, before ordering)
};

// Not thread-safe: one thread at a time (reads included; they share cached statements).
// Reads that cannot return an Error (transaction, block, query, export_snapshot) abort the
// process if SQLite fails to read a database it already opened and checked: a replica must
// stop rather than answer from a disk it cannot trust.
class State {
  public:
    // Opens (creating if needed) the ledger at `path`; ":memory:" gives a private in-memory
    // ledger for the simulator and tests. A new ledger is seeded from `genesis` (block 0).
    // An existing one ignores `genesis`. Errors: "corrupt" (not a Tally database, or a
    // failed integrity check), "io", "bad_genesis" (an account listed twice).
    // An existing file must carry Tally's application id and schema version, pass
    // `PRAGMA quick_check`, and its accounts must hash to its last block's state digest.
    //
    // `durability`: kEveryBlock syncs each block to disk before apply_block() returns
    // (SQLite synchronous=FULL). kDeferred (synchronous=NORMAL) writes each block to the OS
    // before it returns, so it survives the process being killed, and syncs at WAL
    // checkpoints: a machine crash may lose the last blocks, never part of one. A replica can
    // use kDeferred because it can execute those blocks again from what consensus made durable.
    enum class Durability { kEveryBlock, kDeferred };
    static Result<std::unique_ptr<State>> open(const std::string& path, const Genesis& genesis,
                                               Durability durability = Durability::kEveryBlock);

    ~State();
    State(const State&) = delete;
    State& operator=(const State&) = delete;

    // Applies `txs` (transaction envelopes) as block `seq`, which must be last_seq() + 1
    // (Error "already_applied" when seq <= last_seq(), "gap" when above). All of it commits in
    // one SQLite transaction, with last_seq; a crash leaves all of it or none.
    // Error "io" (disk full, ...) leaves the state as it was before the call; if the disk is
    // left in doubt (a failed fsync or rollback), every later write also fails with "io"
    // until the ledger is reopened. Outcome rules: tx.h, next to ResultCode.
    Result<AppliedBlock> apply_block(uint64_t seq, uint64_t view,
                                     const std::vector<std::string>& txs,
                                     Verify verify = Verify::kCheck);

    // Answers a query (TxBody with a balance or tx op) from the current state, unordered;
    // seq is last_seq() (or the queried transaction's). The signature is checked
    // (kBadSignature); a transfer or anything undecodable is kMalformed.
    Outcome query(std::string_view tx_envelope) const;

    uint64_t last_seq() const;
    crypto::Hash state_digest() const;  // of the account table, as of last_seq()
    BlockHeader last_block() const;
    std::optional<Account> account(const crypto::PublicKey& key) const;
    std::optional<Outcome> transaction(const crypto::Hash& tx_id) const;
    std::optional<BlockHeader> block(uint64_t height) const;
    // The sum of all balances, modulo 2^64 (for conservation checks).
    uint64_t total_balance() const;
    std::vector<Account> accounts() const;  // sorted by key

    // The whole state as Snapshot bytes (ledger.proto): every account and every recorded
    // transaction, so it grows with the history.
    std::string export_snapshot() const;
    // Replaces the whole state with a snapshot. Refuses ("digest_mismatch") a snapshot whose
    // accounts do not hash to `expected_digest` or to the digest it states; "malformed" when
    // the bytes do not decode or break the format (sizes, order). On error the state is
    // unchanged. Blocks below the snapshot's last block are gone afterwards.
    // Note: the digest covers the accounts only; the transaction records come on trust.
    Status import_snapshot(std::string_view snapshot, const crypto::Hash& expected_digest);

  private:
    struct Impl;
    explicit State(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// The state digest of a list of accounts sorted by key: SHA-256 over each account's
// key || balance || nonce (big-endian, fixed width). Shared by State and its tests.
crypto::Hash digest_accounts(const std::vector<Account>& sorted_accounts);

}  // namespace tally::ledger
