// LaunchSiluMul: out[r, i] = silu(gate_up[r, i]) * gate_up[r, inter + i]
// (contract: kernels/silu_mul.h; CPU reference: kernels/ref/silu_mul_ref.cc).
//
// A pure streaming kernel: 3 x 2 bytes of traffic per bf16 element, so its speed is how close it
// gets to HBM bandwidth. Two variants; the launcher picks one from the arguments:
// Either layout of kernels/silu_mul.h (block 0 is one block of `inter`): one 32-bit division per
// element or 8-element group finds its block.
//   1. Vector (16-bit dtypes, block % 8 == 0, 16-byte aligned pointers): each thread moves 8
//      elements of the gate, 8 of the up half and 8 of the output with one 16-byte load / store
//      each. blockIdx.y strides over rows, x-blocks over the row's 8-element groups, so no 64-bit
//      division per element.
//   2. Scalar (fp32, odd sizes, unaligned views): one element per thread, same grid shape.
// Both compute silu(g) = g / (1 + expf(-g)) with the precise expf and an IEEE division, in fp32,
// as the reference writes it, and round once to the output dtype.
//
// Tested by tests/unit/kernels/silu_mul_test.cc (both variants, unaligned views included).
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda_util.cuh"
#include "kernels/silu_mul.h"

namespace sieve::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int kVec = 8;  // 16-bit elements per 16-byte access

__device__ __forceinline__ float SiluTimes(float g, float u) { return g / (1.f + expf(-g)) * u; }

// SwigluGateIndex (kernels/silu_mul.h) with a 32-bit division: i < 2^31.
__device__ __forceinline__ int64_t GateOffset(int64_t i, int64_t block) {
  const uint32_t b = static_cast<uint32_t>(i) / static_cast<uint32_t>(block);  // i < 2^31
  return 2 * block * b + (i - int64_t{b} * block);
}

template <DType kType>
__global__ void SiluMulScalarKernel(const SiluMulArgs a, int64_t block) {
  for (int64_t r = blockIdx.y; r < a.rows; r += gridDim.y) {
    const int64_t in_row = r * 2 * a.inter;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < a.inter;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      const int64_t gate = in_row + GateOffset(i, block);
      const float g = cuda::LoadElem<kType>(a.gate_up, gate);
      const float u = cuda::LoadElem<kType>(a.gate_up, gate + block);
      cuda::StoreElem<kType>(a.out, r * a.inter + i, SiluTimes(g, u));
    }
  }
}

// kType is kBF16 or kF16. `groups` = inter / 8, `block_groups` = block / 8.
template <DType kType>
__global__ void SiluMulVectorKernel(const SiluMulArgs a, int64_t groups, int64_t block_groups) {
  const uint4* gate_up = static_cast<const uint4*>(a.gate_up);
  uint4* out = static_cast<uint4*>(a.out);
  for (int64_t r = blockIdx.y; r < a.rows; r += gridDim.y) {
    const uint4* in_row = gate_up + r * 2 * groups;
    uint4* out_row = out + r * groups;
    for (int64_t v = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; v < groups;
         v += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      const uint4* gate = in_row + GateOffset(v, block_groups);
      const uint4 g4 = __ldcs(gate);  // read once: do not keep in L2
      const uint4 u4 = __ldcs(gate + block_groups);
      const uint16_t* g = reinterpret_cast<const uint16_t*>(&g4);
      const uint16_t* u = reinterpret_cast<const uint16_t*>(&u4);
      uint4 o4;
      uint16_t* o = reinterpret_cast<uint16_t*>(&o4);
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        float gf, uf;
        if constexpr (kType == DType::kBF16) {
          gf = BF16ToFloat(g[k]);
          uf = BF16ToFloat(u[k]);
        } else {
          gf = HalfToFloat(g[k]);
          uf = HalfToFloat(u[k]);
        }
        const float y = SiluTimes(gf, uf);
        o[k] = kType == DType::kBF16 ? FloatToBF16(y) : FloatToHalf(y);
      }
      out_row[v] = o4;
    }
  }
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

cudaError_t LaunchSiluMul(const SiluMulArgs& a, cudaStream_t stream) {
  if (a.rows < 0 || a.inter < 0) return cudaErrorInvalidValue;
  if (a.rows == 0 || a.inter == 0) return cudaSuccess;
  if (!a.gate_up || !a.out || a.inter >= (int64_t{1} << 31) || a.block < 0 ||
      (a.block > 0 && a.inter % a.block != 0)) {
    return cudaErrorInvalidValue;
  }
  const int64_t block = a.block > 0 ? a.block : a.inter;
  const unsigned row_blocks = static_cast<unsigned>(std::min<int64_t>(a.rows, 65535));
  const bool vector = (a.dtype == DType::kBF16 || a.dtype == DType::kF16) && block % kVec == 0 &&
                      Aligned16(a.gate_up) && Aligned16(a.out);
  if (vector) {
    const int64_t groups = a.inter / kVec;
    const dim3 grid(
        static_cast<unsigned>(std::min<int64_t>(cuda::CeilDiv<int64_t>(groups, kThreads), 1024)),
        row_blocks);
    if (a.dtype == DType::kBF16) {
      SiluMulVectorKernel<DType::kBF16><<<grid, kThreads, 0, stream>>>(a, groups, block / kVec);
    } else {
      SiluMulVectorKernel<DType::kF16><<<grid, kThreads, 0, stream>>>(a, groups, block / kVec);
    }
    return cudaGetLastError();
  }
  const dim3 grid(
      static_cast<unsigned>(std::min<int64_t>(cuda::CeilDiv<int64_t>(a.inter, kThreads), 1024)),
      row_blocks);
  SIEVE_DISPATCH_DTYPE(a.dtype, kType, {
    SiluMulScalarKernel<kType><<<grid, kThreads, 0, stream>>>(a, block);
    return cudaGetLastError();
  })
}

}  // namespace sieve::kernels
