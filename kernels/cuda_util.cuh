// Device helpers shared by the CUDA kernels of kernels/*.cu (included only by .cu files):
//   - CeilDiv, typed element loads/stores (LoadElem / StoreElem, the rounding of kernels/dtype.h);
//   - warp and block reductions and scans in a fixed order, so a result never depends on how
//     warps were scheduled (every reduction here is deterministic);
//   - order-preserving uint32 keys of floats for radix selection (-0 and +0 map to one key);
//   - the dispatch switches: SIEVE_DISPATCH_HEAD_DIM (STYLE rule 6: the one place a runtime
//     head_dim becomes a template constant; unknown values return cudaErrorNotSupported) and
//     SIEVE_DISPATCH_DTYPE.
//
// Exercised by every kernel test in tests/unit/kernels/.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace sieve::kernels::cuda {

constexpr int kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;

template <typename T>
__host__ __device__ constexpr T CeilDiv(T a, T b) {
  return (a + b - 1) / b;
}

// Element i of a tensor of dtype kType, as float.
template <DType kType>
__device__ __forceinline__ float LoadElem(const void* p, int64_t i) {
  if constexpr (kType == DType::kF32) {
    return static_cast<const float*>(p)[i];
  } else if constexpr (kType == DType::kBF16) {
    return BF16ToFloat(static_cast<const uint16_t*>(p)[i]);
  } else {
    return HalfToFloat(static_cast<const uint16_t*>(p)[i]);
  }
}

// Stores v as element i of a tensor of dtype kType (round to nearest even).
template <DType kType>
__device__ __forceinline__ void StoreElem(void* p, int64_t i, float v) {
  if constexpr (kType == DType::kF32) {
    static_cast<float*>(p)[i] = v;
  } else if constexpr (kType == DType::kBF16) {
    static_cast<uint16_t*>(p)[i] = FloatToBF16(v);
  } else {
    static_cast<uint16_t*>(p)[i] = FloatToHalf(v);
  }
}

// v rounded to kType and back (what a store followed by a load yields).
template <DType kType>
__device__ __forceinline__ float RoundTo(float v) {
  if constexpr (kType == DType::kF32) {
    return v;
  } else if constexpr (kType == DType::kBF16) {
    return BF16ToFloat(FloatToBF16(v));
  } else {
    return HalfToFloat(FloatToHalf(v));
  }
}

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  }
  return v;
}

// Block-wide sum / max. Every thread gets the result. `scratch` holds 32 floats of shared memory.
// blockDim.x must be a multiple of 32. Safe to call repeatedly with the same scratch.
__device__ __forceinline__ float BlockSum(float v, float* scratch) {
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  const int num_warps = blockDim.x / kWarpSize;
  v = WarpSum(v);
  __syncthreads();  // a previous call may still be reading scratch
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  // Every warp reduces the same partials in the same order: no broadcast step is needed.
  return WarpSum(lane < num_warps ? scratch[lane] : 0.f);
}

__device__ __forceinline__ float BlockMax(float v, float* scratch) {
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  const int num_warps = blockDim.x / kWarpSize;
  v = WarpMax(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  return WarpMax(lane < num_warps ? scratch[lane] : -INFINITY);
}

// Order-preserving key: a > b (as floats, -0 == +0) iff Key(a) > Key(b). NaNs sort above +inf
// (positive NaN) or below -inf (negative NaN); the references leave NaN order unspecified.
__device__ __forceinline__ uint32_t FloatKey(float x) {
  const uint32_t bits = __float_as_uint(x == 0.f ? 0.f : x);
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

// Inverse of FloatKey (for keys of non-NaN floats; -0 comes back as +0).
__device__ __forceinline__ float KeyToFloat(uint32_t key) {
  const uint32_t bits = (key & 0x80000000u) ? (key & 0x7fffffffu) : ~key;
  return __uint_as_float(bits);
}

// Block-wide exclusive prefix count of `flag` in thread order. Returns this thread's exclusive
// count; *total receives the block's count. `scratch` holds 32 ints of shared memory.
__device__ __forceinline__ int BlockExclusiveCount(bool flag, int* scratch, int* total) {
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  const int num_warps = blockDim.x / kWarpSize;
  const unsigned ballot = __ballot_sync(kFullMask, flag);
  const int in_warp = __popc(ballot & ((1u << lane) - 1u));
  __syncthreads();  // a previous call may still be reading scratch
  if (lane == 0) scratch[warp] = __popc(ballot);
  __syncthreads();
  int before = 0, sum = 0;
  for (int w = 0; w < num_warps; ++w) {
    const int c = scratch[w];
    before += w < warp ? c : 0;
    sum += c;
  }
  *total = sum;
  return before + in_warp;
}

}  // namespace sieve::kernels::cuda

// Maps a runtime head_dim onto `constexpr int kHeadDim` for the statements in `...`, which must
// return a cudaError_t. Only the head dims of the models we run are instantiated (Llama-3: 128;
// 64 for smaller Llamas); AttentionCanImplement routes every other head_dim to the generic path.
#define SIEVE_DISPATCH_HEAD_DIM(head_dim, kHeadDim, ...) \
  switch (head_dim) {                                    \
    case 64: {                                           \
      constexpr int kHeadDim = 64;                       \
      __VA_ARGS__                                        \
    }                                                    \
    case 128: {                                          \
      constexpr int kHeadDim = 128;                      \
      __VA_ARGS__                                        \
    }                                                    \
    default:                                             \
      return cudaErrorNotSupported;                      \
  }

// Maps a runtime DType onto `constexpr DType kType` for the statements in `...` (which return).
#define SIEVE_DISPATCH_DTYPE(dtype, kType, ...)               \
  switch (dtype) {                                            \
    case ::sieve::DType::kF32: {                              \
      constexpr ::sieve::DType kType = ::sieve::DType::kF32;  \
      __VA_ARGS__                                             \
    }                                                         \
    case ::sieve::DType::kBF16: {                             \
      constexpr ::sieve::DType kType = ::sieve::DType::kBF16; \
      __VA_ARGS__                                             \
    }                                                         \
    case ::sieve::DType::kF16: {                              \
      constexpr ::sieve::DType kType = ::sieve::DType::kF16;  \
      __VA_ARGS__                                             \
    }                                                         \
    default:                                                  \
      return cudaErrorNotSupported;                           \
  }
