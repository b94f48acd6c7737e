// Snapshot pieces (ledger::SnapshotImport), as a replica receives them from a peer during state
// transfer. The snapshot expected is a fixed ledger's (fuzz_ledger.h), named by its block's
// hash as a checkpoint names it; the script's records (fuzz_common.h) are the pieces, added in
// turn (the first input byte picks SnapshotImport::Since). Properties: a piece that fails leaves
// the import where it was (the same next cursor); an import that completes installs, and the
// ledger then holds exactly the snapshot's block, state digest and money.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_common.h"
#include "tests/fuzz/fuzz_ledger.h"

namespace {

using namespace tally;

struct Fixture {
    std::unique_ptr<ledger::State> source = fuzz::snapshot_source();
    ledger::SnapshotPoint point = source->snapshot_point();
    crypto::Hash expected = point.last_block.hash();
    std::unique_ptr<ledger::State> target = fuzz::open_or_die(fuzz::snapshot_genesis());
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static Fixture f;
    if (size < 1) return 0;
    const auto since = data[0] % 2 == 0 ? ledger::SnapshotImport::Since::kWhatItHolds
                                        : ledger::SnapshotImport::Since::kGenesis;
    bool installed = false;
    {
        ledger::SnapshotImport import(*f.target, f.point.last_block.seq, f.expected, since);
        fuzz::Script script(fuzz::as_view(data + 1, size - 1));
        while (auto r = script.next()) {
            if (import.complete()) break;
            const std::string cursor = import.next_cursor();
            const uint64_t staged = import.records();
            Status added = import.add(r->body);
            if (!added) {
                FUZZ_CHECK(added.error().code != "io");
                FUZZ_CHECK(import.next_cursor() == cursor && import.records() == staged);
            }
        }
        if (import.complete()) {
            Status done = import.install();
            FUZZ_CHECK(done.ok());
            installed = true;
        }
    }
    if (installed) {
        FUZZ_CHECK(f.target->last_block().hash() == f.expected);
        FUZZ_CHECK(f.target->state_digest() == f.source->state_digest());
        FUZZ_CHECK(f.target->total_balance() == f.source->total_balance());
        FUZZ_CHECK(f.target->accounts().size() == f.source->accounts().size());
        f.target = fuzz::open_or_die(fuzz::snapshot_genesis());  // the next input starts afresh
    }
    return 0;
}
