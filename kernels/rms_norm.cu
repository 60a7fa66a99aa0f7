// LaunchRmsNorm: residual += input (optional), out = weight * residual / rms(residual)
// (contract: kernels/rms_norm.h; CPU reference: kernels/ref/rms_norm_ref.cc).
//
// One variant: a block per row (grid-stride over rows), fp32 math. Pass 1 adds the branch into
// the residual, stores it (rounded to residual_dtype: the reference normalizes the stored value)
// and accumulates the sum of squares per thread; one fixed-order block reduction gives the mean.
// Pass 2 re-reads the residual elements the same thread wrote (no hazard) and writes
// weight * (x * inv) in act_dtype. Templated on the three dtypes (the CUDA backend uses act bf16,
// residual fp32, weight bf16).
//
// Tested by tests/unit/kernels/rms_norm_test.cc.
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda_util.cuh"
#include "kernels/rms_norm.h"

namespace sieve::kernels {
namespace {

template <DType kAct, DType kRes, DType kW>
__global__ void RmsNormKernel(const RmsNormArgs a) {
  __shared__ float scratch[32];
  for (int64_t r = blockIdx.x; r < a.rows; r += gridDim.x) {
    const int64_t base = r * a.cols;
    float sum_sq = 0.f;
    for (int64_t c = threadIdx.x; c < a.cols; c += blockDim.x) {
      float v = cuda::LoadElem<kRes>(a.residual, base + c);
      if (a.input != nullptr) {
        v = cuda::RoundTo<kRes>(v + cuda::LoadElem<kAct>(a.input, base + c));
        cuda::StoreElem<kRes>(a.residual, base + c, v);
      }
      sum_sq += v * v;
    }
    const float total = cuda::BlockSum(sum_sq, scratch);
    const float inv = 1.f / sqrtf(total / static_cast<float>(a.cols) + a.eps);
    for (int64_t c = threadIdx.x; c < a.cols; c += blockDim.x) {
      const float v = cuda::LoadElem<kRes>(a.residual, base + c);
      const float w = cuda::LoadElem<kW>(a.weight, c);
      cuda::StoreElem<kAct>(a.out, base + c, w * (v * inv));
    }
  }
}

template <DType kAct, DType kRes>
cudaError_t LaunchWithWeight(const RmsNormArgs& a, unsigned blocks, int threads,
                             cudaStream_t stream) {
  SIEVE_DISPATCH_DTYPE(a.weight_dtype, kW, {
    RmsNormKernel<kAct, kRes, kW><<<blocks, threads, 0, stream>>>(a);
    return cudaGetLastError();
  })
}

template <DType kAct>
cudaError_t LaunchWithResidual(const RmsNormArgs& a, unsigned blocks, int threads,
                               cudaStream_t stream) {
  SIEVE_DISPATCH_DTYPE(a.residual_dtype, kRes,
                       { return LaunchWithWeight<kAct, kRes>(a, blocks, threads, stream); })
}

}  // namespace

cudaError_t LaunchRmsNorm(const RmsNormArgs& a, cudaStream_t stream) {
  if (a.rows < 0 || a.cols < 0) return cudaErrorInvalidValue;
  if (a.rows == 0 || a.cols == 0) return cudaSuccess;
  if (!a.residual || !a.weight || !a.out) return cudaErrorInvalidValue;
  // About 8 columns per thread, between one warp and 1024 threads.
  const int threads = static_cast<int>(std::clamp<int64_t>(
      cuda::CeilDiv<int64_t>(cuda::CeilDiv<int64_t>(a.cols, 8), 32) * 32, 32, 1024));
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(a.rows, 1 << 20));
  SIEVE_DISPATCH_DTYPE(a.act_dtype, kAct,
                       { return LaunchWithResidual<kAct>(a, blocks, threads, stream); })
}

}  // namespace sieve::kernels
