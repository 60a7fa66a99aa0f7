#include "kernels/cpu/attention_cpu.h"

#include <algorithm>
#include <cmath>
#include <vector>

#if SIEVE_WITH_CBLAS
#include <cblas.h>
#endif

namespace sieve::kernels {
namespace {

constexpr int kRowBlock = 64;
constexpr int kKeyBlock = 256;

// c[m, n] = a[m, k] · b[n, k]ᵀ (row strides lda, ldb, ldc).
void MatMulNT(int m, int n, int k, const float* a, int64_t lda, const float* b, int64_t ldb,
              float* c, int64_t ldc, float alpha) {
#if SIEVE_WITH_CBLAS
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, alpha, a, int(lda), b, int(ldb),
              0.f, c, int(ldc));
#else
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      float s = 0.f;
      for (int p = 0; p < k; ++p) s += a[i * lda + p] * b[j * ldb + p];
      c[i * ldc + j] = alpha * s;
    }
  }
#endif
}

// c[m, n] += a[m, k] · b[k, n].
void MatMulNNAccumulate(int m, int n, int k, const float* a, int64_t lda, const float* b,
                        int64_t ldb, float* c, int64_t ldc) {
#if SIEVE_WITH_CBLAS
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.f, a, int(lda), b, int(ldb),
              1.f, c, int(ldc));
#else
  for (int i = 0; i < m; ++i) {
    for (int p = 0; p < k; ++p) {
      const float x = a[i * lda + p];
      for (int j = 0; j < n; ++j) c[i * ldc + j] += x * b[p * ldb + j];
    }
  }
#endif
}

struct Block {
  int seq;
  int head;
  int row0;  // first query row (local to the sequence)
  int rows;
};

}  // namespace

void AttentionCpu(const AttentionArgs& a) {
  if (a.dtype != DType::kF32) {
    AttentionRef(a);
    return;
  }
  const int group = a.num_q_heads / a.num_kv_heads;
  const int d = a.head_dim;
  std::vector<Block> blocks;
  for (int b = 0; b < a.num_seqs; ++b) {
    const int nq = a.q_starts[b + 1] - a.q_starts[b];
    for (int h = 0; h < a.num_q_heads; ++h) {
      for (int r = 0; r < nq; r += kRowBlock)
        blocks.push_back({b, h, r, std::min(kRowBlock, nq - r)});
    }
  }
  // Long blocks first: better balance under dynamic scheduling.
#pragma omp parallel
  {
    std::vector<float> scores(size_t(kRowBlock) * kKeyBlock);
    std::vector<float> acc(size_t(kRowBlock) * d), row_max(kRowBlock), row_sum(kRowBlock);
#pragma omp for schedule(dynamic, 1)
    for (size_t w = 0; w < blocks.size(); ++w) {
      const Block& blk = blocks[w];
      const int nq = a.q_starts[blk.seq + 1] - a.q_starts[blk.seq];
      const int kv_len = a.kv_lens[blk.seq];
      const int g = blk.head / group;
      const float* q = static_cast<const float*>(a.q) +
                       int64_t(a.q_starts[blk.seq] + blk.row0) * a.q_stride + int64_t(blk.head) * d;
      const float* k = static_cast<const float*>(a.k_seqs[blk.seq]) + int64_t(g) * a.kv_head_stride;
      const float* v = static_cast<const float*>(a.v_seqs[blk.seq]) + int64_t(g) * a.kv_head_stride;
      auto hi_of = [&](int i) { return kv_len - (nq - 1 - (blk.row0 + i)); };
      auto lo_of = [&](int i) { return a.window > 0 ? std::max(0, hi_of(i) - a.window) : 0; };
      const int key_lo = std::max(0, lo_of(0));
      const int key_hi = std::max(key_lo, hi_of(blk.rows - 1));
      std::fill(acc.begin(), acc.begin() + size_t(blk.rows) * d, 0.f);
      std::fill(row_max.begin(), row_max.end(), -INFINITY);
      std::fill(row_sum.begin(), row_sum.end(), 0.f);
      for (int t0 = key_lo; t0 < key_hi; t0 += kKeyBlock) {
        const int nk = std::min(kKeyBlock, key_hi - t0);
        MatMulNT(blk.rows, nk, d, q, a.q_stride, k + int64_t(t0) * a.kv_token_stride,
                 a.kv_token_stride, scores.data(), kKeyBlock, a.scale);
        for (int i = 0; i < blk.rows; ++i) {
          float* s = &scores[size_t(i) * kKeyBlock];
          const int lo = lo_of(i) - t0, hi = hi_of(i) - t0;
          float m = row_max[i];
          for (int j = 0; j < nk; ++j) {
            if (j < lo || j >= hi) s[j] = -INFINITY;
            m = std::max(m, s[j]);
          }
          if (m == -INFINITY) {  // nothing visible in this block yet
            std::fill(s, s + nk, 0.f);
            continue;
          }
          const float correction = std::exp(row_max[i] - m);
          float sum = 0.f;
          for (int j = 0; j < nk; ++j) {
            s[j] = std::exp(s[j] - m);
            sum += s[j];
          }
          row_sum[i] = row_sum[i] * correction + sum;
          row_max[i] = m;
          float* out = &acc[size_t(i) * d];
          for (int e = 0; e < d; ++e) out[e] *= correction;
        }
        MatMulNNAccumulate(blk.rows, d, nk, scores.data(), kKeyBlock,
                           v + int64_t(t0) * a.kv_token_stride, a.kv_token_stride, acc.data(), d);
      }
      for (int i = 0; i < blk.rows; ++i) {
        float* out = static_cast<float*>(a.out) +
                     int64_t(a.q_starts[blk.seq] + blk.row0 + i) * a.out_stride +
                     int64_t(blk.head) * d;
        const float inv = row_sum[i] > 0 ? 1.f / row_sum[i] : 0.f;
        for (int e = 0; e < d; ++e) out[e] = acc[size_t(i) * d + e] * inv;
      }
    }
  }
}

}  // namespace sieve::kernels
