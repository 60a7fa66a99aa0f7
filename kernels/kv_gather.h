// KV gather / compaction: copies selected token entries of K and V, per KV head.
//
//   dst_k[(dst_begin + j) * dst_token_stride + g * dst_head_stride + e]
//       = src_k[indices[g * index_head_stride + j] * src_token_stride + g * src_head_stride + e]
//   (same for V) for j < count, g < num_heads, e < head_dim.
//
// index_head_stride = 0 uses one index list for every head (whole-token copies: packing a chunk's
// context, assembling the prefill cache); > 0 gives each head its own list (compressed caches,
// calibration, SCOPE). src and dst must not overlap.
//
// CPU reference: kernels/ref/kv_gather_ref.cc. CUDA: kernels/kv_gather.cu (a warp per
// (entry, head), 16-byte copies). Test: tests/unit/kernels/kv_gather_test.cc.
#pragma once

#include <cstdint>

#include "kernels/cuda_decl.h"
#include "kernels/dtype.h"

namespace sieve::kernels {

struct KvGatherArgs {
  const void* src_k = nullptr;
  const void* src_v = nullptr;
  void* dst_k = nullptr;
  void* dst_v = nullptr;
  const int32_t* indices = nullptr;  // [num_heads or 1, count] source token per destination slot
  int64_t index_head_stride = 0;
  int64_t count = 0;
  int64_t dst_begin = 0;
  int num_heads = 0;
  int head_dim = 0;
  int64_t src_token_stride = 0;
  int64_t src_head_stride = 0;
  int64_t dst_token_stride = 0;
  int64_t dst_head_stride = 0;
  DType dtype = DType::kF32;
};

void KvGatherRef(const KvGatherArgs& args);
#if SIEVE_WITH_CUDA
cudaError_t LaunchKvGather(const KvGatherArgs& args, cudaStream_t stream);
#endif

}  // namespace sieve::kernels
