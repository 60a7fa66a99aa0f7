// sieve::internal::SyncCheckEnabled, the switch behind SIEVE_SYNC_CHECK (kernels/cuda_check.h):
// true in Debug builds (NDEBUG undefined) or when the environment sets CUDA_LAUNCH_BLOCKING=1,
// read once per process. Exercised by every CUDA backend op (worker/cuda_backend.cc).
#include <cstdlib>
#include <cstring>

#include "kernels/cuda_check.h"

namespace sieve::internal {

bool SyncCheckEnabled() {
#ifndef NDEBUG
  return true;
#else
  static const bool enabled = [] {
    const char* env = std::getenv("CUDA_LAUNCH_BLOCKING");
    return env != nullptr && std::strcmp(env, "1") == 0;
  }();
  return enabled;
#endif
}

}  // namespace sieve::internal
