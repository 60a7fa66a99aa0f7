// CPU references for kernels/topk.h.
#include <algorithm>
#include <numeric>
#include <vector>

#include "kernels/topk.h"

namespace sieve::kernels {

void MaxPool1dRef(const MaxPool1dArgs& a) {
  const int half = a.kernel / 2;
  for (int64_t r = 0; r < a.rows; ++r) {
    const int len = a.lengths[r];
    const float* in = a.in + r * a.stride;
    float* out = a.out + r * a.stride;
    for (int t = 0; t < len; ++t) {
      const int lo = std::max(0, t - half);
      const int hi = std::min(len, t + half + 1);
      out[t] = *std::max_element(in + lo, in + hi);
    }
  }
}

void TopkSelectRef(const TopkSelectArgs& a) {
  std::vector<int32_t> order;
  for (int64_t r = 0; r < a.rows; ++r) {
    const int len = a.lengths[r];
    const int k = std::min(len, a.ks ? a.ks[r] : a.k);
    const float* in = a.in + r * a.in_stride;
    order.resize(len);
    std::iota(order.begin(), order.end(), 0);
    // Larger score first; equal scores: lower index first.
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [in](int32_t x, int32_t y) {
      return in[x] > in[y] || (in[x] == in[y] && x < y);
    });
    std::sort(order.begin(), order.begin() + k);
    std::copy(order.begin(), order.begin() + k, a.out + r * a.out_stride);
  }
}

}  // namespace sieve::kernels
