// GEMM against a Hugging Face Linear weight: y = alpha * x · wᵀ + beta * y.
//   x [m, k] (row stride ldx), w [n, k] (row-major, as HF stores Linear weights),
//   y [m, n] (row stride ldy). Accumulation is fp32 on every backend.
//
// CPU reference: kernels/ref/gemm_ref.cc (OpenBLAS sgemm when SIEVE_WITH_CBLAS, else a blocked
// loop; fp32 operands only, which is what the CPU backend stores). CUDA: kernels/gemm_cublas.h
// (cuBLASLt bf16 with fp32 accumulation; it needs a handle, so it is a small class rather than
// a free launcher). Test: tests/unit/kernels/gemm_test.cc.
#pragma once

#include <cstdint>

#include "kernels/dtype.h"

namespace sieve::kernels {

struct GemmArgs {
  const void* x = nullptr;  // [m, k], x_dtype, row stride ldx
  const void* w = nullptr;  // [n, k], w_dtype, row stride k
  void* y = nullptr;        // [m, n], y_dtype, row stride ldy
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
  int64_t ldx = 0;
  int64_t ldy = 0;
  float alpha = 1.f;
  float beta = 0.f;
  DType x_dtype = DType::kF32;
  DType w_dtype = DType::kF32;
  DType y_dtype = DType::kF32;
};

// The arguments of a product over dense rows (ldx = k, ldy = n): y = x · wᵀ + beta * y, x and w
// of `dtype`.
inline GemmArgs DenseGemmArgs(const void* x, const void* w, void* y, int64_t m, int64_t n,
                              int64_t k, DType dtype, DType y_dtype, float beta = 0.f) {
  return {.x = x,
          .w = w,
          .y = y,
          .m = m,
          .n = n,
          .k = k,
          .ldx = k,
          .ldy = n,
          .beta = beta,
          .x_dtype = dtype,
          .w_dtype = dtype,
          .y_dtype = y_dtype};
}

// Any dtype combination; fast path when all three are fp32.
void GemmRef(const GemmArgs& args);

// "OpenBLAS" or "built-in loop": what GemmRef runs fp32 GEMMs with in this build.
const char* GemmRefImplementation();

}  // namespace sieve::kernels
