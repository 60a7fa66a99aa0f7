// CPU reference for kernels/attention.h: for every (sequence, query head, row) one pass that
// scores the visible keys, takes the fp32 softmax and sums the values. Threaded over rows.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/attention.h"
#include "kernels/ref/ref_util.h"

namespace sieve::kernels {
namespace {

template <DType kType>
void AttentionTyped(const AttentionArgs& a) {
  using Elem = typename ElemOf<kType>::Type;
  const int group = a.num_q_heads / a.num_kv_heads;
  const int d = a.head_dim;
  // Flatten (sequence, row) pairs so the parallel loop balances across chunks of unequal size.
  std::vector<std::pair<int, int>> rows;
  rows.reserve(a.total_q);
  for (int b = 0; b < a.num_seqs; ++b) {
    for (int r = a.q_starts[b]; r < a.q_starts[b + 1]; ++r) rows.emplace_back(b, r);
  }
  const int64_t n_work = static_cast<int64_t>(rows.size()) * a.num_q_heads;
#pragma omp parallel
  {
    std::vector<float> scores(std::max(1, a.max_kv_len));
    std::vector<float> qrow(d), acc(d);
#pragma omp for schedule(dynamic, 16)
    for (int64_t w = 0; w < n_work; ++w) {
      const auto [b, r] = rows[w / a.num_q_heads];
      const int h = static_cast<int>(w % a.num_q_heads);
      const int g = h / group;
      const int nq = a.q_starts[b + 1] - a.q_starts[b];
      const int i = r - a.q_starts[b];
      const int hi = a.kv_lens[b] - (nq - 1 - i);
      const int lo = a.window > 0 ? std::max(0, hi - a.window) : 0;
      const Elem* q = static_cast<const Elem*>(a.q) + r * a.q_stride + int64_t{h} * d;
      for (int e = 0; e < d; ++e) qrow[e] = ToFloat(q[e]);
      const Elem* kbase = static_cast<const Elem*>(a.k_seqs[b]) + int64_t{g} * a.kv_head_stride;
      const Elem* vbase = static_cast<const Elem*>(a.v_seqs[b]) + int64_t{g} * a.kv_head_stride;
      float max_s = -INFINITY;
      for (int t = lo; t < hi; ++t) {
        const Elem* k = kbase + t * a.kv_token_stride;
        float dot = 0.f;
        for (int e = 0; e < d; ++e) dot += qrow[e] * ToFloat(k[e]);
        scores[t - lo] = dot * a.scale;
        max_s = std::max(max_s, scores[t - lo]);
      }
      std::fill(acc.begin(), acc.end(), 0.f);
      float denom = 0.f;
      for (int t = lo; t < hi; ++t) {
        const float p = std::exp(scores[t - lo] - max_s);
        denom += p;
        const Elem* v = vbase + t * a.kv_token_stride;
        for (int e = 0; e < d; ++e) acc[e] += p * ToFloat(v[e]);
      }
      Elem* out = static_cast<Elem*>(a.out) + r * a.out_stride + int64_t{h} * d;
      const float inv = hi > lo ? 1.f / denom : 0.f;
      for (int e = 0; e < d; ++e) out[e] = FromFloat<Elem>(acc[e] * inv);
    }
  }
}

}  // namespace

void AttentionRef(const AttentionArgs& args) {
  SIEVE_REF_DISPATCH_DTYPE(args.dtype, AttentionTyped, args);
}

}  // namespace sieve::kernels
