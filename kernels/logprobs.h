// Log-softmax over the vocabulary for selected rows, and the log-probability of given targets:
//   lse[r] = log sum_v exp(logits[r, v]),  target_logprobs[r] = logits[r, targets[r]] - lse[r].
// This is the chunk score's building block (mean NLL of the query given the chunk) and the
// forced-continuation scorer. The CPU reference sums in double; CUDA in fp32 with a max shift.
//
// CPU reference: kernels/ref/logprobs_ref.cc. CUDA: kernels/logprobs.cu (one block per row).
// Test: tests/unit/kernels/logprobs_test.cc.
#pragma once

#include <cstdint>

#include "kernels/cuda_decl.h"

namespace sieve::kernels {

struct LogSoftmaxGatherArgs {
  const float* logits = nullptr;     // [rows, stride], fp32
  const int32_t* targets = nullptr;  // [rows] or nullptr
  float* target_logprobs = nullptr;  // [rows] (needs targets)
  float* lse = nullptr;              // [rows] or nullptr
  int64_t rows = 0;
  int64_t vocab = 0;
  int64_t stride = 0;
};

void LogSoftmaxGatherRef(const LogSoftmaxGatherArgs& args);
#if SIEVE_WITH_CUDA
cudaError_t LaunchLogSoftmaxGather(const LogSoftmaxGatherArgs& args, cudaStream_t stream);
#endif

}  // namespace sieve::kernels
