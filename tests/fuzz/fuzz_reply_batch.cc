// Batch replies (crypto/reply_batch.h): a kBatchReply body, decoded. Properties: a body that
// decodes is exactly its fields laid out again (decode → encode → same bytes); the statement
// its path leads to, when there is one, is what reply_batch_statement makes of the root that
// merkle_root_from_proof computes; and a frame that opens as a batch reply carries such a body.
#include <cstddef>
#include <cstdint>

#include "crypto/merkle.h"
#include "crypto/reply_batch.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace tally;
    const std::string_view body = fuzz::as_view(data, size);
    auto reply = crypto::decode_reply_batch(body);
    if (reply) {
        std::string again;
        auto put = [&](uint64_t v, int bytes) {
            for (int i = bytes - 1; i >= 0; --i) again.push_back(static_cast<char>(v >> (8 * i)));
        };
        put(reply->batch, 8);
        put(reply->index, 4);
        put(reply->count, 4);
        again.push_back(static_cast<char>(reply->path.size()));
        for (const auto& h : reply->path) again.append(crypto::as_bytes(h));
        again.append(reply->leaf);
        FUZZ_CHECK(again == body);
        FUZZ_CHECK(reply->index < reply->count && reply->path.size() <= crypto::kReplyBatchPathMax);

        auto claim = crypto::reply_batch_claim(*reply);
        auto root = crypto::merkle_root_from_proof(crypto::sha256(reply->leaf), reply->index,
                                                   reply->count, reply->path);
        FUZZ_CHECK(claim.ok() == root.has_value());
        if (claim) FUZZ_CHECK(*claim == crypto::reply_batch_statement(reply->batch, reply->count, *root));
    }
    // The same bytes as a whole frame, as a client receives it (open checks the path and root).
    auto frame = crypto::open(body);
    if (frame && frame->type == crypto::MessageType::kBatchReply) {
        auto inner = crypto::decode_reply_batch(frame->body);
        FUZZ_CHECK(inner.ok());
        FUZZ_CHECK(crypto::reply_batch_claim(*inner).ok());
    }
    return 0;
}
