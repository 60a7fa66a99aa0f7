// RMSNorm fused with the residual add (Llama's pre-norm):
//   residual[r, :] += input[r, :]          (skipped when input == nullptr)
//   out[r, :] = weight * residual[r, :] / sqrt(mean(residual[r, :]^2) + eps)
// The mean and the scaling are computed in fp32 whatever the storage types.
//
// CPU reference: kernels/ref/rms_norm_ref.cc. CUDA: kernels/rms_norm.cu (one block per row).
// Test: tests/unit/kernels/rms_norm_test.cc.
#pragma once

#include <cstdint>

#include "kernels/cuda_decl.h"
#include "kernels/dtype.h"

namespace sieve::kernels {

struct RmsNormArgs {
  const void* input = nullptr;   // [rows, cols], act_dtype, optional branch output to add
  void* residual = nullptr;      // [rows, cols], residual_dtype, updated in place
  const void* weight = nullptr;  // [cols], weight_dtype
  void* out = nullptr;           // [rows, cols], act_dtype
  int64_t rows = 0;
  int64_t cols = 0;
  float eps = 1e-5f;
  DType act_dtype = DType::kF32;
  DType residual_dtype = DType::kF32;
  DType weight_dtype = DType::kF32;
};

void RmsNormRef(const RmsNormArgs& args);
#if SIEVE_WITH_CUDA
cudaError_t LaunchRmsNorm(const RmsNormArgs& args, cudaStream_t stream);
#endif

}  // namespace sieve::kernels
