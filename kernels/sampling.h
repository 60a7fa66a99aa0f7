// Next-token choice from logits, one row per sequence.
//
//   temperature <= 0: greedy argmax (ties: the lower id).
//   otherwise: p = softmax(logits / temperature); candidates sorted by p descending (ties: lower
//   id first); keep the first top_k (0 = all); keep the shortest prefix whose mass reaches top_p
//   (at least one); renormalize; return the first candidate whose cumulative mass exceeds
//   uniforms[r] * total (inverse CDF). The caller draws uniforms[r] in [0, 1) from the request's
//   seeded generator, so a seed reproduces a sample on either backend given equal logits.
//
// CPU reference: kernels/ref/sampling_ref.cc. CUDA: kernels/sampling.cu.
// Test: tests/unit/kernels/sampling_test.cc.
#pragma once

#include <cstdint>

#include "kernels/cuda_decl.h"

namespace sieve::kernels {

struct SampleArgs {
  const float* logits = nullptr;    // [rows, stride], fp32
  const float* uniforms = nullptr;  // [rows] in [0, 1); unused when greedy
  int32_t* out_ids = nullptr;       // [rows]
  int64_t rows = 0;
  int64_t vocab = 0;
  int64_t stride = 0;
  float temperature = 0.f;
  int top_k = 0;
  float top_p = 1.f;
};

void SampleRef(const SampleArgs& args);
#if SIEVE_WITH_CUDA
size_t SampleWorkspaceBytes(const SampleArgs& args);
cudaError_t LaunchSample(const SampleArgs& args, void* workspace, size_t workspace_bytes,
                         cudaStream_t stream);
#endif

}  // namespace sieve::kernels
