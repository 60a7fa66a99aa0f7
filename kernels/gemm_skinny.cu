// LaunchSkinnyGemm (contract: kernels/gemm_skinny.h; CPU reference: GemmRef).
//
// One warp owns kCols consecutive output columns (rows of w) for all m rows of x. Its 32 lanes
// stride along k in 16-byte groups of 8 bf16: each lane loads kCols weight groups (streaming
// loads: the weights are read once per step and must not evict the activations from L2) and,
// per row of x, one x group (cached loads: every warp re-reads the same few KiB of x), and keeps
// m x kCols fp32 partial dot products. kUnroll groups per lane are loaded before any is used, so
// each lane has kUnroll * kCols 16-byte weight loads in flight: what it takes to cover HBM
// latency with the few warps a decode-sized grid gives each SM. The partial sums are combined by
// a butterfly over the warp (a fixed order: deterministic), and lane 0 writes the outputs with
// alpha and beta in fp32, rounding once to y's dtype.
//
// The number of rows is a template parameter (1..8), so the accumulators live in registers.
//
// Tested by tests/unit/kernels/gemm_skinny_test.cc.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda_util.cuh"
#include "kernels/gemm_skinny.h"

namespace sieve::kernels {
namespace {

constexpr int kWarps = 8;   // per block
constexpr int kCols = 2;    // output columns per warp
constexpr int kUnroll = 4;  // 16-byte groups per lane in flight, per column
constexpr int kGroup = 8;   // bf16 per 16 bytes

__device__ __forceinline__ float Lo(uint32_t v) { return __uint_as_float(v << 16); }
__device__ __forceinline__ float Hi(uint32_t v) { return __uint_as_float(v & 0xffff0000u); }

// acc += dot(a, b) over 8 bf16 pairs.
__device__ __forceinline__ float Dot8(const uint4& a, const uint4& b, float acc) {
  acc = fmaf(Lo(a.x), Lo(b.x), acc);
  acc = fmaf(Hi(a.x), Hi(b.x), acc);
  acc = fmaf(Lo(a.y), Lo(b.y), acc);
  acc = fmaf(Hi(a.y), Hi(b.y), acc);
  acc = fmaf(Lo(a.z), Lo(b.z), acc);
  acc = fmaf(Hi(a.z), Hi(b.z), acc);
  acc = fmaf(Lo(a.w), Lo(b.w), acc);
  acc = fmaf(Hi(a.w), Hi(b.w), acc);
  return acc;
}

template <int kRows, DType kY>
__global__ void __launch_bounds__(kWarps * 32) SkinnyGemmKernel(const GemmArgs a) {
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int64_t col0 = (static_cast<int64_t>(blockIdx.x) * kWarps + warp) * kCols;
  if (col0 >= a.n) return;
  const int64_t groups = a.k / kGroup;
  const uint4* w[kCols];
#pragma unroll
  for (int c = 0; c < kCols; ++c) {
    // A column past n re-reads the last one; its result is never written.
    const int64_t col = col0 + c < a.n ? col0 + c : a.n - 1;
    w[c] = static_cast<const uint4*>(a.w) + col * groups;
  }
  const uint4* x = static_cast<const uint4*>(a.x);
  const int64_t x_row_groups = a.ldx / kGroup;

  float acc[kRows][kCols];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
#pragma unroll
    for (int c = 0; c < kCols; ++c) acc[r][c] = 0.f;
  }

  for (int64_t base = lane; base < groups; base += 32 * kUnroll) {
    uint4 wv[kUnroll][kCols];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t g = base + u * 32;
#pragma unroll
      for (int c = 0; c < kCols; ++c)
        wv[u][c] = g < groups ? __ldcs(w[c] + g) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t g = base + u * 32;
      if (g >= groups) break;
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const uint4 xv = __ldg(x + r * x_row_groups + g);
#pragma unroll
        for (int c = 0; c < kCols; ++c) acc[r][c] = Dot8(xv, wv[u][c], acc[r][c]);
      }
    }
  }

#pragma unroll
  for (int r = 0; r < kRows; ++r) {
#pragma unroll
    for (int c = 0; c < kCols; ++c) acc[r][c] = cuda::WarpSum(acc[r][c]);
  }
  if (lane != 0) return;
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      const int64_t col = col0 + c;
      if (col >= a.n) continue;
      const int64_t i = r * a.ldy + col;
      float v = a.alpha * acc[r][c];
      if (a.beta != 0.f) v += a.beta * cuda::LoadElem<kY>(a.y, i);
      cuda::StoreElem<kY>(a.y, i, v);
    }
  }
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <DType kY>
cudaError_t LaunchRows(const GemmArgs& a, cudaStream_t stream) {
  const int64_t cols_per_block = int64_t{kWarps} * kCols;
  const dim3 grid(static_cast<unsigned>((a.n + cols_per_block - 1) / cols_per_block));
  const dim3 block(kWarps * 32);
  switch (a.m) {
#define SIEVE_SKINNY_ROWS(R)                                \
  case R:                                                   \
    SkinnyGemmKernel<R, kY><<<grid, block, 0, stream>>>(a); \
    break;
    SIEVE_SKINNY_ROWS(1)
    SIEVE_SKINNY_ROWS(2)
    SIEVE_SKINNY_ROWS(3)
    SIEVE_SKINNY_ROWS(4)
    SIEVE_SKINNY_ROWS(5)
    SIEVE_SKINNY_ROWS(6)
    SIEVE_SKINNY_ROWS(7)
    SIEVE_SKINNY_ROWS(8)
#undef SIEVE_SKINNY_ROWS
    default:
      return cudaErrorNotSupported;
  }
  return cudaGetLastError();
}

}  // namespace

bool SkinnyGemmSupported(const GemmArgs& a) {
  return a.x_dtype == DType::kBF16 && a.w_dtype == DType::kBF16 &&
         (a.y_dtype == DType::kBF16 || a.y_dtype == DType::kF32) && a.m >= 1 &&
         a.m <= kSkinnyGemmMaxRows && a.n >= 1 && a.k >= kGroup && a.k % kGroup == 0 &&
         a.ldx >= a.k && a.ldx % kGroup == 0 && a.ldy >= a.n && a.x != nullptr && a.w != nullptr &&
         a.y != nullptr && Aligned16(a.x) && Aligned16(a.w) &&
         a.n <= (int64_t{1} << 31) * kWarps * kCols;
}

cudaError_t LaunchSkinnyGemm(const GemmArgs& a, cudaStream_t stream) {
  if (!SkinnyGemmSupported(a)) return cudaErrorNotSupported;
  return a.y_dtype == DType::kBF16 ? LaunchRows<DType::kBF16>(a, stream)
                                   : LaunchRows<DType::kF32>(a, stream);
}

}  // namespace sieve::kernels
