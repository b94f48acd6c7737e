// Key files (crypto/key_file.h), from their bytes (parse_key_file: what read_key_file checks
// once it has read the file). Property: bytes that parse are, up to the case of the hex digits,
// exactly the file write_key_file makes of the key they give (decode → encode → same bytes).
#include <cctype>
#include <cstddef>
#include <cstdint>

#include "crypto/hash.h"
#include "crypto/key_file.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace tally;
    const std::string_view bytes = fuzz::as_view(data, size);
    auto key = crypto::parse_key_file(bytes, "fuzz.key");
    if (!key) {
        // An error never quotes the file (it may hold a seed).
        FUZZ_CHECK(key.error().message.find(bytes.substr(0, 64)) == std::string::npos || bytes.size() < 8);
        return 0;
    }
    const crypto::Seed seed = key->seed();
    const std::string expected = "tally-ed25519-v1\npublic " + crypto::key_to_hex(key->public_key()) +
                                 "\nseed " + crypto::to_hex(seed) + "\n";
    std::string lowered(bytes);
    for (char& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    FUZZ_CHECK(lowered == expected);
    return 0;
}
