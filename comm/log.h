// Structured, quiet-by-default logging: one logfmt line per event on stderr.
//
//   SIEVE_LOG_INFO("model loaded", "layers=%d params=%.2fB", n, p);
//   -> ts=2026-11-22T10:00:00.123Z level=info host=h rank=1 device=0 src=loader.cc:42
//      msg="model loaded" layers=32 params=8.03B
//
// The level comes from SetLogLevel (the --log-level flag of every tool) or the environment
// variable SIEVE_LOG_LEVEL (debug|info|warn|error|off); the default is warn, so a tool that works
// prints nothing but its result. Progress of long work is logged at info. Request bodies are never
// logged. Thread-safe: each line is written with one fwrite.
//
// Tested by tests/unit/comm/log_test.cc.
#pragma once

#include <string_view>

namespace sieve {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();

// Parses "debug", "info", "warn", "error" or "off"; returns false for anything else.
bool ParseLogLevel(std::string_view text, LogLevel* level);

inline bool LogEnabled(LogLevel level) { return level >= GetLogLevel(); }

namespace internal {
// msg is quoted; fields is a printf format for trailing key=value pairs (may be "").
void LogLine(LogLevel level, const char* file, int line, const char* msg, const char* fields, ...)
    __attribute__((format(printf, 5, 6)));
}  // namespace internal

}  // namespace sieve

#define SIEVE_LOG_AT_(level, msg, ...)                                            \
  do {                                                                            \
    if (::sieve::LogEnabled(level)) {                                             \
      ::sieve::internal::LogLine(level, __FILE__, __LINE__, msg, "" __VA_ARGS__); \
    }                                                                             \
  } while (0)

#define SIEVE_LOG_DEBUG(msg, ...) SIEVE_LOG_AT_(::sieve::LogLevel::kDebug, msg, __VA_ARGS__)
#define SIEVE_LOG_INFO(msg, ...) SIEVE_LOG_AT_(::sieve::LogLevel::kInfo, msg, __VA_ARGS__)
#define SIEVE_LOG_WARN(msg, ...) SIEVE_LOG_AT_(::sieve::LogLevel::kWarn, msg, __VA_ARGS__)
#define SIEVE_LOG_ERROR(msg, ...) SIEVE_LOG_AT_(::sieve::LogLevel::kError, msg, __VA_ARGS__)
