// Raft's messages through a real engine: the script (fuzz_common.h) is what one replica of a
// three-replica network receives — messages from its peers, sealed here with their keys, so the
// engine's own checks (sizes, decoding, terms, log matching, bounds) run on every body the
// fuzzer makes — plus ticks, client requests and completed snapshot installs. The first input
// byte picks the replica. Raft trusts its replicas to follow the protocol (a traitor may break
// agreement), not to send well-formed bytes: no input may crash it or break engine.h's contract.
#include <cstddef>
#include <cstdint>

#include "bft/raft/raft.h"
#include "bft/raft/raft.pb.h"
#include "tests/fuzz/engine_driver.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    tally::fuzz::use_engine_signatures();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace tally;
    if (size < 1) return 0;
    fuzz::EngineDriver driver;
    driver.id = data[0] % 3;
    auto config = fuzz::raft_fuzz_config(driver.id);
    driver.replicas = config.replicas;
    driver.engine = bft::raft::make_raft_engine(config, fuzz::replica_keys()[driver.id]);
    driver.start();

    fuzz::Script script(fuzz::as_view(data + 1, size - 1));
    while (auto r = script.next()) driver.run(*r);

    // What the engine persisted must read back (a restart would refuse the store otherwise).
    bft::raft::DurableState durable;
    FUZZ_CHECK(bft::raft::read_durable(fuzz::records_of(driver.store), durable));
    return 0;
}
