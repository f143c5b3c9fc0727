// Errors as values. No exception crosses include/hmod/.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace hmod {

// Closed set of failure kinds. Each maps to one documented exit code (docs/CLI.md).
enum class ErrorCode {
  kUsage = 1,           // bad arguments or options
  kIo,                  // a file could not be read or written
  kFormat,              // input is not a well-formed .hmod file (or key file)
  kUnsupported,         // well-formed, but a version/suite/feature we do not implement
  kNoMatchingKey,       // no key provider could open this file
  kAuthFailed,          // a MAC, tag or commitment check failed: tampered or corrupted
  kContextMismatch,     // the encryption context does not satisfy the caller's requirements
  kKeyFile,             // a key file is unreadable, malformed or has unsafe permissions
  kCrypto,              // the crypto library failed unexpectedly
  kLimit,               // a stated limit was exceeded
};

// Stable lowercase name of a code ("auth_failed"), used in --json output.
const char* ErrorCodeName(ErrorCode code);

struct Error {
  ErrorCode code;
  std::string message;  // one line, no key material
  std::string hint;     // optional: what the user can do about it
};

inline Error MakeError(ErrorCode code, std::string message, std::string hint = {}) {
  return Error{code, std::move(message), std::move(hint)};
}

// Result<T> holds either a T or an Error. GCC 12 in C++20 has no std::expected.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}      // NOLINT: implicit by design

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

// Result<void> equivalent.
struct Ok {};
using Status = Result<Ok>;
inline Status OkStatus() { return Ok{}; }

}  // namespace hmod

// Propagates an error from an expression returning Result<...>.
#define HMOD_TRY(expr)                                  \
  do {                                                  \
    auto&& hmod_try_r_ = (expr);                        \
    if (!hmod_try_r_.ok()) return hmod_try_r_.error();  \
  } while (0)

#define HMOD_CONCAT_INNER(a, b) a##b
#define HMOD_CONCAT(a, b) HMOD_CONCAT_INNER(a, b)
// Declares `lhs` from the value of a Result, or returns its error.
#define HMOD_ASSIGN_OR_RETURN(lhs, expr) \
  HMOD_ASSIGN_OR_RETURN_IMPL(HMOD_CONCAT(hmod_r_, __LINE__), lhs, expr)
#define HMOD_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.error();               \
  lhs = std::move(tmp).value()
