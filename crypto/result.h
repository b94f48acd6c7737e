// Result<T>: the value of an operation that can fail for reasons the caller must handle
// (a bad file, a bad signature, a malformed message). Operating errors are returned, never
// thrown; broken invariants abort through TALLY_ASSERT (crypto/assert.h).
//
// It lives in crypto/ because crypto is the lowest layer and every other folder depends on it.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace tally {

// A failure: a short machine-readable code ("truncated", "bad_signature", ...) and a
// sentence for a human that names what failed (a file, a field, a peer).
struct Error {
    std::string code;
    std::string message;
};

template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error error) : v_(std::move(error)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const { return std::get<1>(v_); }

private:
    std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
struct Ok {};
using Status = Result<Ok>;

inline Error make_error(std::string code, std::string message) {
    return Error{std::move(code), std::move(message)};
}

}  // namespace tally
