#include "bft/raft/block_record.h"

#include "bft/raft/raft.pb.h"

namespace tally::bft::raft {

std::string encode_block_record(uint64_t index, uint64_t term, const std::vector<std::string>& requests) {
    pb::BlockRecord record;
    record.set_index(index);
    record.set_term(term);
    for (const auto& r : requests) record.add_requests(r);
    return record.SerializeAsString();
}

Result<std::vector<std::string>> block_record_requests(uint64_t seq, std::string_view bytes) {
    pb::BlockRecord record;
    if (!record.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
        return make_error("bad_record", "it is not a Raft block record");
    if (record.index() != seq)
        return make_error("bad_record", "it is the record of index " + std::to_string(record.index()));
    return std::vector<std::string>(record.requests().begin(), record.requests().end());
}

}  // namespace tally::bft::raft
