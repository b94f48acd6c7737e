// The consensus store's records, as a replica reads them at a restart: the node refuses a store
// whose records do not check (PBFT: check_stored_records; Raft: read_durable), and hands the
// rest to the engine's on_start. The store is the replica's own file, so what it holds is
// damage rather than an attack — but damage (a torn write, a foreign file) must be refused with
// a message, never crash the replica or make it run on what it did not write.
//
// Input: a protocol byte (even: PBFT replica 1 of 4; odd: Raft replica 1 of 3), a byte of
// executed seq (the ledger's last block), then records (fuzz_common.h): op even, a stored
// record, key length (1) | key | value; op odd, the commit certificate the ledger keeps with
// its block (what on_start's certificate_of reads), seq (1) | certificate. Properties: after
// on_start the engine's invariants hold; what it persists on top of a store that checked still
// checks; and it starts again from that.
#include <cstddef>
#include <cstdint>
#include <map>

#include "bft/pbft/pbft.h"
#include "bft/pbft/engine.h"
#include "bft/pbft/stored_records.h"
#include "bft/raft/raft.h"
#include "tests/fuzz/engine_driver.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

using namespace tally;

bool store_checks(bool pbft, const fuzz::Store& store) {
    if (pbft)
        return bft::pbft::check_stored_records(fuzz::records_of(store),
                                               fuzz::pbft_fuzz_config(1).watermark_window)
            .ok();
    bft::raft::DurableState durable;
    return bft::raft::read_durable(fuzz::records_of(store), durable);
}

using Certificates = std::map<uint64_t, std::string>;

// A fresh engine started on `store` (which it then writes to), with a few ticks after.
void start(bool pbft, fuzz::Store& store, uint64_t executed, const Certificates& certificates) {
    fuzz::EngineDriver driver;
    driver.id = 1;
    driver.store = store;
    if (pbft) {
        driver.replicas = fuzz::replica_public_keys();
        auto* replica = new bft::pbft::PbftEngine(fuzz::pbft_fuzz_config(1),
                                                  fuzz::replica_keys()[1], driver.auth);
        driver.engine.reset(replica);
        driver.check_invariants = [replica] { replica->check_invariants(); };
    } else {
        auto config = fuzz::raft_fuzz_config(1);
        driver.replicas = config.replicas;
        driver.engine = bft::raft::make_raft_engine(config, fuzz::replica_keys()[1]);
    }
    driver.start(executed, [&certificates](uint64_t seq) {
        auto it = certificates.find(seq);
        return it == certificates.end() ? std::string() : it->second;
    });
    for (int i = 0; i < 3; ++i) driver.run(fuzz::Record{fuzz::kOpTick, {}});
    store = driver.store;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    tally::fuzz::use_engine_signatures();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    const bool pbft = data[0] % 2 == 0;
    const uint64_t executed = data[1];
    fuzz::Store store;
    Certificates certificates;
    fuzz::Script script(fuzz::as_view(data + 2, size - 2));
    while (auto r = script.next()) {
        if (r->body.empty()) continue;
        if (r->op % 2 == 1) {
            certificates[static_cast<uint8_t>(r->body[0])] = std::string(r->body.substr(1));
            continue;
        }
        const size_t key_len = static_cast<uint8_t>(r->body[0]);
        if (r->body.size() - 1 < key_len) continue;
        store[std::string(r->body.substr(1, key_len))] = std::string(r->body.substr(1 + key_len));
    }
    // The node refuses a store that does not check (node/replica.cc); Raft's engine is also
    // started on one in tests, and must then only count it.
    const bool checked = store_checks(pbft, store);
    if (!checked && pbft) return 0;
    start(pbft, store, executed, certificates);
    if (checked) {
        FUZZ_CHECK(store_checks(pbft, store));
        start(pbft, store, executed, certificates);
        FUZZ_CHECK(store_checks(pbft, store));
    }
    return 0;
}
