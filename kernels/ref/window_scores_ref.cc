// CPU reference for kernels/window_scores.h: per (sequence, query head, scoring row) the row's
// log-sum-exp over its visible keys, then the probabilities of the scored keys, accumulated in
// double over rows and the heads of each KV group.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/ref/ref_util.h"
#include "kernels/window_scores.h"

namespace sieve::kernels {
namespace {

template <DType kType>
void WindowScoresTyped(const WindowScoresArgs& a) {
  using Elem = typename ElemOf<kType>::Type;
  const int group = a.num_q_heads / a.num_kv_heads;
  const int d = a.head_dim;
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int b = 0; b < a.num_seqs; ++b) {
    for (int g = 0; g < a.num_kv_heads; ++g) {
      const int nq = a.q_starts[b + 1] - a.q_starts[b];
      const int rows = std::min(a.num_rows, nq);
      const int kb = a.key_begin[b];
      const int kc = a.key_count[b];
      std::vector<double> acc(kc, 0.0);
      std::vector<float> s(std::max(1, a.kv_lens[b]));
      std::vector<float> qrow(d);
      const Elem* kbase = static_cast<const Elem*>(a.k_seqs[b]) + int64_t{g} * a.kv_head_stride;
      for (int h = g * group; h < (g + 1) * group; ++h) {
        for (int i = nq - rows; i < nq; ++i) {
          const int64_t r = a.q_starts[b] + i;
          const Elem* q = static_cast<const Elem*>(a.q) + r * a.q_stride + int64_t{h} * d;
          for (int e = 0; e < d; ++e) qrow[e] = ToFloat(q[e]);
          const int hi = a.kv_lens[b] - (nq - 1 - i);
          float max_s = -INFINITY;
          for (int t = 0; t < hi; ++t) {
            const Elem* k = kbase + t * a.kv_token_stride;
            float dot = 0.f;
            for (int e = 0; e < d; ++e) dot += qrow[e] * ToFloat(k[e]);
            s[t] = dot * a.scale;
            max_s = std::max(max_s, s[t]);
          }
          double denom = 0;
          for (int t = 0; t < hi; ++t) denom += std::exp(double(s[t]) - max_s);
          const int end = std::min(kb + kc, hi);
          for (int t = kb; t < end; ++t) acc[t - kb] += std::exp(double(s[t]) - max_s) / denom;
        }
      }
      float* out = a.scores + (int64_t{b} * a.num_kv_heads + g) * a.scores_stride;
      for (int j = 0; j < kc; ++j) out[j] = static_cast<float>(acc[j] * a.head_scale);
    }
  }
}

}  // namespace

void WindowScoresRef(const WindowScoresArgs& args) {
  SIEVE_REF_DISPATCH_DTYPE(args.dtype, WindowScoresTyped, args);
}

}  // namespace sieve::kernels
