// Which consensus store a replica may run on (see store_binding.h).
#include "node/store_binding.h"

#include <chrono>
#include <filesystem>

#include "crypto/hash.h"

namespace tally::node {

namespace {

namespace fs = std::filesystem;

Error refused(const std::string& path, const std::string& problem) {
    return make_error(
        "store_refused",
        path + ": " + problem +
            ". A replica must not run on a consensus store that may have forgotten its votes: it "
            "could contradict what it signed. Start it once with --recover (`tallyd --config "
            "NETWORK.json --id N --recover`): the old store is kept aside as " +
            fs::path(path).filename().string() +
            ".replaced-TIME and the replica rejoins as a fresh one, fetching state from its "
            "peers and staying silent until it has caught up.");
}

Status move_aside(const std::string& path, std::string* moved_to) {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    std::string target = path + ".replaced-" + std::to_string(now);
    std::error_code ec;
    for (int i = 1; fs::exists(target, ec); ++i)
        target = path + ".replaced-" + std::to_string(now) + "." + std::to_string(i);
    bool any = false;
    for (const char* suffix : {"", "-wal", "-shm"}) {
        const std::string from = path + suffix;
        if (!fs::exists(from, ec)) continue;
        fs::rename(from, target + suffix, ec);
        if (ec) return make_error("io", from + ": cannot move aside: " + ec.message());
        any = true;
    }
    if (any) *moved_to = target;
    return Ok{};
}

}  // namespace

namespace {

Store::Binding fresh_binding(const LedgerIdentity& ledger, uint64_t seq_margin, bool recovering) {
    Store::Binding fresh;
    fresh.replica_key = ledger.replica_key;
    fresh.ledger_id = ledger.ledger_id;
    fresh.ledger_seq_max = ledger.last_seq + seq_margin;
    fresh.recovering = recovering;
    return fresh;
}

// --recover: `store` is new (the old one is set aside); bound, marked recovering.
Result<BoundStore> bind_recovering(std::unique_ptr<Store> store, const LedgerIdentity& ledger,
                                   uint64_t seq_margin) {
    const Store::Binding fresh = fresh_binding(ledger, seq_margin, /*recovering=*/true);
    if (auto s = store->bind(fresh); !s) return s.error();
    BoundStore out;
    out.store = std::move(store);
    out.recovering = true;
    out.ledger_seq_max = fresh.ledger_seq_max;
    return out;
}

// The decision for an open store (a new one has created() true), whether a file or in memory.
Result<BoundStore> decide(std::unique_ptr<Store> store, const LedgerIdentity& ledger,
                          uint64_t seq_margin) {
    const std::string path = store->path();
    // A file store is opened with Create::kNever beside an existing ledger, so only a store
    // handed over already open (in memory) gets here new beside one.
    if (store->created() && !ledger.created_now)
        return refused(path, "the consensus store is empty but ledger.db beside it is at seq " +
                                 std::to_string(ledger.last_seq));
    auto binding = store->binding();
    if (!binding) return refused(path, binding.error().message);
    BoundStore out;
    if (!*binding) {
        // Never bound: a new store (this start made it), or one whose first start stopped
        // before binding it — then the engine never ran on it, and the ledger never moved.
        auto records = store->load_all();
        if (!records) return records.error();
        if (!store->created() && (!records->empty() || ledger.last_seq != 0))
            return refused(path, "the consensus store is not bound to any ledger");
        const Store::Binding fresh = fresh_binding(ledger, seq_margin, /*recovering=*/false);
        if (auto s = store->bind(fresh); !s) return s.error();
        out.store = std::move(store);
        out.ledger_seq_max = fresh.ledger_seq_max;
        return out;
    }
    const Store::Binding& b = **binding;
    if (b.replica_key != ledger.replica_key)
        return refused(path, "the consensus store belongs to another replica (key " +
                                 crypto::to_hex(b.replica_key).substr(0, 16) + "...)");
    if (b.ledger_id != ledger.ledger_id)
        return refused(path, std::string("the consensus store was made with another ledger.db") +
                                 (ledger.created_now ? " (this ledger.db was just created: was the old one removed?)" : ""));
    if (ledger.last_seq > b.ledger_seq_max)
        return refused(path, "the consensus store is older than the ledger (ledger.db is at seq " +
                                 std::to_string(ledger.last_seq) + ", the store knows of seq " +
                                 std::to_string(b.ledger_seq_max) +
                                 " at most): it was restored from a backup or replaced");
    out.recovering = b.recovering;
    out.ledger_seq_max = b.ledger_seq_max;
    out.store = std::move(store);
    return out;
}

}  // namespace

Result<BoundStore> open_bound_store(const std::string& path, const LedgerIdentity& ledger,
                                    bool recover, uint64_t seq_margin) {
    if (recover) {
        std::string replaced;
        if (auto s = move_aside(path, &replaced); !s) return s.error();
        auto store = Store::open(path, Store::Create::kIfMissing);
        if (!store) return store.error();
        auto out = bind_recovering(std::move(store).value(), ledger, seq_margin);
        if (out) out->replaced = std::move(replaced);
        return out;
    }
    auto store = Store::open(path, ledger.created_now ? Store::Create::kIfMissing : Store::Create::kNever);
    if (!store) {
        const auto& e = store.error();
        if (e.code == "missing")
            return refused(path, "the consensus store " + std::string(e.message.ends_with("is empty") ? "is empty" : "is missing") +
                                     " but ledger.db beside it is at seq " + std::to_string(ledger.last_seq));
        if (e.code == "foreign" || e.code == "corrupt")
            return refused(path, "not this replica's consensus store: " + e.message);
        return e;
    }
    return decide(std::move(store).value(), ledger, seq_margin);
}

Result<BoundStore> open_bound_store(std::unique_ptr<Store> store, const LedgerIdentity& ledger,
                                    bool recover, uint64_t seq_margin) {
    if (!store) return make_error("io", "open_bound_store: no store");
    if (recover) {
        // Nothing to set aside: the caller keeps (or drops) the old store itself.
        auto binding = store->binding();
        if (!store->created() || !binding || *binding)
            return make_error("not_new", store->path() +
                                             ": --recover needs a new, empty store in place of the old one");
        return bind_recovering(std::move(store), ledger, seq_margin);
    }
    return decide(std::move(store), ledger, seq_margin);
}

}  // namespace tally::node
