// The one fatal-error reporter and the precondition macros (STYLE rules 10 and 12).
//
// Every fatal API failure (CUDA, cuBLAS, NCCL, MPI) and every failed precondition goes through
// sieve::internal::FatalError, which prints host, rank, device, the failing statement and a
// message on stderr, then aborts. Aborting one rank is enough to end an mpirun job.
//
// This header includes no CUDA, MPI or Boost header: kernels/, comm/, worker/ and coordinator/
// all use it. The API-specific macros live next to their API: SIEVE_CUDA_CHECK in
// kernels/cuda_check.h, SIEVE_MPI_CHECK / SIEVE_NCCL_CHECK in comm/.
//
// SIEVE_CHECK / SIEVE_DCHECK are for programmer errors only; bad input from a client is a
// sieve::Status (comm/status.h).
//
// Tested by tests/unit/kernels/check_test.cc (death tests).
#pragma once

namespace sieve {

// Records who this process is, so fatal errors name it. Call once at startup (rank -1 and
// device -1 mean "not known"). Thread-safe; later calls overwrite earlier ones.
void SetProcessContext(int rank, int device);

// "host=<h> rank=<r> device=<d>" for error messages and logs.
const char* ProcessContextString();

namespace internal {

// Prints "<api> error at file:line (func) [host rank device]: stmt: msg" and aborts.
[[noreturn]] void FatalApiError(const char* api, const char* stmt, const char* msg,
                                const char* file, int line, const char* func);

// Prints the failed condition with a printf-style explanation and aborts.
[[noreturn]] void FatalCheckError(const char* cond, const char* file, int line, const char* func,
                                  const char* fmt, ...) __attribute__((format(printf, 5, 6)));

}  // namespace internal
}  // namespace sieve

// SIEVE_CHECK(cond, "fmt", args...): always on, release builds included.
#define SIEVE_CHECK(cond, ...)                                                              \
  do {                                                                                      \
    if (!(cond)) [[unlikely]] {                                                             \
      ::sieve::internal::FatalCheckError(#cond, __FILE__, __LINE__, __func__, __VA_ARGS__); \
    }                                                                                       \
  } while (0)

// SIEVE_DCHECK: debug builds only (compiled out, arguments unevaluated, under NDEBUG).
#ifdef NDEBUG
#define SIEVE_DCHECK(cond, ...) \
  do {                          \
  } while (0)
#else
#define SIEVE_DCHECK(cond, ...) SIEVE_CHECK(cond, __VA_ARGS__)
#endif
