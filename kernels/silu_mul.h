// SwiGLU activation on the fused gate-up projection:
//   out[r, i] = silu(gate_up[r, i]) * gate_up[r, inter + i],  silu(x) = x / (1 + exp(-x))
//
// CPU reference: kernels/ref/silu_mul_ref.cc. CUDA: kernels/silu_mul.cu.
// Test: tests/unit/kernels/silu_mul_test.cc.
#pragma once

#include <cstdint>

#include "kernels/cuda_decl.h"
#include "kernels/dtype.h"

namespace sieve::kernels {

struct SiluMulArgs {
  const void* gate_up = nullptr;  // [rows, 2 * inter]: gate in [:, :inter], up in [:, inter:]
  void* out = nullptr;            // [rows, inter]
  int64_t rows = 0;
  int64_t inter = 0;
  DType dtype = DType::kF32;
};

void SiluMulRef(const SiluMulArgs& args);
#if SIEVE_WITH_CUDA
cudaError_t LaunchSiluMul(const SiluMulArgs& args, cudaStream_t stream);
#endif

}  // namespace sieve::kernels
