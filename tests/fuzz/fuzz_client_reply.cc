// The client's reply parsing (client/reply_quorum.h): frames from the four replicas of a PBFT
// network (f = 1), fed to a ReplyQuorum as the client's socket loop feeds them, for one request
// (a transfer of client key 100, nonce 1). The first input byte picks the rule (even: ordered,
// f+1 = 2 matching kReply/kBatchReply; odd: fast read, 2f+1 = 3 matching kReadReply); each
// record (fuzz_common.h) is a frame, its op byte mod 4 the replica whose socket it arrived on.
// Properties: an accepted result is about the request (its id, client and nonce) and came from
// at least a quorum of distinct replicas that said it alike; a frame accepted once is never
// taken again as another vote (kDuplicate); counters only grow.
#include <cstddef>
#include <cstdint>
#include <set>

#include "client/reply_quorum.h"
#include "client/verified_roots.h"
#include "ledger/tx.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace tally;
    if (size < 1) return 0;
    static const auto keys = fuzz::replica_public_keys();
    static const auto expected = [] {
        const std::string tx = ledger::make_transfer(fuzz::key_of(100), fuzz::key_of(101).public_key(), 25, 1);
        return client::ExpectedRequest{ledger::tx_id(tx), fuzz::key_of(100).public_key(), 1};
    }();
    const bool read = data[0] % 2 == 1;
    const auto kind = read ? client::QuorumKind::kRead : client::QuorumKind::kOrdered;
    const uint32_t quorum = read ? 3 : 2;
    client::VerifiedRoots roots;
    client::ReplyQuorum q(kind, quorum, 4, expected, data[0] % 4 < 2 ? &roots : nullptr);

    std::set<uint32_t> voted;  // replicas whose reply was counted (pending or accepted)
    uint64_t rejected_before = 0;
    fuzz::Script script(fuzz::as_view(data + 1, size - 1));
    while (auto r = script.next()) {
        const uint32_t replica = r->op % 4;
        const bool was_done = q.done();
        const client::Vote vote = q.add(replica, keys[replica], r->body);
        if (vote == client::Vote::kPending || vote == client::Vote::kAccepted) voted.insert(replica);
        if (vote == client::Vote::kAccepted) FUZZ_CHECK(!was_done && q.done());
        if (was_done) FUZZ_CHECK(vote != client::Vote::kAccepted && vote != client::Vote::kPending);
        FUZZ_CHECK(q.counters().rejected() >= rejected_before);
        rejected_before = q.counters().rejected();
    }
    if (q.done()) {
        const auto& reply = *q.accepted();
        FUZZ_CHECK(reply.tx_id() == crypto::as_bytes(expected.tx_id));
        FUZZ_CHECK(reply.client() == crypto::as_bytes(expected.client));
        FUZZ_CHECK(reply.nonce() == expected.nonce);
        FUZZ_CHECK(voted.size() >= quorum);
    }
    return 0;
}
