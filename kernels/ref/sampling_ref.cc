// CPU reference for kernels/sampling.h.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernels/sampling.h"

namespace sieve::kernels {

void SampleRef(const SampleArgs& a) {
  std::vector<int32_t> order;
  std::vector<double> probs;
  for (int64_t r = 0; r < a.rows; ++r) {
    const float* row = a.logits + r * a.stride;
    if (a.temperature <= 0.f) {
      a.out_ids[r] = static_cast<int32_t>(std::max_element(row, row + a.vocab) - row);
      continue;
    }
    const double max_v = *std::max_element(row, row + a.vocab);
    probs.resize(a.vocab);
    double total = 0;
    for (int64_t v = 0; v < a.vocab; ++v) {
      probs[v] = std::exp((double(row[v]) - max_v) / a.temperature);
      total += probs[v];
    }
    order.resize(a.vocab);
    std::iota(order.begin(), order.end(), 0);
    int64_t keep = a.top_k > 0 ? std::min<int64_t>(a.top_k, a.vocab) : a.vocab;
    auto by_prob = [&](int32_t x, int32_t y) {
      return probs[x] > probs[y] || (probs[x] == probs[y] && x < y);
    };
    std::partial_sort(order.begin(), order.begin() + keep, order.end(), by_prob);
    if (a.top_p < 1.f) {
      double mass = 0;
      int64_t n = 0;
      while (n < keep) {
        mass += probs[order[n]] / total;
        ++n;
        if (mass >= a.top_p) break;
      }
      keep = std::max<int64_t>(1, n);
    }
    double kept_total = 0;
    for (int64_t i = 0; i < keep; ++i) kept_total += probs[order[i]];
    const double target = double(a.uniforms[r]) * kept_total;
    double cum = 0;
    int32_t pick = order[keep - 1];
    for (int64_t i = 0; i < keep; ++i) {
      cum += probs[order[i]];
      if (cum > target) {
        pick = order[i];
        break;
      }
    }
    a.out_ids[r] = pick;
  }
}

}  // namespace sieve::kernels
