// PBFT's messages through a real engine: the script (fuzz_common.h) is what one replica of a
// four-replica network (f = 1) receives — messages from its peers, sealed here with their keys
// so that the engine's own checks (sizes, decoding, views, water marks, digests, certificates,
// the signatures nested in certificates) run on every body the fuzzer makes — plus ticks,
// client requests and completed state transfers. The first input byte picks the replica.
//
// Properties: every body that decodes re-encodes to the same size and decodes to the same
// message (messages.h's canonical encoding); the engine's invariants hold after every input
// (PbftEngine::check_invariants); its outputs keep engine.h's contract (engine_driver.h).
#include <cstddef>
#include <cstdint>

#include "bft/pbft/messages.h"
#include "bft/pbft/pbft.h"
#include "bft/pbft/engine.h"
#include "tests/fuzz/engine_driver.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

using namespace tally;
using crypto::MessageType;

// decode → encode → decode: the same message, and (canonical bytes) the same size.
template <typename M>
void round_trip(std::string_view body) {
    M first;
    if (!bft::pbft::decode(body, first)) return;
    const std::string encoded = first.SerializeAsString();
    FUZZ_CHECK(encoded.size() == body.size());
    M second;
    FUZZ_CHECK(bft::pbft::decode(encoded, second));
    FUZZ_CHECK(second.SerializeAsString() == encoded);
}

void check_body(uint8_t type, std::string_view body) {
    namespace pb = bft::pbft::pb;
    switch (static_cast<MessageType>(type)) {
        case MessageType::kPrePrepare:
        case MessageType::kPrePrepareHeader: round_trip<pb::PrePrepare>(body); break;
        case MessageType::kPrepare:
        case MessageType::kCommit: round_trip<pb::Vote>(body); break;
        case MessageType::kCheckpoint: round_trip<pb::Checkpoint>(body); break;
        case MessageType::kViewChange: round_trip<pb::ViewChange>(body); break;
        case MessageType::kNewView: round_trip<pb::NewView>(body); break;
        case MessageType::kFetchCommitted: round_trip<pb::FetchCommitted>(body); break;
        case MessageType::kCommitted: round_trip<pb::CommittedReply>(body); break;
        case MessageType::kForward: round_trip<pb::Forward>(body); break;
        case MessageType::kFetchBatch: round_trip<pb::FetchBatch>(body); break;
        case MessageType::kBatch: round_trip<pb::Batches>(body); break;
        default: break;
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    tally::fuzz::use_engine_signatures();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    fuzz::EngineDriver driver;
    driver.id = data[0] % 4;
    driver.replicas = fuzz::replica_public_keys();
    bft::pbft::Config config = fuzz::pbft_fuzz_config(driver.id);
    auto* replica = new bft::pbft::PbftEngine(config, fuzz::replica_keys()[driver.id], driver.auth);
    driver.engine.reset(replica);
    driver.check_invariants = [replica] { replica->check_invariants(); };
    driver.start();

    fuzz::Script script(fuzz::as_view(data + 1, size - 1));
    while (auto r = script.next()) {
        if (r->op % fuzz::kEngineOps == fuzz::kOpMessage && r->body.size() >= 2)
            check_body(static_cast<uint8_t>(r->body[1]), r->body.substr(2));
        driver.run(*r);
    }
    return 0;
}
