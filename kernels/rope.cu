// LaunchRope: rotary position embedding in place on Q and K, HF "rotate_half" layout
// (contract: kernels/rope.h; CPU reference: kernels/ref/rope_ref.cc).
//
// One variant: a block per token (grid-stride over tokens). The block first computes the
// token's head_dim / 2 (cos, sin) pairs into shared memory, then rotates every (head, i) pair of
// Q and K. Exactness with the reference (and Hugging Face):
//   - the angle is the single fp32 product inv_freq[i] * float(position) (__fmul_rn);
//   - cos / sin are taken in double precision (sincos, never __sinf / __cosf) and rounded once
//     to float, as the reference does with std::cos / std::sin on the double angle;
//   - the rotation uses __fmul_rn / __fadd_rn, so nvcc cannot contract it into FMAs that the
//     reference (built with -ffp-contract=off) does not form.
// Hence the GPU result equals the reference bit for bit except where the last bit of a
// double-precision sin/cos differs between CUDA and glibc and that flips a float rounding.
//
// Tested by tests/unit/kernels/rope_test.cc.
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda_util.cuh"
#include "kernels/rope.h"

namespace sieve::kernels {
namespace {

template <DType kType>
__global__ void RopeKernel(const RopeArgs a) {
  extern __shared__ float cos_sin[];  // [2][head_dim / 2]
  const int half = a.head_dim / 2;
  float* cos_s = cos_sin;
  float* sin_s = cos_sin + half;
  const int heads = a.num_q_heads + a.num_kv_heads;
  for (int64_t t = blockIdx.x; t < a.num_tokens; t += gridDim.x) {
    const float pos = static_cast<float>(a.positions[t]);
    __syncthreads();  // the previous token's rotation may still read cos_s / sin_s
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
      const float angle = __fmul_rn(a.inv_freq[i], pos);
      double s, c;
      sincos(static_cast<double>(angle), &s, &c);
      cos_s[i] = __fmul_rn(static_cast<float>(c), a.attention_scaling);
      sin_s[i] = __fmul_rn(static_cast<float>(s), a.attention_scaling);
    }
    __syncthreads();
    for (int j = threadIdx.x; j < heads * half; j += blockDim.x) {
      const int h = j / half;
      const int i = j - h * half;
      void* base = h < a.num_q_heads ? a.q : a.k;
      const int64_t offset = h < a.num_q_heads
                                 ? t * a.q_stride + int64_t{h} * a.head_dim
                                 : t * a.k_stride + int64_t{h - a.num_q_heads} * a.head_dim;
      const float x1 = cuda::LoadElem<kType>(base, offset + i);
      const float x2 = cuda::LoadElem<kType>(base, offset + i + half);
      const float c = cos_s[i];
      const float s = sin_s[i];
      // The reference's a + b with a = x1 * c, b = -x2 * s; and x2 * c + x1 * s.
      const float y1 = __fadd_rn(__fmul_rn(x1, c), -__fmul_rn(x2, s));
      const float y2 = __fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, s));
      cuda::StoreElem<kType>(base, offset + i, y1);
      cuda::StoreElem<kType>(base, offset + i + half, y2);
    }
  }
}

}  // namespace

cudaError_t LaunchRope(const RopeArgs& a, cudaStream_t stream) {
  if (a.num_tokens < 0 || a.head_dim < 0 || a.head_dim > 1024 || a.num_q_heads < 0 ||
      a.num_kv_heads < 0) {
    return cudaErrorInvalidValue;
  }
  if (a.num_tokens == 0 || a.head_dim == 0 || a.num_q_heads + a.num_kv_heads == 0) {
    return cudaSuccess;
  }
  if (!a.positions || !a.inv_freq || (a.num_q_heads > 0 && !a.q) || (a.num_kv_heads > 0 && !a.k)) {
    return cudaErrorInvalidValue;
  }
  constexpr int kThreads = 256;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(a.num_tokens, 1 << 20));
  const size_t smem = sizeof(float) * a.head_dim;
  SIEVE_DISPATCH_DTYPE(a.dtype, kType, {
    RopeKernel<kType><<<blocks, kThreads, smem, stream>>>(a);
    return cudaGetLastError();
  })
}

}  // namespace sieve::kernels
