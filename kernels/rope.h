// Rotary position embedding, applied in place to Q and K (HF "rotate_half" layout):
//   for i < d/2, angle = fp32(inv_freq[i] * fp32(position)):
//     x'[i]       = x[i] * cos(angle) - x[i + d/2] * sin(angle)
//     x'[i + d/2] = x[i + d/2] * cos(angle) + x[i] * sin(angle)
// cos/sin are scaled by attention_scaling (1 for default/linear/llama3 RoPE). The angle is the
// fp32 product PyTorch forms, so keys at far positions match Hugging Face bit for bit in the
// angle; Llama-3 frequency scaling is folded into inv_freq by the caller (worker/rope_table.h).
//
// CPU reference: kernels/ref/rope_ref.cc (built with -ffp-contract=off). CUDA: kernels/rope.cu.
// Test: tests/unit/kernels/rope_test.cc.
#pragma once

#include <cstdint>

#include "kernels/cuda_decl.h"
#include "kernels/dtype.h"

namespace sieve::kernels {

struct RopeArgs {
  void* q = nullptr;                   // [num_tokens, num_q_heads, head_dim], row stride q_stride
  void* k = nullptr;                   // [num_tokens, num_kv_heads, head_dim], row stride k_stride
  const int32_t* positions = nullptr;  // [num_tokens]
  const float* inv_freq = nullptr;     // [head_dim / 2]
  int64_t num_tokens = 0;
  int num_q_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int64_t q_stride = 0;  // elements between consecutive tokens' q rows
  int64_t k_stride = 0;  // elements between consecutive tokens' k rows
  float attention_scaling = 1.f;
  DType dtype = DType::kF32;
};

void RopeRef(const RopeArgs& args);
#if SIEVE_WITH_CUDA
cudaError_t LaunchRope(const RopeArgs& args, cudaStream_t stream);
#endif

}  // namespace sieve::kernels
