// LaunchKvGather: copies selected token entries of K and V per KV head
// (contract: kernels/kv_gather.h; CPU reference: kernels/ref/kv_gather_ref.cc).
//
// One kernel, a warp per (destination slot j, head g), in three widths chosen on the host:
//   16-byte vectors when every pointer, stride and the row size are 16-byte aligned (the cache
//   layouts of the pipeline: head_dim 128 bf16 rows are 256 bytes), else 4-byte words when
//   4-byte aligned, else single elements. A negative source index is skipped (the reference would
//   read out of bounds; on the GPU that would fault the context).
//
// Tested by tests/unit/kernels/kv_gather_test.cc.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cuda_util.cuh"
#include "kernels/kv_gather.h"

namespace sieve::kernels {
namespace {

constexpr int kWarpsPerBlock = 8;

// Offsets and the row size are in units of Word.
template <typename Word>
__global__ void KvGatherKernel(const KvGatherArgs a, int64_t row_words, int64_t src_token,
                               int64_t src_head, int64_t dst_token, int64_t dst_head) {
  const int lane = threadIdx.x % cuda::kWarpSize;
  const int64_t total = a.count * a.num_heads;
  for (int64_t w = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32; w < total;
       w += static_cast<int64_t>(gridDim.x) * kWarpsPerBlock) {
    const int64_t g = w / a.count;
    const int64_t j = w - g * a.count;
    const int64_t src_row = a.indices[g * a.index_head_stride + j];
    if (src_row < 0) continue;
    const int64_t src_off = src_row * src_token + g * src_head;
    const int64_t dst_off = (a.dst_begin + j) * dst_token + g * dst_head;
    const Word* sk = static_cast<const Word*>(a.src_k) + src_off;
    const Word* sv = static_cast<const Word*>(a.src_v) + src_off;
    Word* dk = static_cast<Word*>(a.dst_k) + dst_off;
    Word* dv = static_cast<Word*>(a.dst_v) + dst_off;
    for (int64_t e = lane; e < row_words; e += cuda::kWarpSize) {
      dk[e] = sk[e];
      dv[e] = sv[e];
    }
  }
}

bool Aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

template <typename Word>
cudaError_t LaunchWords(const KvGatherArgs& a, cudaStream_t stream) {
  const int64_t elem = static_cast<int64_t>(DTypeSize(a.dtype));
  const int64_t per = static_cast<int64_t>(sizeof(Word)) / elem;  // elements per word
  const int64_t total = a.count * a.num_heads;
  const unsigned blocks = static_cast<unsigned>(
      std::min<int64_t>(cuda::CeilDiv<int64_t>(total, kWarpsPerBlock), int64_t{1} << 20));
  KvGatherKernel<Word><<<blocks, kWarpsPerBlock * cuda::kWarpSize, 0, stream>>>(
      a, a.head_dim / per, a.src_token_stride / per, a.src_head_stride / per,
      a.dst_token_stride / per, a.dst_head_stride / per);
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchKvGather(const KvGatherArgs& a, cudaStream_t stream) {
  if (a.count < 0 || a.num_heads < 0 || a.head_dim < 0) return cudaErrorInvalidValue;
  if (a.count == 0 || a.num_heads == 0 || a.head_dim == 0) return cudaSuccess;
  if (!a.src_k || !a.src_v || !a.dst_k || !a.dst_v || !a.indices) return cudaErrorInvalidValue;
  const size_t elem = DTypeSize(a.dtype);
  // Can every access be made in words of `bytes`?
  auto fits = [&](size_t bytes) {
    if (bytes < elem || bytes % elem != 0) return false;
    const int64_t per = static_cast<int64_t>(bytes / elem);
    return Aligned(a.src_k, bytes) && Aligned(a.src_v, bytes) && Aligned(a.dst_k, bytes) &&
           Aligned(a.dst_v, bytes) && a.head_dim % per == 0 && a.src_token_stride % per == 0 &&
           a.src_head_stride % per == 0 && a.dst_token_stride % per == 0 &&
           a.dst_head_stride % per == 0;
  };
  if (fits(16)) return LaunchWords<uint4>(a, stream);
  if (fits(4)) return LaunchWords<uint32_t>(a, stream);
  if (elem == 2) return LaunchWords<uint16_t>(a, stream);
  return LaunchWords<uint32_t>(a, stream);  // fp32 is always 4-byte aligned
}

}  // namespace sieve::kernels
