// Embedding lookup: out[t, :] = table[ids[t], :].
//
// CPU reference: kernels/ref/embedding_ref.cc. CUDA: kernels/embedding.cu (one block per token,
// 16-byte vector copies). Test: tests/unit/kernels/embedding_test.cc.
#pragma once

#include <cstdint>

#include "kernels/cuda_decl.h"
#include "kernels/dtype.h"

namespace sieve::kernels {

struct EmbeddingArgs {
  const int32_t* ids = nullptr;  // [num_tokens]; an id outside [0, vocab) gives a zero row
  const void* table = nullptr;   // [vocab, hidden], table_dtype
  void* out = nullptr;           // [num_tokens, hidden], out_dtype
  int64_t num_tokens = 0;
  int64_t hidden = 0;
  int64_t vocab = 0;
  DType table_dtype = DType::kF32;
  DType out_dtype = DType::kF32;
};

void EmbeddingRef(const EmbeddingArgs& args);
#if SIEVE_WITH_CUDA
cudaError_t LaunchEmbedding(const EmbeddingArgs& args, cudaStream_t stream);
#endif

}  // namespace sieve::kernels
