// network.json (node/api/network_config.h), from its text. Property: a config that parses,
// saved (save_network_config) and loaded again, is the same config (decode → encode → decode).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "node/api/network_config.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

using namespace tally;

// A folder of this process's own for the saved copies, removed at exit.
const std::string& scratch_dir() {
    static const std::string dir = [] {
        std::string pattern = "/tmp/tally-fuzz-netcfg-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr) std::abort();
        static std::string path = pattern;
        std::atexit([] {
            ::unlink((path + "/network.json").c_str());
            ::unlink((path + "/network.json.tmp").c_str());
            ::rmdir(path.c_str());
        });
        return pattern;
    }();
    return dir;
}

void check_same(const node::api::NetworkConfig& a, const node::api::NetworkConfig& b) {
    FUZZ_CHECK(a.protocol == b.protocol && a.f == b.f && a.dir == b.dir);
    FUZZ_CHECK(a.replicas.size() == b.replicas.size());
    for (size_t i = 0; i < a.replicas.size(); ++i) {
        const auto& x = a.replicas[i];
        const auto& y = b.replicas[i];
        FUZZ_CHECK(x.id == y.id && x.host == y.host && x.port == y.port &&
                   x.client_port == y.client_port && x.public_key == y.public_key &&
                   x.key_file == y.key_file && x.data_dir == y.data_dir && x.traitor == y.traitor);
    }
    FUZZ_CHECK(a.genesis.accounts.size() == b.genesis.accounts.size());
    for (size_t i = 0; i < a.genesis.accounts.size(); ++i)
        FUZZ_CHECK(a.genesis.accounts[i].key == b.genesis.accounts[i].key &&
                   a.genesis.accounts[i].balance == b.genesis.accounts[i].balance);
    const auto& c = a.consensus;
    const auto& d = b.consensus;
    FUZZ_CHECK(c.tick_ms == d.tick_ms && c.batch_size_max == d.batch_size_max &&
               c.batch_bytes_max == d.batch_bytes_max && c.pipeline_depth == d.pipeline_depth &&
               c.checkpoint_interval == d.checkpoint_interval &&
               c.watermark_window == d.watermark_window &&
               c.view_change_timeout_ticks == d.view_change_timeout_ticks &&
               c.snapshot_chunk_bytes == d.snapshot_chunk_bytes);
    if (a.protocol == bft::Protocol::kRaft)
        FUZZ_CHECK(c.election_timeout_ticks == d.election_timeout_ticks &&
                   c.heartbeat_ticks == d.heartbeat_ticks);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = scratch_dir() + "/network.json";
    auto config = node::api::parse_network_config(fuzz::as_view(data, size), path);
    if (!config) return 0;
    auto saved = node::api::save_network_config(*config, path);
    FUZZ_CHECK(saved.ok());
    auto again = node::api::load_network_config(path);
    if (!again) std::fprintf(stderr, "reloading failed: %s\n", again.error().message.c_str());
    FUZZ_CHECK(again.ok());
    check_same(*config, *again);
    return 0;
}
