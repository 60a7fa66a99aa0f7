// CPU reference for kernels/kv_gather.h.
#include <cstring>

#include "kernels/kv_gather.h"

namespace sieve::kernels {

void KvGatherRef(const KvGatherArgs& a) {
  const size_t elem = DTypeSize(a.dtype);
  const size_t row_bytes = elem * a.head_dim;
  for (int g = 0; g < a.num_heads; ++g) {
    const int32_t* idx = a.indices + g * a.index_head_stride;
    for (int64_t j = 0; j < a.count; ++j) {
      const int64_t src_off = idx[j] * a.src_token_stride + g * a.src_head_stride;
      const int64_t dst_off = (a.dst_begin + j) * a.dst_token_stride + g * a.dst_head_stride;
      std::memcpy(static_cast<char*>(a.dst_k) + dst_off * elem,
                  static_cast<const char*>(a.src_k) + src_off * elem, row_bytes);
      std::memcpy(static_cast<char*>(a.dst_v) + dst_off * elem,
                  static_cast<const char*>(a.src_v) + src_off * elem, row_bytes);
    }
  }
}

}  // namespace sieve::kernels
