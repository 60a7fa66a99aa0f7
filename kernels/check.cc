// The shared fatal-error reporter. See check.h.
#include "kernels/check.h"

#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace sieve {
namespace {

struct ProcessContext {
  std::mutex mu;
  char text[256] = "host=? rank=? device=?";
};

ProcessContext& Context() {
  static ProcessContext* ctx = [] {
    auto* c = new ProcessContext;
    char host[128] = "?";
    gethostname(host, sizeof(host) - 1);
    std::snprintf(c->text, sizeof(c->text), "host=%s rank=? device=?", host);
    return c;
  }();
  return *ctx;
}

}  // namespace

void SetProcessContext(int rank, int device) {
  ProcessContext& ctx = Context();
  std::lock_guard<std::mutex> lock(ctx.mu);
  char host[128] = "?";
  gethostname(host, sizeof(host) - 1);
  char rank_text[16] = "?";
  char device_text[16] = "?";
  if (rank >= 0) std::snprintf(rank_text, sizeof(rank_text), "%d", rank);
  if (device >= 0) std::snprintf(device_text, sizeof(device_text), "%d", device);
  std::snprintf(ctx.text, sizeof(ctx.text), "host=%s rank=%s device=%s", host, rank_text,
                device_text);
}

const char* ProcessContextString() { return Context().text; }

namespace internal {

void FatalApiError(const char* api, const char* stmt, const char* msg, const char* file, int line,
                   const char* func) {
  std::fprintf(stderr, "[sieve] FATAL %s error [%s] at %s:%d (%s): %s: %s\n", api,
               ProcessContextString(), file, line, func, stmt, msg ? msg : "");
  std::fflush(stderr);
  std::abort();
}

void FatalCheckError(const char* cond, const char* file, int line, const char* func,
                     const char* fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "[sieve] FATAL check failed [%s] at %s:%d (%s): %s: %s\n",
               ProcessContextString(), file, line, func, cond, msg);
  std::fflush(stderr);
  std::abort();
}

}  // namespace internal
}  // namespace sieve
