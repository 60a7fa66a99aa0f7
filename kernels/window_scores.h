// Attention-mass scores used by every eviction rule (SnapKV compression, calibration, SCOPE):
//
//   scores[b, g, j] = head_scale * sum over query heads h of KV group g
//                                  sum over scoring rows r of sequence b
//                                  softmax_r(q_r · K * scale)[key_begin[b] + j]
//
// for j in [0, key_count[b]). The softmax of each row runs over the keys it can see under the same
// bottom-right causal rule as AttentionArgs (the last row sees every key); the row's log-sum-exp
// is computed here, in fp32. The scoring rows of sequence b are its last min(num_rows, nq_b)
// query rows. head_scale is 1 to sum over the group (compression) or 1/group to average it
// (calibration, SCOPE).
//
// CPU reference: kernels/ref/window_scores_ref.cc. CUDA: kernels/window_scores.cu (pass 1: LSE
// per row and head; pass 2: one block per (sequence, KV head, key tile), rows and heads summed in
// a fixed order, so results are deterministic). Test: tests/unit/kernels/window_scores_test.cc.
#pragma once

#include <cstdint>

#include "kernels/cuda_decl.h"
#include "kernels/dtype.h"

namespace sieve::kernels {

struct WindowScoresArgs {
  const void* q = nullptr;              // [total_q, num_q_heads, head_dim], row stride q_stride
  const void* const* k_seqs = nullptr;  // [num_seqs] as in AttentionArgs
  int64_t kv_token_stride = 0;
  int64_t kv_head_stride = 0;
  const int32_t* q_starts = nullptr;   // [num_seqs + 1]
  const int32_t* kv_lens = nullptr;    // [num_seqs]
  const int32_t* key_begin = nullptr;  // [num_seqs] first scored key
  const int32_t* key_count = nullptr;  // [num_seqs] scored keys
  float* scores = nullptr;             // [num_seqs, num_kv_heads, scores_stride], fp32
  int64_t scores_stride = 0;           // >= max key_count
  int num_seqs = 0;
  int num_rows = 1;  // scoring rows per sequence (the last ones)
  int max_q_len = 0;
  int max_kv_len = 0;
  int max_key_count = 0;
  int num_q_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int64_t q_stride = 0;
  float scale = 1.f;
  float head_scale = 1.f;
  DType dtype = DType::kF32;
};

void WindowScoresRef(const WindowScoresArgs& args);
#if SIEVE_WITH_CUDA
size_t WindowScoresWorkspaceBytes(const WindowScoresArgs& args);
cudaError_t LaunchWindowScores(const WindowScoresArgs& args, void* workspace,
                               size_t workspace_bytes, cudaStream_t stream);
#endif

}  // namespace sieve::kernels
