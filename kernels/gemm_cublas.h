// CublasLtGemm: the CUDA implementation of kernels/gemm.h (y = alpha * x · wᵀ + beta * y) on
// cuBLASLt, with fp32 accumulation. It owns a cuBLASLt handle and a device workspace (STYLE
// rule 7), so it is a small class rather than a free launcher.
//
// Row-major everywhere: x [m, k] (row stride ldx), w [n, k] (a Hugging Face Linear weight,
// row stride k), y [m, n] (row stride ldy). cuBLAS is column-major, so the product is issued as
// yᵀ [n, m] = w [n, k] · xᵀ [k, m]: A = w read transposed (the column-major [k, n] view of w),
// B = x untransposed (the column-major [k, m] view of x), C = D = y (the column-major [n, m]
// view of y, ld = ldy).
//
// Supported dtypes (x, w -> y): bf16, bf16 -> bf16 or fp32 (the CUDA backend: projections in
// bf16, LM-head logits in fp32); fp16, fp16 -> fp16 or fp32; fp32, fp32 -> fp32 (no TF32).
// Anything else returns cudaErrorNotSupported.
//
// Run() caches one plan per shape (matmul descriptor, matrix layouts and the heuristic's first
// kMaxCandidates algorithms, keyed by m, n, k, strides, dtypes, whether beta is zero, and the
// 16..256-byte alignment of each pointer) and runs the plan's chosen algorithm: the heuristic's
// first, unless Tune() timed the candidates for a shape of the same bucket (the same key with m
// rounded up to a power of two) and found a faster one, or Choose() picked one (RunCandidate
// lets a benchmark time them). Run is asynchronous on `stream`, never allocates device memory
// after Create() and never synchronizes. Not thread-safe: one instance per stream.
//
// Tested by tests/unit/kernels/gemm_test.cc.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>

#include "kernels/gemm.h"

namespace sieve::kernels {

class CublasLtGemm {
 public:
  // 32 MiB, NVIDIA's recommendation for Hopper.
  static constexpr size_t kDefaultWorkspaceBytes = size_t{32} << 20;

  // Creates the handle and the workspace on the current device. On failure *out is untouched.
  static cudaError_t Create(size_t workspace_bytes, std::unique_ptr<CublasLtGemm>* out);

  CublasLtGemm(const CublasLtGemm&) = delete;
  CublasLtGemm& operator=(const CublasLtGemm&) = delete;
  ~CublasLtGemm();

  static constexpr int kMaxCandidates = 8;

  // y = alpha * x · wᵀ + beta * y on `stream`. m == 0 or n == 0 is a no-op; k must be > 0.
  cudaError_t Run(const GemmArgs& args, cudaStream_t stream);

  // The heuristic's algorithms for args' plan: how many (1..kMaxCandidates; 0 with *err set when
  // there is no plan), running candidate i, and making candidate i the one Run uses.
  int NumCandidates(const GemmArgs& args, cudaError_t* err);
  cudaError_t RunCandidate(const GemmArgs& args, int candidate, cudaStream_t stream);
  cudaError_t Choose(const GemmArgs& args, int candidate);

  // Autotuning, as a one-time step before the first large forward: times every candidate on
  // `args` (a warm-up each, then five rounds over all of them, the median per candidate, CUDA
  // events on `stream`; it overwrites args.y and waits for the stream) and makes the fastest
  // the choice of every plan in args' bucket, present and future (the heuristic's first stays
  // unless another is more than 1% faster). *chosen (optional) gets its index.
  cudaError_t Tune(const GemmArgs& args, cudaStream_t stream, int* chosen = nullptr);
  // Whether args' bucket has been tuned.
  bool Tuned(const GemmArgs& args) const;

  // The cuBLAS status behind the last failed Run (CUBLAS_STATUS_SUCCESS when it succeeded).
  cublasStatus_t last_status() const { return last_status_; }

 private:
  struct Plan;
  struct PlanKey {
    int64_t m, n, k, ldx, ldy;
    DType x_dtype, w_dtype, y_dtype;
    bool beta_zero;
    int x_align, w_align, y_align;
    bool operator==(const PlanKey& o) const;
  };
  struct PlanKeyHash {
    size_t operator()(const PlanKey& key) const;
  };
  struct HandleDeleter {
    void operator()(cublasLtContext* handle) const;
  };
  struct DeviceDeleter {
    void operator()(void* p) const;
  };

  CublasLtGemm() = default;
  static PlanKey KeyOf(const GemmArgs& args);
  static PlanKey BucketOf(PlanKey key);  // m rounded up to a power of two
  cudaError_t MakePlan(const PlanKey& key, Plan* plan);
  // The cached plan for args, made on first use; nullptr with *err set on invalid arguments or
  // when cuBLASLt has no algorithm. *err is cudaSuccess with nullptr for an empty product.
  Plan* PlanFor(const GemmArgs& args, cudaError_t* err);
  // PlanFor, and cudaErrorInvalidValue (nullptr) unless it has candidate `candidate`.
  Plan* PlanWithCandidate(const GemmArgs& args, int candidate, cudaError_t* err);
  cudaError_t Launch(const Plan& plan, int candidate, const GemmArgs& args, cudaStream_t stream);

  std::unique_ptr<cublasLtContext, HandleDeleter> handle_;
  std::unique_ptr<void, DeviceDeleter> workspace_;
  size_t workspace_bytes_ = 0;
  std::unordered_map<PlanKey, std::unique_ptr<Plan>, PlanKeyHash> plans_;
  std::unordered_map<PlanKey, int, PlanKeyHash> tuned_;  // bucket key -> candidate index
  cublasStatus_t last_status_ = CUBLAS_STATUS_SUCCESS;
};

}  // namespace sieve::kernels
