// Skinny GEMM: y = alpha * x · wᵀ + beta * y (kernels/gemm.h's contract and GemmArgs) for the
// few-row products of decoding, where the weight is read once per step and the op is bound by
// HBM bandwidth: m <= kSkinnyGemmMaxRows rows of x against every row of w.
//
// Eligible (SkinnyGemmSupported): x and w bf16, y bf16 or fp32, 1 <= m <= 8, k a multiple of 8,
// x and w 16-byte aligned, ldx a multiple of 8, ldy >= n. Anything else is cudaErrorNotSupported
// (the caller uses cuBLASLt, kernels/gemm_cublas.h).
//
// CPU reference: GemmRef (kernels/ref/gemm_ref.cc). CUDA: kernels/gemm_skinny.cu.
// Test: tests/unit/kernels/gemm_skinny_test.cc. Timed against cuBLASLt by `sieve-bench gemm
// --decode-shapes`.
#pragma once

#include "kernels/cuda_decl.h"
#include "kernels/gemm.h"

namespace sieve::kernels {

inline constexpr int kSkinnyGemmMaxRows = 8;

#if SIEVE_WITH_CUDA
bool SkinnyGemmSupported(const GemmArgs& args);
cudaError_t LaunchSkinnyGemm(const GemmArgs& args, cudaStream_t stream);
#endif

}  // namespace sieve::kernels
