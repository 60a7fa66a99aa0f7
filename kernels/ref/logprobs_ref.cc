// CPU reference for kernels/logprobs.h (double accumulation, as the oracle's float64 log-softmax).
#include <algorithm>
#include <cmath>

#include "kernels/logprobs.h"

namespace sieve::kernels {

void LogSoftmaxGatherRef(const LogSoftmaxGatherArgs& a) {
#pragma omp parallel for if (a.rows > 4)
  for (int64_t r = 0; r < a.rows; ++r) {
    const float* row = a.logits + r * a.stride;
    const double max_v = *std::max_element(row, row + a.vocab);
    double sum = 0;
    for (int64_t v = 0; v < a.vocab; ++v) sum += std::exp(double(row[v]) - max_v);
    const double lse = max_v + std::log(sum);
    if (a.lse) a.lse[r] = static_cast<float>(lse);
    if (a.targets && a.target_logprobs) {
      const int32_t t = a.targets[r];
      a.target_logprobs[r] =
          (t >= 0 && t < a.vocab) ? static_cast<float>(double(row[t]) - lse) : -INFINITY;
    }
  }
}

}  // namespace sieve::kernels
