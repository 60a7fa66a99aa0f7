// Causal attention of packed query rows against per-sequence keys and values, with GQA.
//
// One op serves every attention in the pipeline:
//   - local prefill: the query rows are a packed batch of chunks and each chunk's keys are its
//     own rows (kv_len == query rows): plain causal varlen attention;
//   - query prefill: the query rows attend to the prefill cache Phi_p plus themselves;
//   - decode: one row per sequence attends to its whole cache.
// Visibility is bottom-right aligned (as FlashAttention's causal mode with seqlen_q != seqlen_k):
// row i of a sequence with nq query rows and kv_len keys sees keys [lo, hi) with
//   hi = kv_len - (nq - 1 - i),  lo = window > 0 ? max(0, hi - window) : 0.
// Scores are q·k * scale in fp32 with an fp32 online softmax; no L×L matrix is formed.
// Query head h reads KV head h / (num_q_heads / num_kv_heads).
//
// CPU reference: kernels/ref/attention_ref.cc (one pass per row, fp32, threaded over heads and
// rows). CUDA: kernels/attention.cu (tiled flash attention for prefill, on Hopper wgmma in
// kernels/attention_sm90.cu; split-K flash decoding when query rows per sequence are few).
// Test: tests/unit/kernels/attention_test.cc.
#pragma once

#include <cstdint>

#include "kernels/cuda_decl.h"
#include "kernels/dtype.h"

namespace sieve::kernels {

struct AttentionArgs {
  const void* q = nullptr;  // [total_q, num_q_heads, head_dim], row stride q_stride
  void* out = nullptr;      // [total_q, num_q_heads, head_dim], row stride out_stride
  // Per sequence b, its keys/values: element (token t, kv head g, dim e) of sequence b is at
  //   k_seqs[b][t * kv_token_stride + g * kv_head_stride + e]  (same for v_seqs).
  const void* const* k_seqs = nullptr;  // [num_seqs] pointers
  const void* const* v_seqs = nullptr;  // [num_seqs] pointers
  int64_t kv_token_stride = 0;
  int64_t kv_head_stride = 0;
  const int32_t* q_starts = nullptr;  // [num_seqs + 1] first packed query row of each sequence
  const int32_t* kv_lens = nullptr;   // [num_seqs] number of keys of each sequence
  int num_seqs = 0;
  int64_t total_q = 0;
  int max_q_len = 0;   // max over sequences of query rows (grid sizing)
  int max_kv_len = 0;  // max over sequences of kv_lens (grid sizing)
  int num_q_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int64_t q_stride = 0;
  int64_t out_stride = 0;
  float scale = 1.f;          // usually 1/sqrt(head_dim)
  int window = 0;             // sliding window (Mistral); 0 = unlimited
  DType dtype = DType::kF32;  // of q, k, v and out
  // Split-K decode only (CUDA): keys per block, rounded up to a tile of 64. 0: chosen from the
  // shape. For benchmarks that compare partitions; the result does not depend on it beyond
  // floating-point summation order.
  int decode_split_keys = 0;
};

void AttentionRef(const AttentionArgs& args);

// The CUDA kernels behind LaunchAttention (kernels/attention.cu's header says when each runs).
enum class AttentionVariant {
  kGeneric,      // any dtype / head_dim <= 256, CUDA cores
  kPrefill,      // bf16, head_dim 64/128, mma.sync (sm_80+)
  kPrefillSm90,  // bf16, head_dim 128, wgmma (sm_90a only; kernels/attention_sm90.cu)
  kDecode,       // bf16, head_dim 64/128, split-K over the keys + merge
};

#if SIEVE_WITH_CUDA
const char* AttentionVariantName(AttentionVariant variant);
// Workspace for split-K decode partials; size it once per maximum batch shape.
size_t AttentionWorkspaceBytes(const AttentionArgs& args);
bool AttentionCanImplement(const AttentionArgs& args);
cudaError_t LaunchAttention(const AttentionArgs& args, void* workspace, size_t workspace_bytes,
                            cudaStream_t stream);
// The variant LaunchAttention runs for `args` on the current device. Host only: reads the
// arguments and a per-device capability query cached after its first call (no device work).
AttentionVariant AttentionChooseVariant(const AttentionArgs& args);
// LaunchAttention with the variant forced (tests and benchmarks compare variants):
// cudaErrorNotSupported when `variant` cannot run `args` on this device. kDecode needs the
// workspace AttentionWorkspaceBytes reports for a decode-shaped `args`.
cudaError_t LaunchAttentionVariant(const AttentionArgs& args, AttentionVariant variant,
                                   void* workspace, size_t workspace_bytes, cudaStream_t stream);
#endif

}  // namespace sieve::kernels
