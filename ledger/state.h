// The ledger: accounts, transactions with their results, and hash-chained blocks, kept in
// SQLite (WAL mode). A consensus engine orders batches; the ledger applies each batch as one
// block inside one SQLite transaction, deterministically, so every replica fed the same
// batches reaches the same blocks and the same state digest.
//
// What it trusts: nothing in a batch. Every transaction is decoded strictly and (unless the
// caller verified it already) its signature checked; each gets a result code.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/result.h"
#include "ledger/account.h"
#include "ledger/tx.h"

namespace tally::ledger {

// PRAGMA application_id of a ledger file: "TALY", so that Tally's databases identify themselves.
inline constexpr int32_t kLedgerApplicationId = 0x54414C59;
// meta's schema_version. 2: blocks carry the history digest, and the state digest covers it.
// 3: the accounts digest is a Merkle tree over key buckets (AccountTree), not one hash.
// 4: each block keeps its commit certificate; a block fetched after a state transfer
//    (backfill) may lack its history digest (NULL).
// 5: a block appends the accounts it touched to account_log; they join the accounts table
//    every so many rows; the view current_accounts reads the two as one (schema.cc). A version
//    4 file is upgraded when State opens it (it is a version 5 file with an empty log).
// 6: a block appends its transaction records to tx_log, in (seq, id) order; they join the
//    transactions table (keyed by id) every so many rows; the view all_transactions reads the
//    two as one (schema.cc). A version 4 or 5 file is upgraded when State opens it.
inline constexpr int64_t kLedgerSchemaVersion = 6;
// Rows of account log that make the block that reaches them merge it into the accounts table
// (at 64 transfers a block, touching up to 128 accounts: every 128 blocks or more).
inline constexpr uint64_t kAccountLogMergeRows = 16384;
// Rows of transaction log that make the block that reaches them merge it into the
// transactions table (one record per transfer: every 256 blocks of 64).
inline constexpr uint64_t kTxLogMergeRows = 16384;

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
// For a tx query, code, seq and value are the QUERIED transaction's recorded ones, else its
// last kNonceTooHigh execution's when the replica kept it (at that seq, value 0: schema.cc,
// kNotYetSchema), else kUnknownTx; tx_id is always the id of the transaction this outcome answers.
struct Outcome {
    crypto::Hash tx_id{};
    ResultCode code = ResultCode::kOk;
    uint64_t value = 0;      // balance for a balance query; 0 otherwise
    uint64_t nonce = 0;      // account nonce for a balance query; for nonce_too_high, the
                             // sender's nonce when it executed
    uint64_t seq = 0;        // where the transaction was (first) applied
    bool duplicate = false;  // already applied earlier: this repeats the first outcome
    bool query = false;      // it answered a query: read-only and never recorded, so a
                             // retransmission is the caller's to answer (node/replica.h)
};

// A block with the consensus proof that its batch committed (bft::Committed::certificate),
// opaque to the ledger: what a replica serves to a peer filling the blocks below a snapshot
// (backfill), and what `tally audit` checks.
struct CertifiedBlock {
    BlockHeader header;
    std::string certificate;
};
// Its bytes on the wire (ledger::pb::CertifiedBlock), and back: Error "malformed".
std::string encode_certified_block(const CertifiedBlock& block);
Result<CertifiedBlock> decode_certified_block(std::string_view bytes);

struct AppliedBlock {
    BlockHeader header;
    std::vector<Outcome> outcomes;  // one per transaction, in batch order
};

// A transaction's recorded outcome: what a retransmission (a duplicate) and a tx query are
// answered with. Only final results are recorded (tx.h).
struct TxRecord {
    crypto::Hash id{};
    ResultCode code = ResultCode::kOk;
    uint64_t seq = 0;    // the block it applied in
    uint64_t value = 0;
};

// The accounts as of a checkpoint, in pages shared with the ledger's own table until the
// ledger changes one (copy on write; account_table.h). Immutable, safe to read from any thread.
struct AccountPages;

// A checkpoint as a replica keeps it for state transfer (State::snapshot_point).
struct SnapshotPoint {
    BlockHeader last_block;
    crypto::Hash history{};
    std::shared_ptr<const AccountPages> accounts;
};

enum class Verify {
    kCheck,    // check every signature (the default: the ledger trusts nothing)
    kTrusted,  // the caller checked every signature already (consensus did, before ordering)
};

// Not thread-safe: one thread at a time (reads included; they share cached statements).
// Reads that cannot return an Error (transaction, block, query, snapshot_chunk's) abort the
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
    // An in-memory ledger keeps the same account with kDeferred: only sync() moves synced_seq
    // and calls the sync observer (the simulator keeps image() there, as what a power loss
    // leaves); with kEveryBlock every block counts as durable at once.
    enum class Durability { kEveryBlock, kDeferred };
    static Result<std::unique_ptr<State>> open(const std::string& path, const Genesis& genesis,
                                               Durability durability = Durability::kEveryBlock);

    // For the simulator: a private in-memory ledger holding `image` (bytes of image()), checked
    // like a file that open() finds. Errors as open()'s.
    static Result<std::unique_ptr<State>> open_image(std::string_view image,
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
    // `certificate` (the consensus proof that the batch committed) is kept with the block, in
    // the same transaction.
    Result<AppliedBlock> apply_block(uint64_t seq, uint64_t view,
                                     const std::vector<std::string>& txs,
                                     Verify verify = Verify::kCheck,
                                     std::string_view certificate = {});

    // Answers a query (TxBody with a balance or tx op) from the current state, unordered;
    // seq is last_seq() (or the queried transaction's). The signature is checked
    // (kBadSignature); a transfer or anything undecodable is kMalformed.
    Outcome query(std::string_view tx_envelope) const;

    // Makes every block applied so far durable (with kDeferred: fsyncs the WAL; a no-op for
    // kEveryBlock, whose blocks are durable already, and for an in-memory ledger). A replica
    // calls it before it signs a checkpoint (bft/engine.h, Output::ledger_sync_through), so that
    // a power loss of every replica at once cannot take a block 2f+1 of them vouched for.
    // Error "io": the disk is in doubt, and every later write fails too (as apply_block's).
    Status sync();
    // Replica `index` of `count`: the work every replica would otherwise do in the same block,
    // staggered against the other replicas', so that a quorum never waits for all of them at
    // once. The WAL's checkpoints (checkpointer.h, WalCheckpoints::stagger; kDeferred files
    // only), and the first merge of each log (account_log, tx_log), which waits for
    // k * index / count more rows than kAccountLogMergeRows or kTxLogMergeRows (a merge is a
    // few tens of milliseconds inside a block); later merges come every k rows, as before.
    // Nothing any digest covers depends on it: the views read a log and its table as one.
    // Call before applying blocks; 0 of any count is no stagger.
    void stagger(uint32_t index, uint32_t count);
    // The seq through which the ledger is known durable: by sync(), by the WAL's checkpoints
    // (which sync the WAL first), by kEveryBlock, or by being in memory.
    uint64_t synced_seq() const;
    // Called after every point at which the ledger became durable (sync() and the WAL's
    // checkpoints), with synced_seq(). For tests that keep what a power loss would leave
    // (tallyd --test-ledger-sync-copies). One observer; empty removes it. While one is set,
    // every checkpoint runs on the applying thread (its copies need files that change only
    // when it is called), not on the checkpointer's (ledger/checkpointer.h).
    void set_sync_observer(std::function<void(uint64_t synced_seq)> observer);
    // The WAL checkpoints run so far: by the checkpointer's thread (the bulk of the copying),
    // and on the applying thread (finishing one, or alone: checkpointer.h, WalCheckpoints).
    struct Checkpoints {
        uint64_t on_checkpointer = 0;
        uint64_t on_applying_thread = 0;
        std::string checkpointer_failure;  // why it stopped (all run on the applying thread since)
        bool checkpointer_busy = false;    // one is asked for or under way on its thread
        // Times a block's commit started the disk writing the WAL's new pages, without waiting
        // (a kDeferred file, every 1 MiB of WAL: state_impl.h, start_writeback), so that sync()
        // has little left to write.
        uint64_t early_writebacks = 0;
    };
    Checkpoints checkpoints() const;
    // The database's bytes (sqlite3_serialize): what the simulator keeps as a ledger's durable
    // state. For in-memory ledgers; small ones (it copies the whole database).
    std::string image() const;

    uint64_t last_seq() const;
    // This ledger file's identity, drawn at random when it was created (a positive number).
    int64_t ledger_id() const;
    crypto::Hash state_digest() const;  // of the account table, as of last_seq()
    BlockHeader last_block() const;
    std::optional<Account> account(const crypto::PublicKey& key) const;
    // The transaction's FINAL recorded outcome (tx.h), not a not-yet one: what a retransmission
    // is answered with.
    std::optional<Outcome> transaction(const crypto::Hash& tx_id) const;
    // The same for a transfer whose sender and nonce are known, without a lookup when it
    // cannot have one: a transfer is recorded only with a nonce at most its sender's (it
    // consumed it, or came too late) and a sender's nonce never falls, so a transfer from no
    // account or above its sender's nonce (every new one) has none.
    std::optional<Outcome> transfer_outcome(const crypto::Hash& tx_id, const crypto::PublicKey& sender,
                                            uint64_t nonce) const;
    std::optional<BlockHeader> block(uint64_t height) const;
    // The sum of all balances, modulo 2^64 (for conservation checks).
    uint64_t total_balance() const;
    std::vector<Account> accounts() const;  // sorted by key

    // ---- Backfill: the blocks below a snapshot, fetched from peers with their certificates ----
    // A state transfer installs the snapshot's block alone (without its certificate): the
    // blocks between the ledger's last before it and the snapshot are fetched afterwards, from
    // the top down, each proven by the one above it (its hash is the next block's prev_hash;
    // the snapshot's block hash is what 2f+1 replicas signed in the checkpoint). The accounts
    // and transaction records are the snapshot's and are never touched by it.
    //
    // The block at `height` with its certificate, if this ledger holds it.
    std::optional<CertifiedBlock> certified_block(uint64_t height) const;
    // The highest height in [1, last_seq()] whose block this ledger lacks or holds without
    // its certificate: the next block to fetch. 0 when the chain is whole.
    uint64_t backfill_height() const;
    // Is `header` the block this ledger needs at its height, as far as the chain proves it?
    // It must hash to the block held there (one held without its certificate), or to the
    // prev_hash of the block above it. Cheap (no signature): a caller checks this before the
    // certificate. Errors: "not_needed" (no block is missing there), "digest_mismatch" (not
    // the proven block: the peer lied).
    Status check_missing_block(const BlockHeader& header) const;
    // Stores `header` with `certificate`, whose batch (checked by the caller against the
    // replicas' keys, for this seq) is `txs`: header checked as check_missing_block does, and
    // its transactions' root and count against `txs`. One SQLite transaction; accounts,
    // records and last_seq stay as they are. Errors as check_missing_block's, plus
    // "chain_mismatch" (the block below, this ledger's own, does not link to it) and "io".
    Status add_missing_block(const BlockHeader& header, const std::vector<std::string>& txs,
                             std::string_view certificate);

    // The history digest as of last_seq(): see HistoryChain. The state digest is
    // combine_digests(digest_accounts(accounts()), history_digest()).
    crypto::Hash history_digest() const;

    // ---- State transfer, in pieces (SnapshotImport, below, is the receiving side) ----
    // What a replica keeps of a checkpoint to serve it later. Its size is the accounts'
    // (the state proper), not the history's: the transaction records come from the database
    // when a piece is asked for.
    SnapshotPoint snapshot_point() const;
    // The piece of the snapshot at `point` that starts at `cursor` (SnapshotCursor bytes from
    // SnapshotImport::next_cursor; empty: the beginning), as SnapshotChunk bytes of about
    // `max_bytes` at most (at least one item). Records are read from the database; they never
    // change once written, so those with seq <= point's are still exactly the point's, however
    // far the ledger has moved on. Error "malformed" for a cursor that does not decode.
    Result<std::string> snapshot_chunk(const SnapshotPoint& point, std::string_view cursor,
                                       size_t max_bytes) const;

  private:
    friend class SnapshotImport;
    struct Impl;
    explicit State(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// Receives a snapshot a piece at a time (State::snapshot_chunk answers each piece) and
// installs it. It trusts no piece. What it expects is the hash of the snapshot's block — what
// a PBFT checkpoint signs (node/replica.cc reports each block's hash as the engine's digest):
// it binds every field of the header but the view (prev_hash, tx_root, tx_count and the state
// digest, which covers the accounts and the history digest). Each piece is checked whole
// before any of it is kept — sizes, order, range, record ids unique (in the piece and against
// those staged before), and the digests it completes — so a piece that fails leaves nothing
// behind. The records are staged on disk, in a temporary table, so memory does not grow with
// the history. Errors from add(): "malformed", "digest_mismatch" — the serving peer lied or is
// broken; ask another for the same piece (after a "digest_mismatch" on the last piece, start a
// new SnapshotImport) — and "io" (local).
// One import at a time per State: a new one discards what an unfinished one staged.
class SnapshotImport {
  public:
    // Which records to fetch: only those of the blocks after the ledger's last (the records
    // up to it are the network's already, and its history digest there starts the chain
    // the new ones must extend), or all of them, from genesis (a ledger that may have gone
    // wrong, or an empty one).
    enum class Since { kWhatItHolds, kGenesis };
    SnapshotImport(State& state, uint64_t seq, const crypto::Hash& expected_block_hash,
                   Since since = Since::kWhatItHolds);
    ~SnapshotImport();
    SnapshotImport(const SnapshotImport&) = delete;
    SnapshotImport& operator=(const SnapshotImport&) = delete;

    uint64_t seq() const;
    // The cursor of the piece to ask for next (empty: the first).
    const std::string& next_cursor() const;
    // Adds the piece that answers next_cursor().
    Status add(std::string_view chunk);
    bool complete() const;
    uint64_t records() const;  // staged so far
    // Installs the snapshot in one SQLite transaction; only once complete(). The accounts
    // are replaced; the records join those the ledger holds (kWhatItHolds) or replace them
    // (kGenesis, which also drops every block between genesis and the snapshot's: a history
    // that went wrong). The blocks between the ledger's last and the snapshot's are not
    // transferred: they come with their certificates afterwards (backfill, above), and so does
    // the snapshot's block's certificate. Errors: "already_applied" (the
    // ledger reached the snapshot meanwhile), "io"; either leaves the state as it was.
    Status install();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Copies the snapshot at `point` from `source` to `target` through the pieces above, as
// state transfer does between replicas, in one call (for tests). `in_transit`, when
// set, is what happens to each piece on the way (a lying peer, in tests).
Status copy_snapshot(const State& source, const SnapshotPoint& point, State& target,
                     const crypto::Hash& expected_block_hash, size_t chunk_bytes,
                     const std::function<std::string(std::string)>& in_transit = {});

// The digest of a list of accounts sorted by key: the root of a Merkle tree of fixed shape over
// 2^16 buckets of accounts by the first 16 bits of their keys (account_table.h defines it exactly).
// A State keeps the tree and updates it per touched bucket, so a block's digest costs what the
// block touched, not what the ledger holds; this function builds it whole (snapshots, tests).
crypto::Hash digest_accounts(const std::vector<Account>& sorted_accounts);

// A block's state digest: SHA-256(accounts digest || history digest). It covers the
// transaction records too, so that a snapshot from a peer is checked whole: a record made up
// by a lying peer would otherwise turn a later transfer into a "duplicate" that never applies.
crypto::Hash combine_digests(const crypto::Hash& accounts, const crypto::Hash& history);

// The history digest: a hash chain over the blocks that recorded transactions,
//   history' = SHA-256(history || seq || for each record, by id: id || code || value)
// (integers 8 bytes big-endian), starting from 32 zero bytes at genesis. A block that
// records nothing leaves it unchanged. Fed every record by (seq, id), as the ledger records
// them a block at a time and as a snapshot streams them, it gives the same digest.
class HistoryChain {
  public:
    explicit HistoryChain(const crypto::Hash& start = {});
    ~HistoryChain();
    HistoryChain(const HistoryChain&) = delete;
    HistoryChain& operator=(const HistoryChain&) = delete;
    // Records must come in strictly increasing (seq, id) order (asserted).
    void add(const TxRecord& record);
    // The digest over everything added so far. Closes the open block: records added after
    // this must have a higher seq.
    crypto::Hash digest();

  private:
    crypto::Hash head_;
    std::unique_ptr<crypto::Sha256> open_;  // the block being added, if any
    uint64_t open_seq_ = 0;
    uint64_t last_seq_ = 0;
    crypto::Hash last_id_{};
    bool any_ = false;
};

}  // namespace tally::ledger
