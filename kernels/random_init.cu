// LaunchRandomInit: deterministic random weights on the GPU (kernels/random_init.h has the
// contract and the generator; kernels/ref/random_init_ref.cc is the CPU reference).
//
// One variant: a grid-stride loop, one element per thread per step. The work is a hash plus two
// short double-precision polynomials per element, far from any bandwidth limit at init time, so
// nothing is vectorized. The generator is the header's inline one, so the bytes equal
// RandomInitRef's; double precision (not float) is used there because only double keeps the
// polynomial results identical after the single rounding to float (see the header).
//
// Tested by tests/unit/worker/random_init_test.cc (GpuMatchesReference; skips without a GPU).
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/random_init.h"

namespace sieve::kernels {

static __global__ void RandomInitKernel(RandomInitArgs args) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < args.n;
       i += stride) {
    StoreFromFloat(args.out, args.dtype, static_cast<size_t>(i),
                   RandomInitValue(args, args.offset + i));
  }
}

cudaError_t LaunchRandomInit(const RandomInitArgs& args, cudaStream_t stream) {
  if (args.n < 0 || args.offset < 0 || (args.n > 0 && args.out == nullptr)) {
    return cudaErrorInvalidValue;
  }
  if (args.n == 0) return cudaSuccess;
  constexpr int kThreads = 256;
  // Enough blocks to fill an H100 several times over; the grid-stride loop covers the rest.
  constexpr int64_t kMaxBlocks = 132 * 16;
  const int64_t blocks = std::min<int64_t>((args.n + kThreads - 1) / kThreads, kMaxBlocks);
  RandomInitKernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace sieve::kernels
