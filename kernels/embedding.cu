// LaunchEmbedding: out[t, :] = table[ids[t], :], a zero row for an id outside [0, vocab)
// (contract: kernels/embedding.h; CPU reference: kernels/ref/embedding_ref.cc).
//
// One variant: a block per token (grid-stride over tokens), threads striding over the hidden
// dimension, converting table_dtype -> out_dtype per element (the CUDA backend reads a bf16
// table into the fp32 residual stream). The op runs once per forward and moves num_tokens *
// hidden elements, so nothing is vectorized.
//
// Tested by tests/unit/kernels/embedding_test.cc.
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda_util.cuh"
#include "kernels/embedding.h"

namespace sieve::kernels {
namespace {

template <DType kIn, DType kOut>
__global__ void EmbeddingKernel(const EmbeddingArgs a) {
  for (int64_t t = blockIdx.x; t < a.num_tokens; t += gridDim.x) {
    const int64_t id = a.ids[t];
    const bool valid = id >= 0 && id < a.vocab;
    for (int64_t c = threadIdx.x; c < a.hidden; c += blockDim.x) {
      const float v = valid ? cuda::LoadElem<kIn>(a.table, id * a.hidden + c) : 0.f;
      cuda::StoreElem<kOut>(a.out, t * a.hidden + c, v);
    }
  }
}

template <DType kIn>
cudaError_t LaunchTyped(const EmbeddingArgs& a, cudaStream_t stream) {
  constexpr int kThreads = 256;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(a.num_tokens, 1 << 20));
  SIEVE_DISPATCH_DTYPE(a.out_dtype, kOut, {
    EmbeddingKernel<kIn, kOut><<<blocks, kThreads, 0, stream>>>(a);
    return cudaGetLastError();
  })
}

}  // namespace

cudaError_t LaunchEmbedding(const EmbeddingArgs& a, cudaStream_t stream) {
  if (a.num_tokens < 0 || a.hidden < 0) return cudaErrorInvalidValue;
  if (a.num_tokens == 0 || a.hidden == 0) return cudaSuccess;
  if (!a.ids || !a.table || !a.out) return cudaErrorInvalidValue;
  SIEVE_DISPATCH_DTYPE(a.table_dtype, kIn, { return LaunchTyped<kIn>(a, stream); })
}

}  // namespace sieve::kernels
