// SIEVE_NCCL_CHECK / SIEVE_NCCL_CHECK_COMM: fatal NCCL failures (STYLE rule 10), reported through
// sieve::internal::FatalApiError with ncclGetErrorString and ncclGetLastError, then std::abort().
//
//   SIEVE_NCCL_CHECK(ncclGetUniqueId(&id));                  // no communicator yet
//   SIEVE_NCCL_CHECK_COMM(comm, ncclCommDestroy(comm));      // last error of that communicator
//
// NcclStatus() is the recoverable form: it turns an ncclResult_t into a sieve::Status carrying the
// same text plus host, rank and device (NcclComm's methods return it).
//
// Only translation units built with SIEVE_ENABLE_CUDA include this header.
// Exercised by comm/nccl_comm.cc (tests/mpi/nccl_comm_test.cc, GPU machines only).
#pragma once

#include <nccl.h>

#include "comm/status.h"
#include "kernels/check.h"

namespace sieve::internal {

// Prints "NCCL error ... <stmt>: <ncclGetErrorString(result)>; last error: <ncclGetLastError>"
// with host, rank and device, then aborts. `comm` may be nullptr.
[[noreturn]] void FatalNcclError(ncclResult_t result, ncclComm_t comm, const char* stmt,
                                 const char* file, int line, const char* func);

// Ok for ncclSuccess; otherwise Internal (Unavailable for ncclRemoteError / ncclSystemError,
// which usually mean a peer or the network went away) with the statement, both NCCL messages and
// the process context.
Status NcclStatus(ncclResult_t result, ncclComm_t comm, const char* stmt);

}  // namespace sieve::internal

#define SIEVE_NCCL_CHECK_COMM(comm, stmt)                                                   \
  do {                                                                                      \
    const ncclResult_t sieve_nccl_res_ = (stmt);                                            \
    if (sieve_nccl_res_ != ncclSuccess) [[unlikely]] {                                      \
      ::sieve::internal::FatalNcclError(sieve_nccl_res_, (comm), #stmt, __FILE__, __LINE__, \
                                        __func__);                                          \
    }                                                                                       \
  } while (0)

#define SIEVE_NCCL_CHECK(stmt) SIEVE_NCCL_CHECK_COMM(nullptr, stmt)
