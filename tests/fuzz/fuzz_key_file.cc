// Key files (crypto/key_file.h), from their bytes (parse_key_file: what read_key_file checks
// once it has read the file). Property: bytes that parse are, up to the case of the hex digits,
// exactly the file write_key_file makes of the key they give (decode → encode → same bytes);
// bytes that do not parse get an error that does not quote their seed.
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
        // An error never quotes the seed line's digits (when the file has 64 of them there).
        constexpr size_t kSeedAt = 17 + 7 + 64 + 1 + 5;  // header, "public ", hex, \n, "seed "
        if (bytes.size() >= kSeedAt + 64) {
            const std::string_view seed_hex = bytes.substr(kSeedAt, 64);
            bool all_hex = true;
            for (char c : seed_hex) all_hex = all_hex && std::isxdigit(static_cast<unsigned char>(c));
            if (all_hex) FUZZ_CHECK(key.error().message.find(seed_hex) == std::string::npos);
        }
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
