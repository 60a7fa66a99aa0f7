#include "comm/log.h"

#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include "kernels/check.h"

namespace sieve {
namespace {

LogLevel InitialLevel() {
  LogLevel level = LogLevel::kWarn;
  if (const char* env = std::getenv("SIEVE_LOG_LEVEL")) ParseLogLevel(env, &level);
  return level;
}

std::atomic<int>& LevelStorage() {
  static std::atomic<int> level{static_cast<int>(InitialLevel())};
  return level;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
    case LogLevel::kOff:
      return "off";
  }
  return "?";
}

const char* BaseName(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash ? slash + 1 : path;
}

}  // namespace

void SetLogLevel(LogLevel level) { LevelStorage().store(static_cast<int>(level)); }

LogLevel GetLogLevel() { return static_cast<LogLevel>(LevelStorage().load()); }

bool ParseLogLevel(std::string_view text, LogLevel* level) {
  static constexpr struct {
    std::string_view name;
    LogLevel level;
  } kNames[] = {{"debug", LogLevel::kDebug}, {"info", LogLevel::kInfo},
                {"warn", LogLevel::kWarn},   {"warning", LogLevel::kWarn},
                {"error", LogLevel::kError}, {"off", LogLevel::kOff}};
  for (const auto& entry : kNames) {
    if (entry.name == text) {
      *level = entry.level;
      return true;
    }
  }
  return false;
}

namespace internal {

void LogLine(LogLevel level, const char* file, int line, const char* msg, const char* fields, ...) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const int millis = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm_utc;
  gmtime_r(&secs, &tm_utc);
  char ts[32];
  std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm_utc);

  std::string out;
  out.reserve(256);
  char head[512];
  std::snprintf(head, sizeof(head), "ts=%s.%03dZ level=%s %s src=%s:%d msg=\"", ts, millis,
                LevelName(level), ProcessContextString(), BaseName(file), line);
  out += head;
  for (const char* p = msg; *p; ++p) {
    if (*p == '"' || *p == '\\') out += '\\';
    out += (*p == '\n') ? ' ' : *p;
  }
  out += '"';
  if (fields && *fields) {
    va_list ap;
    va_start(ap, fields);
    char buf[1024];
    std::vsnprintf(buf, sizeof(buf), fields, ap);
    va_end(ap);
    out += ' ';
    out += buf;
  }
  out += '\n';
  std::fwrite(out.data(), 1, out.size(), stderr);
}

}  // namespace internal
}  // namespace sieve
