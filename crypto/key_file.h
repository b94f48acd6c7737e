// Key files. The format is three lines of text, so a person can read which key a file holds
// without revealing the secret:
//     tally-ed25519-v1
//     public <64 hex digits>
//     seed <64 hex digits>
// The file is written with mode 0600 (created so, never widened). Reading checks the header,
// both lines, that the seed derives the stated public key, and that the file is not readable
// by group or others; every failure is an Error naming the file.
#pragma once

#include <string>
#include <string_view>

#include "crypto/keys.h"
#include "crypto/result.h"

namespace tally::crypto {

// Writes a new key file; refuses to overwrite an existing file (Error "exists").
Status write_key_file(const std::string& path, const KeyPair& key);

// Errors: "not_found", "permissions", "truncated", "corrupt", "mismatch", "io".
Result<KeyPair> read_key_file(const std::string& path);

// The checks of read_key_file on a key file's bytes, without the file (the path, for the
// errors only, names where they came from). Errors: "truncated", "corrupt", "mismatch".
Result<KeyPair> parse_key_file(std::string_view content, const std::string& path);

}  // namespace tally::crypto
