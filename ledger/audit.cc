// The offline audit of a ledger file. See audit.h.
#include "ledger/audit.h"

#include <sqlite3.h>

#include <array>
#include <cstring>
#include <limits>
#include <optional>

#include "crypto/merkle.h"

namespace tally::ledger {

namespace {


std::string short_hex(const crypto::Hash& h) { return crypto::to_hex(h).substr(0, 16) + "…"; }

// A read-only connection and its statements, closed on destruction.
class Reader {
  public:
    ~Reader() {
        for (sqlite3_stmt* s : statements_) sqlite3_finalize(s);
        sqlite3_close_v2(db_);
    }
    Status open(const std::string& path) {
        path_ = path;
        int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
        if (rc != SQLITE_OK) return make_error("io", path + ": cannot open: " + sqlite3_errstr(rc));
        sqlite3_busy_timeout(db_, 5000);
        return Ok{};
    }
    // A statement to step through; nullptr (and `error` set) when it cannot be prepared.
    sqlite3_stmt* prepare(const char* sql, Error& error) {
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) != SQLITE_OK) {
            error = make_error("corrupt", path_ + ": not a Tally ledger (" + sqlite3_errmsg(db_) + ")");
            return nullptr;
        }
        statements_.push_back(stmt);
        return stmt;
    }
    std::optional<int64_t> scalar(const char* sql, Error& error) {
        sqlite3_stmt* stmt = prepare(sql, error);
        if (stmt == nullptr) return std::nullopt;
        if (sqlite3_step(stmt) != SQLITE_ROW) {
            error = make_error("corrupt", path_ + ": not a Tally ledger (" + sql + ": no row)");
            return std::nullopt;
        }
        return sqlite3_column_int64(stmt, 0);
    }
    Error read_error() const { return make_error("io", path_ + ": " + sqlite3_errmsg(db_)); }

  private:
    std::string path_;
    sqlite3* db_ = nullptr;
    std::vector<sqlite3_stmt*> statements_;
};

template <size_t N>
bool column_array(sqlite3_stmt* stmt, int column, std::array<uint8_t, N>& out) {
    const void* data = sqlite3_column_blob(stmt, column);
    if (data == nullptr || sqlite3_column_bytes(stmt, column) != static_cast<int>(N)) return false;
    std::memcpy(out.data(), data, N);
    return true;
}

std::string column_blob(sqlite3_stmt* stmt, int column) {
    const void* data = sqlite3_column_blob(stmt, column);
    const int size = sqlite3_column_bytes(stmt, column);
    if (data == nullptr || size <= 0) return {};
    return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
}

}  // namespace

Result<AuditReport> audit_ledger(const std::string& path, const AuditOptions& options) {
    auto failed = [](const std::string& why) { return make_error("audit_failed", why); };
    Reader file;
    if (auto opened = file.open(path); !opened) return opened.error();
    Error error;
    auto app_id = file.scalar("PRAGMA application_id", error);
    if (!app_id) return error;
    if (*app_id != kLedgerApplicationId)
        return make_error("corrupt", path + ": not a Tally ledger (another program's SQLite file)");
    auto version = file.scalar("SELECT value FROM meta WHERE key = 'schema_version'", error);
    if (!version) return error;
    // Versions 4 and 5 differ only by having no account log (4) and no transaction log (4, 5):
    // a tally of this version upgrades them.
    if (*version != kLedgerSchemaVersion && *version != 4 && *version != 5)
        return make_error("corrupt", path + ": a ledger of schema version " + std::to_string(*version) +
                                         ", expected " + std::to_string(kLedgerSchemaVersion) +
                                         (*version < kLedgerSchemaVersion
                                              ? " (made by an older tally: its blocks keep no commit certificates)"
                                              : ""));
    auto last = file.scalar("SELECT value FROM meta WHERE key = 'last_seq'", error);
    if (!last) return error;
    AuditReport report;
    report.last_seq = static_cast<uint64_t>(*last);

    auto replay = State::open(":memory:", options.genesis);
    if (!replay) return make_error("invalid", "network.json's genesis: " + replay.error().message);
    State& chain = **replay;

    sqlite3_stmt* rows = file.prepare(
        "SELECT height, seq, view, prev_hash, tx_root, state_digest, tx_count, hash, history, "
        "certificate FROM blocks ORDER BY height",
        error);
    if (rows == nullptr) return error;
    uint64_t expected = 0;
    crypto::Hash previous{};
    int rc;
    while ((rc = sqlite3_step(rows)) == SQLITE_ROW) {
        const uint64_t height = static_cast<uint64_t>(sqlite3_column_int64(rows, 0));
        const std::string at = "block " + std::to_string(height);
        if (height != expected)
            return failed("block " + std::to_string(expected) + " is missing: the chain has a gap from " +
                          std::to_string(expected) + " to " + std::to_string(height - 1));
        if (height > report.last_seq)
            return failed(at + " is above the ledger's last block " + std::to_string(report.last_seq));
        BlockHeader header;
        header.height = height;
        header.seq = static_cast<uint64_t>(sqlite3_column_int64(rows, 1));
        header.view = static_cast<uint64_t>(sqlite3_column_int64(rows, 2));
        const int64_t count = sqlite3_column_int64(rows, 6);
        crypto::Hash stored{};
        if (!column_array(rows, 3, header.prev_hash) || !column_array(rows, 4, header.tx_root) ||
            !column_array(rows, 5, header.state_digest) || !column_array(rows, 7, stored) || count < 0 ||
            count > std::numeric_limits<uint32_t>::max())
            return failed(at + ": a malformed row (a hash is not 32 bytes, or a bad count)");
        header.tx_count = static_cast<uint32_t>(count);
        if (header.hash() != stored)
            return failed(at + ": its fields do not hash to its stored hash (the block was altered)");
        if (header.seq != height) return failed(at + ": its seq is " + std::to_string(header.seq));

        if (height == 0) {
            if (stored != chain.last_block().hash())
                return failed("block 0 is not the genesis of network.json (its state digest is " +
                              short_hex(header.state_digest) + ", network.json's " +
                              short_hex(chain.last_block().state_digest) + ")");
        } else {
            if (header.prev_hash != previous)
                return failed(at + ": the hash link is broken: its prev_hash " + short_hex(header.prev_hash) +
                              " is not block " + std::to_string(height - 1) + "'s hash " + short_hex(previous));
            const std::string certificate = column_blob(rows, 9);
            if (certificate.empty()) return failed(at + " has no commit certificate");
            auto batch = options.check_certificate(height, certificate);
            if (!batch) return failed(at + ": its commit certificate is not valid: " + batch.error().message);
            ++report.certificates;
            std::vector<crypto::Hash> ids;
            ids.reserve(batch->size());
            for (const std::string& tx : *batch) ids.push_back(tx_id(tx));
            if (batch->size() != header.tx_count || crypto::merkle_root(ids) != header.tx_root)
                return failed(at + ": its transaction root is wrong: the " + std::to_string(batch->size()) +
                              " transactions its certificate proves hash to " +
                              short_hex(crypto::merkle_root(ids)) + ", the block says " +
                              short_hex(header.tx_root) + " (" + std::to_string(header.tx_count) + ")");
            report.transactions += batch->size();
            auto applied = chain.apply_block(height, header.view, *batch, Verify::kCheck);
            if (!applied) return make_error("io", "replaying " + at + ": " + applied.error().message);
            const bool checkpoint = options.checkpoint_interval > 0 && height % options.checkpoint_interval == 0;
            if (applied->header.state_digest != header.state_digest)
                return failed(at + (checkpoint ? " (a checkpoint)" : "") +
                              ": its state digest is wrong: replaying the certified batches from genesis gives " +
                              short_hex(applied->header.state_digest) + ", the block says " +
                              short_hex(header.state_digest));
            if (checkpoint) ++report.checkpoints;
            if (sqlite3_column_type(rows, 8) != SQLITE_NULL) {
                crypto::Hash history{};
                if (!column_array(rows, 8, history) || history != chain.history_digest())
                    return failed(at + ": its stored history digest is not the replay's");
                ++report.histories;
            }
        }
        previous = stored;
        ++report.blocks;
        ++expected;
    }
    if (rc != SQLITE_DONE) return file.read_error();
    if (expected != report.last_seq + 1)
        return failed("block " + std::to_string(expected) + " is missing: the chain ends at block " +
                      std::to_string(expected == 0 ? 0 : expected - 1) + ", the ledger's last is " +
                      std::to_string(report.last_seq));

    // The state the file holds is the state the chain leads to.
    sqlite3_stmt* accounts = file.prepare(*version == 4 ? "SELECT key, balance, nonce FROM accounts ORDER BY key"
                                                         : "SELECT key, balance, nonce FROM current_accounts ORDER BY key",
                                          error);
    if (accounts == nullptr) return error;
    const std::vector<Account> expected_accounts = chain.accounts();
    size_t i = 0;
    while ((rc = sqlite3_step(accounts)) == SQLITE_ROW) {
        Account account;
        if (!column_array(accounts, 0, account.key) || i >= expected_accounts.size() ||
            expected_accounts[i].key != account.key ||
            expected_accounts[i].balance != static_cast<uint64_t>(sqlite3_column_int64(accounts, 1)) ||
            expected_accounts[i].nonce != static_cast<uint64_t>(sqlite3_column_int64(accounts, 2)))
            return failed("the accounts in the file are not those the chain leads to at block " +
                          std::to_string(report.last_seq) + " (account " + std::to_string(i) + " by key)");
        ++i;
    }
    if (rc != SQLITE_DONE) return file.read_error();
    if (i != expected_accounts.size())
        return failed("the file holds " + std::to_string(i) + " accounts, the chain leads to " +
                      std::to_string(expected_accounts.size()));
    report.accounts = i;
    sqlite3_stmt* records = file.prepare(*version < 6 ? "SELECT id, code, seq, value FROM transactions ORDER BY seq, id"
                                                      : "SELECT id, code, seq, value FROM all_transactions ORDER BY seq, id",
                                         error);
    if (records == nullptr) return error;
    HistoryChain history;
    while ((rc = sqlite3_step(records)) == SQLITE_ROW) {
        TxRecord record;
        const int64_t code = sqlite3_column_int64(records, 1);
        if (!column_array(records, 0, record.id) || code < 0 ||
            code > static_cast<int64_t>(ResultCode::kUnknownTx))
            return failed("a malformed transaction record");
        record.code = static_cast<ResultCode>(code);
        record.seq = static_cast<uint64_t>(sqlite3_column_int64(records, 2));
        record.value = static_cast<uint64_t>(sqlite3_column_int64(records, 3));
        history.add(record);
        ++report.records;
    }
    if (rc != SQLITE_DONE) return file.read_error();
    if (history.digest() != chain.history_digest())
        return failed("the transaction records in the file are not those the chain leads to at block " +
                      std::to_string(report.last_seq));
    return report;
}

}  // namespace tally::ledger
