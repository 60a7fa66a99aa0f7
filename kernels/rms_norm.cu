// LaunchRmsNorm: residual += input (optional), out = weight * residual / rms(residual)
// (contract: kernels/rms_norm.h; CPU reference: kernels/ref/rms_norm_ref.cc).
//
// Two variants, fp32 math, the same arithmetic per element; the launcher picks one:
//   1. Warp (at least 1024 rows, act and weight bf16, residual bf16 or fp32, cols a multiple of
//      8 and at most 4096, 16-byte aligned rows: the CUDA backend's prefill): a warp per row,
//      four rows per block.
//      Lane l owns the 8-element groups l, l + 32, ... of the row, loaded with 16-byte accesses
//      and held in registers (kGroups per lane, a template constant), so the row is read once;
//      a warp shuffle reduction gives the mean, and the output goes out in 16-byte stores.
//   2. Block (anything else): a block per row (grid-stride over rows). Pass 1 adds the branch
//      into the residual, stores it and accumulates the sum of squares per thread; one
//      fixed-order block reduction gives the mean. Pass 2 re-reads the residual elements the
//      same thread wrote (no hazard) and writes weight * (x * inv) in act_dtype. Templated on the
//      three dtypes.
// Both store the residual rounded to residual_dtype and normalize the stored value (as the
// reference does).
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

constexpr int kWarpRowsPerBlock = 4;
constexpr int64_t kWarpMinRows = 1024;
constexpr int kGroup = 8;  // elements per 16-byte bf16 access

// Elements i..i+7 (i a multiple of 8, 16-byte aligned) as floats, and back.
template <DType kType>
__device__ __forceinline__ void Load8(const void* p, int64_t i, float* v) {
  if constexpr (kType == DType::kF32) {
    const float4* q = reinterpret_cast<const float4*>(static_cast<const float*>(p) + i);
    const float4 a = q[0], b = q[1];
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  } else {
    static_assert(kType == DType::kBF16);
    const uint4 raw = *reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(p) + i);
    const uint16_t* h = reinterpret_cast<const uint16_t*>(&raw);
#pragma unroll
    for (int k = 0; k < kGroup; ++k) v[k] = BF16ToFloat(h[k]);
  }
}

template <DType kType>
__device__ __forceinline__ void Store8(void* p, int64_t i, const float* v) {
  if constexpr (kType == DType::kF32) {
    float4* q = reinterpret_cast<float4*>(static_cast<float*>(p) + i);
    q[0] = make_float4(v[0], v[1], v[2], v[3]);
    q[1] = make_float4(v[4], v[5], v[6], v[7]);
  } else {
    static_assert(kType == DType::kBF16);
    uint4 raw;
    uint16_t* h = reinterpret_cast<uint16_t*>(&raw);
#pragma unroll
    for (int k = 0; k < kGroup; ++k) h[k] = FloatToBF16(v[k]);
    *reinterpret_cast<uint4*>(static_cast<uint16_t*>(p) + i) = raw;
  }
}

// Eight consecutive elements of kType as they are stored, kept in registers: 16 bytes for bf16
// (so a 4096-wide bf16 row costs a lane 64 registers, not 128), 32 for fp32.
template <DType kType>
struct Pack8 {
  float v[kGroup];
  __device__ __forceinline__ void Load(const void* p, int64_t i) { Load8<kType>(p, i, v); }
  __device__ __forceinline__ void Store(void* p, int64_t i) const { Store8<kType>(p, i, v); }
  __device__ __forceinline__ float Get(int k) const { return v[k]; }
  __device__ __forceinline__ void Set(int k, float x) { v[k] = x; }
};

template <>
struct Pack8<DType::kBF16> {
  uint4 raw;
  __device__ __forceinline__ void Load(const void* p, int64_t i) {
    raw = *reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(p) + i);
  }
  __device__ __forceinline__ void Store(void* p, int64_t i) const {
    *reinterpret_cast<uint4*>(static_cast<uint16_t*>(p) + i) = raw;
  }
  __device__ __forceinline__ float Get(int k) const {
    return BF16ToFloat(reinterpret_cast<const uint16_t*>(&raw)[k]);
  }
  __device__ __forceinline__ void Set(int k, float x) {
    reinterpret_cast<uint16_t*>(&raw)[k] = FloatToBF16(x);
  }
};

// act and weight bf16; cols % 8 == 0 and cols <= 32 * kGroups * 8.
template <DType kRes, int kGroups>
__global__ void RmsNormWarpKernel(const RmsNormArgs a) {
  const int lane = threadIdx.x % cuda::kWarpSize;
  const int64_t r = int64_t{blockIdx.x} * kWarpRowsPerBlock + threadIdx.x / cuda::kWarpSize;
  if (r >= a.rows) return;  // the whole warp
  const int64_t base = r * a.cols;
  Pack8<kRes> x[kGroups];
  float sum_sq = 0.f;
#pragma unroll
  for (int g = 0; g < kGroups; ++g) {
    const int c = (g * cuda::kWarpSize + lane) * kGroup;
    if (c < a.cols) {
      x[g].Load(a.residual, base + c);
      if (a.input != nullptr) {
        Pack8<DType::kBF16> in;
        in.Load(a.input, base + c);
#pragma unroll
        for (int k = 0; k < kGroup; ++k) x[g].Set(k, x[g].Get(k) + in.Get(k));  // rounds to kRes
        x[g].Store(a.residual, base + c);
      }
#pragma unroll
      for (int k = 0; k < kGroup; ++k) sum_sq += x[g].Get(k) * x[g].Get(k);
    }
  }
  const float total = cuda::WarpSum(sum_sq);
  const float inv = 1.f / sqrtf(total / static_cast<float>(a.cols) + a.eps);
#pragma unroll
  for (int g = 0; g < kGroups; ++g) {
    const int c = (g * cuda::kWarpSize + lane) * kGroup;
    if (c < a.cols) {
      Pack8<DType::kBF16> w, out;
      w.Load(a.weight, c);
#pragma unroll
      for (int k = 0; k < kGroup; ++k) out.Set(k, w.Get(k) * (x[g].Get(k) * inv));
      out.Store(a.out, base + c);
    }
  }
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Groups of 8 per lane the warp variant needs for `a` (1, 2, 4, 8 or 16), or 0 when it does not
// apply.
int WarpGroups(const RmsNormArgs& a) {
  const bool types = a.act_dtype == DType::kBF16 && a.weight_dtype == DType::kBF16 &&
                     (a.residual_dtype == DType::kBF16 || a.residual_dtype == DType::kF32);
  const bool aligned = Aligned16(a.residual) && Aligned16(a.out) && Aligned16(a.weight) &&
                       (a.input == nullptr || Aligned16(a.input));
  if (!types || !aligned || a.cols % kGroup != 0) return 0;
  const int64_t per_lane = cuda::CeilDiv<int64_t>(a.cols / kGroup, cuda::kWarpSize);
  for (int groups : {1, 2, 4, 8, 16}) {
    if (per_lane <= groups) return groups;
  }
  return 0;
}

template <DType kRes>
cudaError_t LaunchWarp(const RmsNormArgs& a, int groups, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>(cuda::CeilDiv<int64_t>(a.rows, kWarpRowsPerBlock));
  const int threads = kWarpRowsPerBlock * cuda::kWarpSize;
  switch (groups) {
    case 1:
      RmsNormWarpKernel<kRes, 1><<<blocks, threads, 0, stream>>>(a);
      break;
    case 2:
      RmsNormWarpKernel<kRes, 2><<<blocks, threads, 0, stream>>>(a);
      break;
    case 4:
      RmsNormWarpKernel<kRes, 4><<<blocks, threads, 0, stream>>>(a);
      break;
    case 8:
      RmsNormWarpKernel<kRes, 8><<<blocks, threads, 0, stream>>>(a);
      break;
    default:
      RmsNormWarpKernel<kRes, 16><<<blocks, threads, 0, stream>>>(a);
      break;
  }
  return cudaGetLastError();
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
  // A warp per row pays off with many rows; a few rows (decode) want a block each.
  if (const int groups = WarpGroups(a); groups > 0 && a.rows >= kWarpMinRows) {
    return a.residual_dtype == DType::kBF16 ? LaunchWarp<DType::kBF16>(a, groups, stream)
                                            : LaunchWarp<DType::kF32>(a, groups, stream);
  }
  // About 8 columns per thread, between one warp and 1024 threads.
  const int threads = static_cast<int>(std::clamp<int64_t>(
      cuda::CeilDiv<int64_t>(cuda::CeilDiv<int64_t>(a.cols, 8), 32) * 32, 32, 1024));
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(a.rows, 1 << 20));
  SIEVE_DISPATCH_DTYPE(a.act_dtype, kAct,
                       { return LaunchWithResidual<kAct>(a, blocks, threads, stream); })
}

}  // namespace sieve::kernels
