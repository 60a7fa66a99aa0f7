// SIEVE_CUDA_CHECK, SIEVE_CUBLAS_CHECK and SIEVE_SYNC_CHECK (STYLE rules 10 and 13).
//
//   SIEVE_CUDA_CHECK(cudaMemcpyAsync(...));        // fatal on error, reports host/rank/device
//   SIEVE_CUDA_CHECK(cudaGetLastError());          // after every <<<>>>
//   SIEVE_SYNC_CHECK(stream);                      // stage boundaries: syncs only in Debug builds
//                                                  // or with CUDA_LAUNCH_BLOCKING=1
// Only CUDA translation units and the CUDA backend include this header.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "kernels/check.h"

namespace sieve::internal {
// True in Debug builds or when CUDA_LAUNCH_BLOCKING=1 is set.
bool SyncCheckEnabled();
}  // namespace sieve::internal

#define SIEVE_CUDA_CHECK(stmt)                                                             \
  do {                                                                                     \
    const cudaError_t sieve_cuda_err_ = (stmt);                                            \
    if (sieve_cuda_err_ != cudaSuccess) [[unlikely]] {                                     \
      ::sieve::internal::FatalApiError("CUDA", #stmt, cudaGetErrorString(sieve_cuda_err_), \
                                       __FILE__, __LINE__, __func__);                      \
    }                                                                                      \
  } while (0)

#define SIEVE_CUBLAS_CHECK(stmt)                                                                 \
  do {                                                                                           \
    const cublasStatus_t sieve_cublas_st_ = (stmt);                                              \
    if (sieve_cublas_st_ != CUBLAS_STATUS_SUCCESS) [[unlikely]] {                                \
      ::sieve::internal::FatalApiError("cuBLAS", #stmt, cublasGetStatusString(sieve_cublas_st_), \
                                       __FILE__, __LINE__, __func__);                            \
    }                                                                                            \
  } while (0)

#define SIEVE_SYNC_CHECK(stream)                       \
  do {                                                 \
    if (::sieve::internal::SyncCheckEnabled()) {       \
      SIEVE_CUDA_CHECK(cudaStreamSynchronize(stream)); \
      SIEVE_CUDA_CHECK(cudaGetLastError());            \
    }                                                  \
  } while (0)
