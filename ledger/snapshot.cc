// State transfer and backfill (state.h): a snapshot served a piece at a time from a
// checkpoint, a SnapshotImport that checks every piece and installs the whole, and the blocks
// below a snapshot fetched afterwards with their certificates (and their bytes on the wire).
#include <algorithm>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "crypto/assert.h"
#include "crypto/merkle.h"
#include "ledger/ledger.pb.h"
#include "ledger/state_impl.h"

namespace tally::ledger {

// ---- snapshots ----

SnapshotPoint State::snapshot_point() const {
    const Impl& m = *impl_;
    TALLY_ASSERT(!m.accounts.in_block());
    return SnapshotPoint{m.last_block, m.history, m.accounts.share()};
}

namespace {

// Protobuf's byte budget per item, near enough: fields, tags and lengths.
constexpr size_t kAccountRecordBytes = 32 + 2 * 10 + 6;
constexpr size_t kTxRecordBytes = 32 + 5 + 2 * 10 + 6;

void put_block(const BlockHeader& header, pb::BlockRecord& out) {
    out.set_height(header.height);
    out.set_seq(header.seq);
    out.set_view(header.view);
    out.set_prev_hash(std::string(crypto::as_bytes(header.prev_hash)));
    out.set_tx_root(std::string(crypto::as_bytes(header.tx_root)));
    out.set_state_digest(std::string(crypto::as_bytes(header.state_digest)));
    out.set_tx_count(header.tx_count);
}

std::optional<BlockHeader> get_block(const pb::BlockRecord& in) {
    BlockHeader header;
    header.height = in.height();
    header.seq = in.seq();
    header.view = in.view();
    header.tx_count = in.tx_count();
    auto prev = crypto::array_from_bytes<32>(in.prev_hash());
    auto root = crypto::array_from_bytes<32>(in.tx_root());
    auto digest = crypto::array_from_bytes<32>(in.state_digest());
    if (!prev || !root || !digest) return std::nullopt;
    header.prev_hash = *prev;
    header.tx_root = *root;
    header.state_digest = *digest;
    return header;
}

// The view is not part of a block's identity: honest replicas may commit one batch in
// different views (BlockHeader::view), and pieces from two of them must compare equal.
bool same_block(const BlockHeader& a, const BlockHeader& b) { return a.hash() == b.hash(); }

// (seq, id) order, the order records stream in.
bool record_before(uint64_t seq_a, const crypto::Hash& id_a, uint64_t seq_b,
                   const crypto::Hash& id_b) {
    return seq_a < seq_b || (seq_a == seq_b && id_a < id_b);
}

}  // namespace

Result<std::string> State::snapshot_chunk(const SnapshotPoint& point, std::string_view cursor_bytes,
                                          size_t max_bytes) const {
    const Impl& m = *impl_;
    pb::SnapshotCursor cursor;
    if (cursor_bytes.size() > 1024 ||
        !cursor.ParseFromArray(cursor_bytes.data(), static_cast<int>(cursor_bytes.size())))
        return make_error("malformed", "snapshot cursor: does not decode");
    TALLY_ASSERT(point.accounts != nullptr);
    pb::SnapshotChunk chunk;
    put_block(point.last_block, *chunk.mutable_last_block());
    chunk.set_history(std::string(crypto::as_bytes(point.history)));
    size_t budget = std::max<size_t>(max_bytes, kTxRecordBytes);

    if (!cursor.records()) {
        std::optional<crypto::PublicKey> after;
        if (!cursor.after_key().empty()) {
            auto key = crypto::array_from_bytes<32>(cursor.after_key());
            if (!key) return make_error("malformed", "snapshot cursor: a key is not 32 bytes");
            after = *key;
        }
        bool more = false;
        point.accounts->for_each_after(after ? &*after : nullptr, [&](const Account& account) {
            if (budget < kAccountRecordBytes) return !(more = true);
            pb::AccountRecord* record = chunk.add_accounts();
            record->set_key(std::string(crypto::as_bytes(account.key)));
            record->set_balance(account.balance);
            record->set_nonce(account.nonce);
            budget -= kAccountRecordBytes;
            return true;
        });
        if (more) return chunk.SerializeAsString();
        chunk.set_accounts_end(true);
        // The records follow, from the first block the asker lacks.
        cursor.set_records(true);
        cursor.clear_after_id();
        cursor.set_after_seq(cursor.since_seq());
    }

    // Records by (seq, id), through the point, after the cursor.
    Statement page;
    if (page.prepare(m.db,
                     "SELECT id, code, seq, value FROM all_transactions "
                     "WHERE seq <= ?1 AND (seq, id) > (?2, ?3) ORDER BY seq, id LIMIT ?4") !=
        SQLITE_OK)
        fatal(m.io_error("reading transactions").message);
    const uint64_t limit = budget / kTxRecordBytes;
    if (limit == 0) return chunk.SerializeAsString();
    Use rows(page);
    rows.bind(1, point.last_block.seq).bind(2, cursor.after_seq());
    // No record yet: after every record of block after_seq (ids are 32 bytes; 33 sort above).
    const std::string after_id = cursor.after_id().empty() ? std::string(33, '\xff') : cursor.after_id();
    rows.bind(3, std::string_view(after_id)).bind(4, limit);
    uint64_t read = 0;
    int rc;
    while ((rc = rows.step()) == SQLITE_ROW) {
        pb::TxRecord* record = chunk.add_records();
        record->set_id(std::string(rows.blob(0)));
        record->set_code(static_cast<uint32_t>(rows.u64(1)));
        record->set_seq(rows.u64(2));
        record->set_value(rows.u64(3));
        ++read;
    }
    if (rc != SQLITE_DONE) fatal(m.io_error("reading transactions").message);
    if (read < limit) chunk.set_records_end(true);
    return chunk.SerializeAsString();
}

struct SnapshotImport::Impl {
    State::Impl& state;
    uint64_t seq;
    crypto::Hash expected{};  // the hash of the snapshot's block, which 2f+1 signed
    std::string next_cursor;

    std::optional<BlockHeader> last_block;  // from the first chunk; every chunk repeats it
    crypto::Hash history{};
    std::vector<Account> accounts;  // sorted, as they come
    bool accounts_done = false;
    HistoryChain chain;
    uint64_t last_record_seq = 0;  // of the last record staged (since_seq before the first)
    crypto::Hash last_record_id{};
    uint64_t records = 0;
    bool complete = false;
    Statement stage;

    // What the ledger holds already: its records through since_seq stay, and the chain of
    // the new ones starts from its history digest there. 0 and zeros for a whole snapshot.
    uint64_t since_seq = 0;

    Impl(State::Impl& s, uint64_t q, const crypto::Hash& e, uint64_t since,
         const crypto::Hash& since_history)
        : state(s), seq(q), expected(e), chain(since_history), since_seq(since) {}

    bool failed = false;  // a last piece failed after the chain took its records

    Status add(std::string_view bytes);
};

// A piece is checked completely before any of it is kept: its block, its accounts, its
// records (ids unique in the piece, in order after the last one kept), then staged in one
// SQLite transaction (a record id staged before is the peer's lie too), and the digests it
// completes. Only then do the import's cursor, accounts and history chain move: a piece that
// fails leaves nothing behind, so the next peer's answer to the same cursor is judged alone.
Status SnapshotImport::Impl::add(std::string_view bytes) {
    auto malformed = [&](const std::string& why) {
        return make_error("malformed", "snapshot at " + std::to_string(seq) + ": " + why);
    };
    auto mismatch = [&](const std::string& why) {
        return make_error("digest_mismatch", "snapshot at " + std::to_string(seq) + ": " + why);
    };
    if (complete) return malformed("a chunk after the last");
    if (failed) return malformed("an earlier chunk failed: start a new import");
    pb::SnapshotChunk chunk;
    if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
        !chunk.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
        return malformed("a chunk does not decode");
    auto block = get_block(chunk.last_block());
    auto history_field = crypto::array_from_bytes<32>(chunk.history());
    if (!block || !history_field) return malformed("a hash is not 32 bytes");
    if (block->seq != seq || block->height != seq)
        return malformed("a chunk is of block " + std::to_string(block->seq));
    // The whole header (but the view, which is not hashed) is what 2f+1 replicas signed.
    if (block->hash() != expected)
        return mismatch("its block hashes to " + crypto::to_hex(block->hash()).substr(0, 16) +
                        ", not to the proven " + crypto::to_hex(expected).substr(0, 16));
    if (last_block && (!same_block(*last_block, *block) || history != *history_field))
        return malformed("chunks of one snapshot name different blocks");

    const bool progress = chunk.accounts_size() > 0 || chunk.records_size() > 0 ||
                          chunk.accounts_end() || chunk.records_end();
    if (!progress) return malformed("an empty chunk");
    if ((chunk.accounts_size() > 0 || chunk.accounts_end()) && accounts_done)
        return malformed("accounts after their end");
    if ((chunk.records_size() > 0 || chunk.records_end()) && !accounts_done && !chunk.accounts_end())
        return malformed("records before the accounts' end");

    // Accounts: in key order after the last kept, each once.
    std::vector<Account> new_accounts;
    new_accounts.reserve(static_cast<size_t>(chunk.accounts_size()));
    const Account* prev_account = accounts.empty() ? nullptr : &accounts.back();
    for (const pb::AccountRecord& record : chunk.accounts()) {
        auto key = crypto::array_from_bytes<32>(record.key());
        if (!key) return malformed("an account key is not 32 bytes");
        if (prev_account != nullptr && !(prev_account->key < *key))
            return malformed("accounts are not sorted by key, or repeat one");
        new_accounts.push_back(Account{*key, record.balance(), record.nonce()});
        prev_account = &new_accounts.back();
    }
    // Records: sizes, codes, range, (seq, id) order after the last kept, ids unique.
    std::vector<TxRecord> new_records;
    new_records.reserve(static_cast<size_t>(chunk.records_size()));
    std::set<crypto::Hash> ids;
    uint64_t prev_seq = last_record_seq;
    crypto::Hash prev_id = last_record_id;
    bool first = records == 0;
    for (const pb::TxRecord& record : chunk.records()) {
        auto id = crypto::array_from_bytes<32>(record.id());
        if (!id) return malformed("a transaction id is not 32 bytes");
        if (!known_code(record.code())) return malformed("a transaction has an unknown code");
        if (record.seq() <= since_seq || record.seq() > seq)
            return malformed("a transaction is from block " + std::to_string(record.seq()));
        if (!first && !record_before(prev_seq, prev_id, record.seq(), *id))
            return malformed("records are not sorted by (seq, id), or repeat one");
        if (!ids.insert(*id).second)
            return malformed("transaction id " + crypto::to_hex(*id).substr(0, 16) +
                             " is recorded twice");
        first = false;
        prev_seq = record.seq();
        prev_id = *id;
        new_records.push_back(
            TxRecord{*id, static_cast<ResultCode>(record.code()), record.seq(), record.value()});
    }
    // The accounts complete: they must hash, with the history, to the block's state digest.
    if (chunk.accounts_end()) {
        std::vector<Account> all;
        all.reserve(accounts.size() + new_accounts.size());
        all.insert(all.end(), accounts.begin(), accounts.end());
        all.insert(all.end(), new_accounts.begin(), new_accounts.end());
        const crypto::Hash accounts_digest = digest_accounts(all);
        if (combine_digests(accounts_digest, *history_field) != block->state_digest)
            return mismatch("its accounts hash to " + crypto::to_hex(accounts_digest).substr(0, 16) +
                            ", not to the proven state digest");
    }

    // Staged in one transaction; a failure rolls all of this piece back.
    State::Impl& m = state;
    if (!new_records.empty()) {
        if (m.broken) return m.broken_error();
        if (m.run(m.begin) != SQLITE_DONE) return m.io_error("staging snapshot records");
        bool duplicate = false;
        auto fail = [&] {
            Error error = duplicate ? malformed("a transaction id repeats one of an earlier piece")
                                    : m.io_error("staging snapshot records");
            if (!sqlite3_get_autocommit(m.db)) m.run(m.rollback);
            return error;
        };
        for (const TxRecord& record : new_records) {
            Use use(stage);
            use.bind(1, record.id).bind(2, static_cast<uint64_t>(record.code)).bind(3, record.seq);
            use.bind(4, record.value);
            const int rc = use.step();
            if (rc != SQLITE_DONE) {
                duplicate = (sqlite3_extended_errcode(m.db) & 0xff) == SQLITE_CONSTRAINT;
                return fail();
            }
        }
        // The last piece: the records must hash to the history digest before they are kept.
        if (chunk.records_end()) {
            for (const TxRecord& record : new_records) chain.add(record);
            if (chain.digest() != *history_field) {
                if (!sqlite3_get_autocommit(m.db)) m.run(m.rollback);
                failed = true;  // the chain has moved on: this import is spent
                return mismatch("its transaction records do not hash to its history digest");
            }
        }
        if (m.run(m.commit) != SQLITE_DONE) return fail();
        m.committed(m.last_block.seq);  // a WAL checkpoint here synced the blocks so far
        if (!chunk.records_end())
            for (const TxRecord& record : new_records) chain.add(record);
    } else if (chunk.records_end() && chain.digest() != *history_field) {
        failed = true;
        return mismatch("its transaction records do not hash to its history digest");
    }

    // Kept: the import moves on.
    if (!last_block) {
        last_block = *block;
        history = *history_field;
    }
    accounts.insert(accounts.end(), new_accounts.begin(), new_accounts.end());
    if (chunk.accounts_end()) accounts_done = true;
    if (!new_records.empty()) {
        records += new_records.size();
        last_record_seq = prev_seq;
        last_record_id = prev_id;
    }
    pb::SnapshotCursor cursor;
    cursor.set_since_seq(since_seq);
    if (!accounts_done) {
        if (!accounts.empty()) cursor.set_after_key(std::string(crypto::as_bytes(accounts.back().key)));
    } else {
        cursor.set_records(true);
        if (records > 0) {
            cursor.set_after_seq(last_record_seq);
            cursor.set_after_id(std::string(crypto::as_bytes(last_record_id)));
        } else {
            cursor.set_after_seq(since_seq);
        }
    }
    next_cursor = cursor.SerializeAsString();
    if (chunk.records_end()) complete = true;
    return Ok{};
}

SnapshotImport::SnapshotImport(State& state, uint64_t seq, const crypto::Hash& expected_block_hash,
                               Since since)
    : impl_(std::make_unique<Impl>(*state.impl_, seq, expected_block_hash,
                                   since == Since::kWhatItHolds ? state.last_seq() : 0,
                                   since == Since::kWhatItHolds ? state.history_digest()
                                                                : crypto::Hash{})) {
    State::Impl& m = *state.impl_;
    pb::SnapshotCursor first;
    first.set_since_seq(impl_->since_seq);
    impl_->next_cursor = first.SerializeAsString();
    // A temporary table: on disk (it spills from the page cache), private to this
    // connection, gone when the ledger closes.
    if (m.exec("CREATE TEMP TABLE IF NOT EXISTS snapshot_records(id BLOB PRIMARY KEY, "
               "code INTEGER NOT NULL, seq INTEGER NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;"
               "DELETE FROM temp.snapshot_records") != SQLITE_OK ||
        impl_->stage.prepare(m.db,
                             "INSERT INTO temp.snapshot_records(id, code, seq, value) "
                             "VALUES(?1, ?2, ?3, ?4)") != SQLITE_OK)
        fatal(m.io_error("preparing a snapshot import").message);
}

SnapshotImport::~SnapshotImport() = default;
uint64_t SnapshotImport::seq() const { return impl_->seq; }
const std::string& SnapshotImport::next_cursor() const { return impl_->next_cursor; }
bool SnapshotImport::complete() const { return impl_->complete; }
uint64_t SnapshotImport::records() const { return impl_->records; }

Status SnapshotImport::add(std::string_view chunk) { return impl_->add(chunk); }

Status SnapshotImport::install() {
    TALLY_ASSERT(impl_->complete && impl_->last_block);
    State::Impl& m = impl_->state;
    if (m.broken) return m.broken_error();
    TALLY_ASSERT(!m.accounts.in_block());
    const BlockHeader& header = *impl_->last_block;
    if (m.last_block.seq >= header.seq)
        return make_error("already_applied", "the ledger is at block " +
                                                 std::to_string(m.last_block.seq) +
                                                 ", not below the snapshot's " +
                                                 std::to_string(header.seq));
    // Since what the ledger holds: its records and blocks stay (blocks it executed meanwhile
    // too; their records are the snapshot's own, hence OR IGNORE), the snapshot's records
    // and block join them, its accounts replace them. The transaction log joins the table
    // first, so that OR IGNORE sees every record held. Whole: everything is replaced, and the
    // not-yet outcomes of the history that went wrong are dropped (a snapshot has none).
    const char* replace =
        impl_->since_seq > 0
            ? "DELETE FROM accounts; DELETE FROM account_log;"
              "INSERT OR IGNORE INTO transactions(id, code, seq, value) "
              "SELECT id, code, seq, value FROM tx_log; DELETE FROM tx_log;"
              "INSERT OR IGNORE INTO transactions(id, code, seq, value) "
              "SELECT id, code, seq, value FROM temp.snapshot_records"
            : "DELETE FROM accounts; DELETE FROM account_log; DELETE FROM transactions; DELETE FROM tx_log;"
              "DELETE FROM not_yet_outcomes; DELETE FROM blocks WHERE height > 0;"
              "INSERT INTO transactions(id, code, seq, value) "
              "SELECT id, code, seq, value FROM temp.snapshot_records";
    auto write_all = [&]() -> Status {
        if (m.run(m.begin) != SQLITE_DONE) return m.io_error("beginning the snapshot import");
        if (m.exec(replace) != SQLITE_OK) return m.io_error("replacing the state");
        for (const Account& account : impl_->accounts) {
            Use use(m.upsert_account);
            use.bind(1, account.key).bind(2, account.balance).bind(3, account.nonce);
            if (use.step() != SQLITE_DONE) return m.io_error("writing accounts");
        }
        // Its certificate comes with backfill.
        if (m.insert_block_row(header, &impl_->history, std::string_view()) != SQLITE_DONE)
            return m.io_error("writing the last block");
        Use last(m.set_last_seq);
        last.bind(1, header.seq);
        if (last.step() != SQLITE_DONE) return m.io_error("writing last_seq");
        if (m.commit_or_break() != SQLITE_DONE) return m.io_error("committing the snapshot");
        return Ok{};
    };
    Status written = write_all();
    if (!written) {
        m.abort_block();  // nothing in memory changed, so only the rollback matters
        return written;
    }
    m.exec("DELETE FROM temp.snapshot_records");
    m.accounts = AccountTable(std::move(impl_->accounts));
    m.account_log_rows = 0;
    m.tx_log.clear();
    m.last_block = header;
    m.history = impl_->history;
    m.committed(header.seq);
    impl_->complete = false;  // installed: nothing more to do
    return Ok{};
}

Status copy_snapshot(const State& source, const SnapshotPoint& point, State& target,
                     const crypto::Hash& expected_block_hash, size_t chunk_bytes,
                     const std::function<std::string(std::string)>& in_transit) {
    SnapshotImport import(target, point.last_block.seq, expected_block_hash);
    while (!import.complete()) {
        auto chunk = source.snapshot_chunk(point, import.next_cursor(), chunk_bytes);
        if (!chunk) return chunk.error();
        Status added = import.add(in_transit ? in_transit(std::move(*chunk)) : *chunk);
        if (!added) return added;
    }
    return import.install();
}

// ---- backfill ----

std::string encode_certified_block(const CertifiedBlock& block) {
    pb::CertifiedBlock out;
    put_block(block.header, *out.mutable_header());
    out.set_certificate(block.certificate);
    return out.SerializeAsString();
}

Result<CertifiedBlock> decode_certified_block(std::string_view bytes) {
    pb::CertifiedBlock in;
    if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
        !in.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
        return make_error("malformed", "a block does not decode");
    auto header = get_block(in.header());
    if (!header) return make_error("malformed", "a block's hash is not 32 bytes");
    return CertifiedBlock{*header, std::move(*in.mutable_certificate())};
}

std::optional<CertifiedBlock> State::certified_block(uint64_t height) const {
    auto header = block(height);
    if (!header) return std::nullopt;
    Use row(impl_->select_certificate);
    row.bind(1, height);
    if (row.step() != SQLITE_ROW)
        fatal(impl_->io_error("reading the certificate of block " + std::to_string(height)).message);
    return CertifiedBlock{*header, std::string(row.blob(0))};
}

uint64_t State::backfill_height() const {
    Statement query;
    // The highest block held without its certificate, or the highest height lacking a block
    // below one that is held (a scan of the block table, with a key lookup per block).
    if (query.prepare(impl_->db,
                      "SELECT max(h) FROM ("
                      " SELECT max(height) AS h FROM blocks WHERE height >= 1 AND length(certificate) = 0"
                      " UNION ALL"
                      " SELECT max(b.height - 1) AS h FROM blocks b WHERE b.height >= 2 AND NOT EXISTS"
                      "  (SELECT 1 FROM blocks c WHERE c.height = b.height - 1))") != SQLITE_OK)
        fatal(impl_->io_error("looking for missing blocks").message);
    Use row(query);
    if (row.step() != SQLITE_ROW) fatal(impl_->io_error("looking for missing blocks").message);
    return row.u64(0);  // NULL reads as 0: nothing missing
}

Status State::check_missing_block(const BlockHeader& header) const {
    const Impl& m = *impl_;
    const std::string at = "block " + std::to_string(header.height);
    if (header.height == 0 || header.seq != header.height || header.height > m.last_block.seq)
        return make_error("not_needed", at + " (seq " + std::to_string(header.seq) +
                                            ") is not one this ledger can lack");
    if (auto held = certified_block(header.height)) {
        if (!held->certificate.empty()) return make_error("not_needed", at + " is held with its certificate");
        if (held->header.hash() != header.hash())
            return make_error("digest_mismatch", at + " does not hash to the block held there");
        return Ok{};
    }
    auto above = block(header.height + 1);
    if (!above) return make_error("not_needed", at + ": the block above it is not held yet");
    if (above->prev_hash != header.hash())
        return make_error("digest_mismatch",
                          at + " does not hash to block " + std::to_string(header.height + 1) + "'s prev_hash");
    return Ok{};
}

Status State::add_missing_block(const BlockHeader& header, const std::vector<std::string>& txs,
                                std::string_view certificate) {
    Impl& m = *impl_;
    if (m.broken) return m.broken_error();
    if (auto checked = check_missing_block(header); !checked) return checked;
    const std::string at = "block " + std::to_string(header.height);
    std::vector<crypto::Hash> ids;
    ids.reserve(txs.size());
    for (const std::string& tx : txs) ids.push_back(tx_id(tx));
    if (txs.size() != header.tx_count || crypto::merkle_root(ids) != header.tx_root)
        return make_error("digest_mismatch", at + ": its batch does not hash to its transactions' root");
    const bool held = block(header.height).has_value();
    if (!held && header.height >= 1) {
        auto below = block(header.height - 1);
        if (below && below->hash() != header.prev_hash)
            return make_error("chain_mismatch", at + " (proven by the chain above it) does not link to "
                                                "this ledger's own block " +
                                                    std::to_string(header.height - 1));
    }
    if (m.run(m.begin) != SQLITE_DONE) return m.io_error("beginning to add " + at);
    int rc = SQLITE_DONE;
    if (held) {
        Use use(m.set_certificate);
        use.bind(1, header.height).bind(2, certificate);
        rc = use.step();
    } else {
        rc = m.insert_block_row(header, nullptr, certificate);  // no history: a snapshot had its records
    }
    if (rc != SQLITE_DONE || m.run(m.commit) != SQLITE_DONE) {
        Error error = m.io_error("adding " + at);
        if (is_failed_sync(sqlite3_extended_errcode(m.db))) m.broken = true;
        if (!sqlite3_get_autocommit(m.db) && m.run(m.rollback) != SQLITE_DONE) m.broken = true;
        return error;
    }
    m.committed(m.last_block.seq);  // a WAL checkpoint here synced the blocks so far
    return Ok{};
}

}  // namespace tally::ledger

