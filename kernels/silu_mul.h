// SwiGLU activation on the fused gate-up projection:
//   out[r, i] = silu(g) * u,  silu(x) = x / (1 + exp(-x)),
// where, with B = block (or inter when block is 0), b = i / B and j = i % B,
//   g = gate_up[r, 2 B b + j],  u = gate_up[r, 2 B b + B + j].
// block 0 is the plain layout (gate in [:, :inter], up in [:, inter:]); block > 0 the
// interleaved weight layout of kernels/gemm_swiglu.h (blocks of B gate columns, each followed by
// the B up columns of the same range), which the CUDA backend uses so that its prefill can fuse
// SwiGLU into the GEMM.
//
// CPU reference: kernels/ref/silu_mul_ref.cc. CUDA: kernels/silu_mul.cu.
// Test: tests/unit/kernels/silu_mul_test.cc.
#pragma once

#include <cstdint>

#include "kernels/cuda_decl.h"
#include "kernels/dtype.h"

namespace sieve::kernels {

struct SiluMulArgs {
  const void* gate_up = nullptr;  // [rows, 2 * inter], laid out by `block`
  void* out = nullptr;            // [rows, inter]
  int64_t rows = 0;
  int64_t inter = 0;
  int64_t block = 0;  // 0 or a divisor of inter (see above)
  DType dtype = DType::kF32;
};

// Where gate column i sits in a gate-up row laid out in blocks of `block` (> 0; the plain layout
// is one block of inter): 2 block (i / block) + i % block. Its up column is `block` further on.
SIEVE_HOST_DEVICE int64_t SwigluGateIndex(int64_t i, int64_t block) {
  return 2 * block * (i / block) + i % block;
}

void SiluMulRef(const SiluMulArgs& args);
#if SIEVE_WITH_CUDA
cudaError_t LaunchSiluMul(const SiluMulArgs& args, cudaStream_t stream);
#endif

}  // namespace sieve::kernels
