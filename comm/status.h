// Recoverable errors as values (STYLE rule 11): sieve::Status and sieve::StatusOr<T>.
//
// Request parsing, admission, model loading and KV budget checks return these; kernels return
// cudaError_t and the worker converts at the boundary. A Status carries a code and a message
// that names what was expected ("tensor 'model.norm.weight' in model.safetensors: expected
// shape [4096], got [4095]"). Codes map one to one onto the wire protocol's error codes and onto
// HTTP statuses (HttpStatusFor).
//
//   SIEVE_RETURN_IF_ERROR(expr);            // returns the Status if not ok
//   SIEVE_ASSIGN_OR_RETURN(auto x, expr);   // unwraps a StatusOr or returns its Status
//
// Tested by tests/unit/comm/status_test.cc.
#pragma once

#include <cstdarg>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "kernels/check.h"

namespace sieve {

enum class StatusCode : int {
  kOk = 0,
  kCancelled = 1,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kFailedPrecondition = 9,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
  kResourceExhausted = 8,
  kPayloadTooLarge = 100,  // a request over a configured size limit (HTTP 413)
};

// "INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", ...
std::string_view StatusCodeName(StatusCode code);

// The HTTP status a front end answers with for this code (200, 400, 401, 404, 408, 413, 429,
// 499, 500, 501, 503, 504).
int HttpStatusFor(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status Cancelled(std::string msg) { return {StatusCode::kCancelled, std::move(msg)}; }
  static Status InvalidArgument(std::string msg) {
    return {StatusCode::kInvalidArgument, std::move(msg)};
  }
  static Status DeadlineExceeded(std::string msg) {
    return {StatusCode::kDeadlineExceeded, std::move(msg)};
  }
  static Status NotFound(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
  static Status FailedPrecondition(std::string msg) {
    return {StatusCode::kFailedPrecondition, std::move(msg)};
  }
  static Status OutOfRange(std::string msg) { return {StatusCode::kOutOfRange, std::move(msg)}; }
  static Status Unimplemented(std::string msg) {
    return {StatusCode::kUnimplemented, std::move(msg)};
  }
  static Status Internal(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }
  static Status Unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }
  static Status DataLoss(std::string msg) { return {StatusCode::kDataLoss, std::move(msg)}; }
  static Status Unauthenticated(std::string msg) {
    return {StatusCode::kUnauthenticated, std::move(msg)};
  }
  static Status ResourceExhausted(std::string msg) {
    return {StatusCode::kResourceExhausted, std::move(msg)};
  }
  static Status PayloadTooLarge(std::string msg) {
    return {StatusCode::kPayloadTooLarge, std::move(msg)};
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "INVALID_ARGUMENT: message" (or "OK").
  std::string ToString() const;

  // Returns a copy whose message is "<prefix>: <message>" (keeps the code).
  Status WithContext(std::string_view prefix) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(const Status& status) : value_(status) {  // NOLINT(runtime/explicit)
    SIEVE_CHECK(!status.ok(), "StatusOr built from an ok Status carries no value");
  }
  StatusOr(Status&& status) : value_(std::move(status)) {  // NOLINT(runtime/explicit)
    SIEVE_CHECK(!std::get<Status>(value_).ok(),
                "StatusOr built from an ok Status carries no value");
  }
  StatusOr(const T& value) : value_(value) {}        // NOLINT(runtime/explicit)
  StatusOr(T&& value) : value_(std::move(value)) {}  // NOLINT(runtime/explicit)
  template <typename U>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, T> &&
           !std::is_same_v<std::decay_t<U>, Status> && !std::is_same_v<std::decay_t<U>, StatusOr>)
      StatusOr(U&& value)
      : value_(T(std::forward<U>(value))) {}  // NOLINT(runtime/explicit)

  bool ok() const { return std::holds_alternative<T>(value_); }
  Status status() const { return ok() ? Status() : std::get<Status>(value_); }

  const T& value() const& {
    CheckOk();
    return std::get<T>(value_);
  }
  T& value() & {
    CheckOk();
    return std::get<T>(value_);
  }
  T&& value() && {
    CheckOk();
    return std::get<T>(std::move(value_));
  }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  void CheckOk() const {
    SIEVE_CHECK(ok(), "StatusOr::value() on an error: %s",
                std::get<Status>(value_).ToString().c_str());
  }
  std::variant<Status, T> value_;
};

// printf-style formatting into a std::string.
std::string StrFormat(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string StrFormatV(const char* fmt, va_list ap);

}  // namespace sieve

#define SIEVE_STATUS_CONCAT_INNER_(a, b) a##b
#define SIEVE_STATUS_CONCAT_(a, b) SIEVE_STATUS_CONCAT_INNER_(a, b)

#define SIEVE_RETURN_IF_ERROR(expr)         \
  do {                                      \
    ::sieve::Status sieve_status_ = (expr); \
    if (!sieve_status_.ok()) [[unlikely]]   \
      return sieve_status_;                 \
  } while (0)

#define SIEVE_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) [[unlikely]]                        \
    return tmp.status();                             \
  lhs = std::move(tmp).value()

// Expands to several statements: use it as a statement of its own (braces under an `if`).
#define SIEVE_ASSIGN_OR_RETURN(lhs, expr) \
  SIEVE_ASSIGN_OR_RETURN_IMPL_(SIEVE_STATUS_CONCAT_(sieve_statusor_, __COUNTER__), lhs, expr)
