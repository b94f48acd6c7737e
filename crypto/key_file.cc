// Key files: three lines of text (key_file.h), written 0600 and fsynced, read strictly.
//
// Trusts nothing in the file: every byte is checked against the fixed layout, the seed must
// derive the stated public key, and a file that group or others could read is refused.
// The seed never appears in an error message, and every buffer that held it is wiped.
#include "crypto/key_file.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "crypto/hash.h"

namespace tally::crypto {
namespace {

constexpr std::string_view kHeaderLine = "tally-ed25519-v1\n";
constexpr std::string_view kPublicPrefix = "public ";
constexpr std::string_view kSeedPrefix = "seed ";
constexpr size_t kHexDigits = 64;
// The exact size of a key file.
constexpr size_t kFileBytes = kHeaderLine.size() + kPublicPrefix.size() + kHexDigits + 1 +
                              kSeedPrefix.size() + kHexDigits + 1;

// One piece of the fixed layout: either literal text or 64 hex digits.
struct Piece {
    std::string_view literal;  // empty for a hex field
    const char* line;          // which line it belongs to, for messages
};

constexpr std::array<Piece, 7> kLayout = {{
    {kHeaderLine, "header"},
    {kPublicPrefix, "public"},
    {"", "public"},
    {"\n", "public"},
    {kSeedPrefix, "seed"},
    {"", "seed"},
    {"\n", "seed"},
}};

// A fixed buffer for bytes that include the seed: wiped when it goes out of scope, and never
// reallocated (a growing std::string could leave copies behind).
template <size_t N>
struct SecretBuffer {
    std::array<char, N> bytes{};
    size_t size = 0;
    ~SecretBuffer() { sodium_memzero(bytes.data(), bytes.size()); }
    std::string_view view() const { return std::string_view(bytes.data(), size); }
};

bool is_hex_digit(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

std::string describe(const std::string& path) { return "key file '" + path + "'"; }

Error io_error(const std::string& path, const char* what, int err) {
    return make_error("io", describe(path) + ": " + what + ": " + std::strerror(err));
}

// Writes all of `data`, retrying short writes and EINTR.
bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

// Reads up to N bytes (stops at end of file). Returns false with errno on a read error.
template <size_t N>
bool read_up_to(int fd, SecretBuffer<N>& buf) {
    while (buf.size < N) {
        ssize_t n = ::read(fd, buf.bytes.data() + buf.size, N - buf.size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        if (n == 0) break;
        buf.size += static_cast<size_t>(n);
    }
    return true;
}

void append_hex(SecretBuffer<kFileBytes>& buf, const uint8_t* bytes, size_t n) {
    static constexpr char kDigits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; ++i) {
        buf.bytes[buf.size++] = kDigits[bytes[i] >> 4];
        buf.bytes[buf.size++] = kDigits[bytes[i] & 0x0f];
    }
}

void append(SecretBuffer<kFileBytes>& buf, std::string_view s) {
    std::memcpy(buf.bytes.data() + buf.size, s.data(), s.size());
    buf.size += s.size();
}

// Checks `content` byte by byte against the layout: "truncated" when the file ends early but
// is well-formed as far as it goes, "corrupt" when a byte is wrong or extra bytes follow.
// Never quotes the content.
Status check_layout(const std::string& path, std::string_view content) {
    size_t pos = 0;
    for (const Piece& piece : kLayout) {
        size_t len = piece.literal.empty() ? kHexDigits : piece.literal.size();
        for (size_t i = 0; i < len; ++i, ++pos) {
            if (pos == content.size())
                return make_error("truncated", describe(path) + " is truncated: it ends in the " +
                                                   piece.line + " line");
            bool good = piece.literal.empty() ? is_hex_digit(content[pos])
                                              : content[pos] == piece.literal[i];
            if (!good) {
                std::string what = piece.literal.empty() ? "a non-hex character"
                                                         : "an unexpected character";
                return make_error("corrupt", describe(path) + " is corrupt: " + what + " in the " +
                                                 piece.line + " line (byte " +
                                                 std::to_string(pos) + ")");
            }
        }
    }
    if (pos != content.size())
        return make_error("corrupt", describe(path) + " is corrupt: unexpected bytes after the seed line");
    return Ok{};
}

// Decodes 2N hex digits, already validated, into N bytes.
template <size_t N>
void decode_hex(std::string_view hex, std::array<uint8_t, N>& out) {
    auto value = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return c - 'A' + 10;
    };
    for (size_t i = 0; i < N; ++i)
        out[i] = static_cast<uint8_t>((value(hex[2 * i]) << 4) | value(hex[2 * i + 1]));
}

}  // namespace

Status write_key_file(const std::string& path, const KeyPair& key) {
    SecretBuffer<kFileBytes> content;
    {
        Seed seed = key.seed();
        append(content, kHeaderLine);
        append(content, kPublicPrefix);
        append_hex(content, key.public_key().data(), key.public_key().size());
        append(content, "\n");
        append(content, kSeedPrefix);
        append_hex(content, seed.data(), seed.size());
        append(content, "\n");
        sodium_memzero(seed.data(), seed.size());
    }

    int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return make_error("exists", describe(path) + " already exists; refusing to overwrite it");
        return io_error(path, "cannot create", errno);
    }
    // The umask may only have narrowed 0600; make the mode exactly 0600 so we can read it back.
    const char* failed = nullptr;
    if (::fchmod(fd, 0600) != 0) failed = "cannot set mode 0600";
    else if (!write_all(fd, content.view())) failed = "cannot write";
    else if (::fsync(fd) != 0) failed = "cannot fsync";
    int err = errno;
    if (::close(fd) != 0 && failed == nullptr) {
        failed = "cannot close";
        err = errno;
    }
    if (failed != nullptr) {
        ::unlink(path.c_str());  // never leave half a key behind
        return io_error(path, failed, err);
    }

    // Make the new directory entry durable too. A directory we may not open is not an error
    // (the file itself is safely written); a failed fsync of one we did open is.
    std::string dir = ".";
    if (auto slash = path.rfind('/'); slash != std::string::npos)
        dir = slash == 0 ? "/" : path.substr(0, slash);
    int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
        int rc = ::fsync(dir_fd);
        err = errno;
        ::close(dir_fd);
        if (rc != 0 && err != EINVAL) return io_error(path, "cannot fsync its directory", err);
    }
    return Ok{};
}

Result<KeyPair> read_key_file(const std::string& path) {
    // O_NONBLOCK so that a FIFO in place of the file cannot hang us before the S_ISREG check.
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT) return make_error("not_found", describe(path) + " does not exist");
        return io_error(path, "cannot open", errno);
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int err = errno;
        ::close(fd);
        return io_error(path, "cannot stat", err);
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        return make_error("io", describe(path) + " is not a regular file");
    }
    // Any group or other bit is refused (as OpenSSH does): a writable key is as bad as a
    // readable one.
    if ((st.st_mode & 0077) != 0) {
        ::close(fd);
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        return make_error("permissions", describe(path) + " has mode " + mode +
                                             ": group or others can get at the secret key; run: chmod 600 '" +
                                             path + "'");
    }

    // One byte more than a key file, so that trailing bytes are seen as such.
    SecretBuffer<kFileBytes + 1> content;
    bool read_ok = read_up_to(fd, content);
    int err = errno;
    ::close(fd);
    if (!read_ok) return io_error(path, "cannot read", err);

    return parse_key_file(content.view(), path);
}

Result<KeyPair> parse_key_file(std::string_view content, const std::string& path) {
    if (auto layout = check_layout(path, content); !layout) return layout.error();

    const size_t public_at = kHeaderLine.size() + kPublicPrefix.size();
    const size_t seed_at = public_at + kHexDigits + 1 + kSeedPrefix.size();
    PublicKey stated{};
    decode_hex(content.substr(public_at, kHexDigits), stated);
    Seed seed{};
    decode_hex(content.substr(seed_at, kHexDigits), seed);
    KeyPair key = KeyPair::from_seed(seed);
    sodium_memzero(seed.data(), seed.size());

    // Constant time, as every comparison with a side derived from a secret (keys.h): the
    // public key is public, but what the seed derives is the secret's work.
    if (sodium_memcmp(key.public_key().data(), stated.data(), stated.size()) != 0)
        // Never quote the public line: it may hold anything, the seed included (a swapped or
        // pasted line; found by fuzzing, tests/fuzz/fuzz_key_file.cc).
        return make_error("mismatch", describe(path) + " is inconsistent: its seed derives public key " +
                                          key_to_hex(key.public_key()) +
                                          ", not the one its public line states");
    return key;
}

}  // namespace tally::crypto
