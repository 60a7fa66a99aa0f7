// LaunchRope: rotary position embedding in place on Q and K, HF "rotate_half" layout
// (contract: kernels/rope.h; CPU reference: kernels/ref/rope_ref.cc).
//
// A block per token (grid-stride over tokens). The block first computes the token's head_dim / 2
// (cos, sin) pairs into shared memory, then rotates every (head, i) pair of Q and K. Two
// variants, the same arithmetic per element:
//   1. Vector (16-bit dtypes, head_dim / 2 a multiple of 8, q / k 16-byte aligned, strides
//      multiples of 8): a thread rotates 8 consecutive pairs of one head with two 16-byte loads
//      and two 16-byte stores (x[i..i+7] and x[i+d/2..i+d/2+7]).
//   2. Scalar: a thread per (head, i) pair, any dtype and layout.
// Exactness with the reference (and Hugging Face):
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

constexpr int kVec = 8;  // 16-bit elements per 16-byte access

// The token's cos / sin table into shared memory (cos_s[i], sin_s[i] for i < half).
__device__ __forceinline__ void TokenCosSin(const RopeArgs& a, int64_t t, float* cos_s,
                                            float* sin_s) {
  const int half = a.head_dim / 2;
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
}

// The reference's a + b with a = x1 * c, b = -x2 * s; and x2 * c + x1 * s.
__device__ __forceinline__ void Rotate(float x1, float x2, float c, float s, float* y1, float* y2) {
  *y1 = __fadd_rn(__fmul_rn(x1, c), -__fmul_rn(x2, s));
  *y2 = __fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, s));
}

// Element offset of head h (q heads first, then k heads) of token t, and its base pointer.
__device__ __forceinline__ void* HeadBase(const RopeArgs& a, int64_t t, int h, int64_t* offset) {
  if (h < a.num_q_heads) {
    *offset = t * a.q_stride + int64_t{h} * a.head_dim;
    return a.q;
  }
  *offset = t * a.k_stride + int64_t{h - a.num_q_heads} * a.head_dim;
  return a.k;
}

template <DType kType>
__global__ void RopeScalarKernel(const RopeArgs a) {
  extern __shared__ float cos_sin[];  // [2][head_dim / 2]
  const int half = a.head_dim / 2;
  float* cos_s = cos_sin;
  float* sin_s = cos_sin + half;
  const int heads = a.num_q_heads + a.num_kv_heads;
  for (int64_t t = blockIdx.x; t < a.num_tokens; t += gridDim.x) {
    TokenCosSin(a, t, cos_s, sin_s);
    for (int j = threadIdx.x; j < heads * half; j += blockDim.x) {
      const int h = j / half;
      const int i = j - h * half;
      int64_t offset;
      void* base = HeadBase(a, t, h, &offset);
      float y1, y2;
      Rotate(cuda::LoadElem<kType>(base, offset + i),
             cuda::LoadElem<kType>(base, offset + i + half), cos_s[i], sin_s[i], &y1, &y2);
      cuda::StoreElem<kType>(base, offset + i, y1);
      cuda::StoreElem<kType>(base, offset + i + half, y2);
    }
  }
}

// kType is kBF16 or kF16; half % kVec == 0 and every head's start is 16-byte aligned.
template <DType kType>
__global__ void RopeVectorKernel(const RopeArgs a) {
  extern __shared__ float cos_sin[];  // [2][head_dim / 2]
  const int half = a.head_dim / 2;
  const int groups = half / kVec;  // per head
  float* cos_s = cos_sin;
  float* sin_s = cos_sin + half;
  const int heads = a.num_q_heads + a.num_kv_heads;
  for (int64_t t = blockIdx.x; t < a.num_tokens; t += gridDim.x) {
    TokenCosSin(a, t, cos_s, sin_s);
    for (int j = threadIdx.x; j < heads * groups; j += blockDim.x) {
      const int h = j / groups;
      const int i0 = (j - h * groups) * kVec;
      int64_t offset;
      uint16_t* base = static_cast<uint16_t*>(HeadBase(a, t, h, &offset)) + offset;
      uint4* lo = reinterpret_cast<uint4*>(base + i0);
      uint4* hi = reinterpret_cast<uint4*>(base + i0 + half);
      uint4 lo4 = *lo, hi4 = *hi;
      uint16_t* x1 = reinterpret_cast<uint16_t*>(&lo4);
      uint16_t* x2 = reinterpret_cast<uint16_t*>(&hi4);
#pragma unroll
      for (int v = 0; v < kVec; ++v) {
        float y1, y2;
        if constexpr (kType == DType::kBF16) {
          Rotate(BF16ToFloat(x1[v]), BF16ToFloat(x2[v]), cos_s[i0 + v], sin_s[i0 + v], &y1, &y2);
          x1[v] = FloatToBF16(y1);
          x2[v] = FloatToBF16(y2);
        } else {
          Rotate(HalfToFloat(x1[v]), HalfToFloat(x2[v]), cos_s[i0 + v], sin_s[i0 + v], &y1, &y2);
          x1[v] = FloatToHalf(y1);
          x2[v] = FloatToHalf(y2);
        }
      }
      *lo = lo4;
      *hi = hi4;
    }
  }
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

bool VectorOk(const RopeArgs& a) {
  const bool sixteen_bit = a.dtype == DType::kBF16 || a.dtype == DType::kF16;
  const bool q_ok = a.num_q_heads == 0 || (Aligned16(a.q) && a.q_stride % kVec == 0);
  const bool k_ok = a.num_kv_heads == 0 || (Aligned16(a.k) && a.k_stride % kVec == 0);
  return sixteen_bit && (a.head_dim / 2) % kVec == 0 && q_ok && k_ok;
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
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(a.num_tokens, 1 << 20));
  const size_t smem = sizeof(float) * a.head_dim;
  const int heads = a.num_q_heads + a.num_kv_heads;
  if (VectorOk(a)) {
    // A thread per 8 pairs of a head (Llama-3.1-8B: 40 heads x 8 = 320 threads), whole warps.
    const int work = heads * (a.head_dim / 2 / kVec);
    const int threads = std::clamp((work + 31) / 32 * 32, 64, 512);
    if (a.dtype == DType::kBF16) {
      RopeVectorKernel<DType::kBF16><<<blocks, threads, smem, stream>>>(a);
    } else {
      RopeVectorKernel<DType::kF16><<<blocks, threads, smem, stream>>>(a);
    }
    return cudaGetLastError();
  }
  constexpr int kThreads = 256;
  SIEVE_DISPATCH_DTYPE(a.dtype, kType, {
    RopeScalarKernel<kType><<<blocks, kThreads, smem, stream>>>(a);
    return cudaGetLastError();
  })
}

}  // namespace sieve::kernels
