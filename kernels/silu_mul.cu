// LaunchSiluMul: out[r, i] = silu(gate_up[r, i]) * gate_up[r, inter + i]
// (contract: kernels/silu_mul.h; CPU reference: kernels/ref/silu_mul_ref.cc).
//
// One variant: element-wise, blockIdx.y strides over rows and x-blocks over the intermediate
// dimension (no 64-bit division per element). silu(g) = g / (1 + expf(-g)) with the precise
// expf and an IEEE division, as the reference writes it.
//
// Tested by tests/unit/kernels/silu_mul_test.cc.
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda_util.cuh"
#include "kernels/silu_mul.h"

namespace sieve::kernels {
namespace {

template <DType kType>
__global__ void SiluMulKernel(const SiluMulArgs a) {
  for (int64_t r = blockIdx.y; r < a.rows; r += gridDim.y) {
    const int64_t in_row = r * 2 * a.inter;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < a.inter;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      const float g = cuda::LoadElem<kType>(a.gate_up, in_row + i);
      const float u = cuda::LoadElem<kType>(a.gate_up, in_row + a.inter + i);
      const float silu = g / (1.f + expf(-g));
      cuda::StoreElem<kType>(a.out, r * a.inter + i, silu * u);
    }
  }
}

}  // namespace

cudaError_t LaunchSiluMul(const SiluMulArgs& a, cudaStream_t stream) {
  if (a.rows < 0 || a.inter < 0) return cudaErrorInvalidValue;
  if (a.rows == 0 || a.inter == 0) return cudaSuccess;
  if (!a.gate_up || !a.out) return cudaErrorInvalidValue;
  constexpr int kThreads = 256;
  const dim3 grid(
      static_cast<unsigned>(std::min<int64_t>(cuda::CeilDiv<int64_t>(a.inter, kThreads), 1024)),
      static_cast<unsigned>(std::min<int64_t>(a.rows, 65535)));
  SIEVE_DISPATCH_DTYPE(a.dtype, kType, {
    SiluMulKernel<kType><<<grid, kThreads, 0, stream>>>(a);
    return cudaGetLastError();
  })
}

}  // namespace sieve::kernels
