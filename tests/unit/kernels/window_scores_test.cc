// WindowScores (kernels/window_scores.h): the CPU reference against a naive double-precision
// computation (softmax per scoring row over its visible keys, summed over rows and the heads of
// each KV group), and LaunchWindowScores against the reference in the three ways the pipeline
// calls it: SnapKV chunk compression (packed chunks, keys = the chunks' own rows of the fused
// QKV, the last 8 rows score the context), SCOPE decode (one row per sequence, a cache layout,
// a history range in the middle, head_scale 1/group) and calibration (one sequence of query rows
// against its cache). Fixture heads (4 / 2, head_dim 16) and Llama-3.1-8B heads (32 / 8, 128),
// bf16; the whole scores buffer is compared, so unscored slots must stay untouched.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/window_scores.h"
#include "tests/unit/kernels/gpu_test_util.h"

namespace sieve::kernels {
namespace {

using sieve::testing::AllClose;
using sieve::testing::FromBytes;
using sieve::testing::ToBytes;

// A problem in host memory: Q rows, per-sequence K in one buffer (offsets), ranges.
struct Problem {
  int hq = 4, hkv = 2, d = 16;
  std::vector<int32_t> q_starts, kv_lens, key_begin, key_count;
  int num_rows = 1;
  float head_scale = 1.f;
  bool fused = false;  // keys are the sequences' own rows of the Q buffer (fused QKV)
  // Filled by Build():
  int64_t q_stride = 0, kv_token_stride = 0, kv_head_stride = 0;
  std::vector<float> q;           // [total_q, q_stride] (also holds K when fused)
  std::vector<float> k;           // cache layout: all sequences' K, [sum kv_len, hkv * d]
  std::vector<int64_t> k_offset;  // per sequence, elements into q (fused) or k
  int max_q_len = 0, max_kv_len = 0, max_key_count = 0;

  int num_seqs() const { return static_cast<int>(kv_lens.size()); }

  void Build(uint64_t seed, float q_std) {
    q_starts.insert(q_starts.begin(), 0);
    for (size_t b = 1; b < q_starts.size(); ++b) q_starts[b] += q_starts[b - 1];
    const int64_t total_q = q_starts.back();
    for (int b = 0; b < num_seqs(); ++b) {
      max_q_len = std::max(max_q_len, q_starts[b + 1] - q_starts[b]);
      max_kv_len = std::max(max_kv_len, kv_lens[b]);
      max_key_count = std::max(max_key_count, key_count[b]);
    }
    kv_head_stride = d;
    if (fused) {
      q_stride = int64_t{hq + 2 * hkv} * d;
      kv_token_stride = q_stride;
      q = sieve::testing::RandomNormal(total_q * q_stride, seed, q_std);
      for (int b = 0; b < num_seqs(); ++b) k_offset.push_back(q_starts[b] * q_stride + hq * d);
    } else {
      q_stride = int64_t{hq} * d;
      kv_token_stride = int64_t{hkv} * d;
      q = sieve::testing::RandomNormal(total_q * q_stride, seed, q_std);
      int64_t off = 0;
      for (int b = 0; b < num_seqs(); ++b) {
        k_offset.push_back(off);
        off += int64_t{kv_lens[b]} * kv_token_stride;
      }
      k = sieve::testing::RandomNormal(std::max<int64_t>(1, off), seed + 1);
    }
  }

  WindowScoresArgs Args() const {
    return {.scores_stride = std::max(1, max_key_count) + 3,
            .num_seqs = num_seqs(),
            .num_rows = num_rows,
            .max_q_len = max_q_len,
            .max_kv_len = max_kv_len,
            .max_key_count = max_key_count,
            .num_q_heads = hq,
            .num_kv_heads = hkv,
            .head_dim = d,
            .q_stride = q_stride,
            .scale = 1.f / std::sqrt(float(d)),
            .head_scale = head_scale};
  }
};

// Naive: double everywhere.
std::vector<float> Naive(const Problem& p, const std::vector<float>& q, const std::vector<float>& k,
                         const WindowScoresArgs& a) {
  std::vector<float> out(size_t(p.num_seqs()) * p.hkv * a.scores_stride, -5.f);
  const int group = p.hq / p.hkv;
  for (int b = 0; b < p.num_seqs(); ++b) {
    const int nq = p.q_starts[b + 1] - p.q_starts[b];
    const int rows = std::min(p.num_rows, nq);
    const float* kb = (p.fused ? q.data() : k.data()) + p.k_offset[b];
    for (int g = 0; g < p.hkv; ++g) {
      std::vector<double> acc(p.key_count[b], 0.0);
      for (int h = g * group; h < (g + 1) * group; ++h) {
        for (int i = nq - rows; i < nq; ++i) {
          const float* qr = q.data() + (p.q_starts[b] + i) * p.q_stride + h * p.d;
          const int hi = p.kv_lens[b] - (nq - 1 - i);
          std::vector<double> s(std::max(0, hi));
          double m = -INFINITY;
          for (int t = 0; t < hi; ++t) {
            double dot = 0;
            for (int e = 0; e < p.d; ++e) {
              dot += double(qr[e]) * kb[t * p.kv_token_stride + g * p.kv_head_stride + e];
            }
            s[t] = dot * a.scale;
            m = std::max(m, s[t]);
          }
          double z = 0;
          for (int t = 0; t < hi; ++t) z += std::exp(s[t] - m);
          for (int j = 0; j < p.key_count[b]; ++j) {
            const int t = p.key_begin[b] + j;
            if (t < hi) acc[j] += std::exp(s[t] - m) / z;
          }
        }
      }
      for (int j = 0; j < p.key_count[b]; ++j) {
        out[(size_t(b) * p.hkv + g) * a.scores_stride + j] =
            static_cast<float>(acc[j] * p.head_scale);
      }
    }
  }
  return out;
}

TEST(WindowScoresKernelTest, RefMatchesNaive) {
  for (bool fused : {false, true}) {
    Problem p;
    p.fused = fused;
    p.q_starts = {5, 1, 12};
    p.kv_lens = fused ? std::vector<int32_t>{5, 1, 12} : std::vector<int32_t>{5, 9, 12};
    p.key_begin = {1, 0, 3};
    p.key_count = {4, 1, 5};
    p.num_rows = 3;
    p.head_scale = 0.5f;
    p.Build(1, 2.f);
    WindowScoresArgs a = p.Args();
    std::vector<const void*> k_seqs;
    for (int b = 0; b < p.num_seqs(); ++b) {
      k_seqs.push_back((fused ? p.q.data() : p.k.data()) + p.k_offset[b]);
    }
    std::vector<float> scores(size_t(p.num_seqs()) * p.hkv * a.scores_stride, -5.f);
    a.q = p.q.data();
    a.k_seqs = k_seqs.data();
    a.kv_token_stride = p.kv_token_stride;
    a.kv_head_stride = p.kv_head_stride;
    a.q_starts = p.q_starts.data();
    a.kv_lens = p.kv_lens.data();
    a.key_begin = p.key_begin.data();
    a.key_count = p.key_count.data();
    a.scores = scores.data();
    WindowScoresRef(a);
    EXPECT_TRUE(AllClose(scores, Naive(p, p.q, p.k, a), {1e-6, 1e-5}, "window scores ref"));
  }
}

#if SIEVE_WITH_CUDA
Problem WithHeads(int hq, int hkv, int d) {
  Problem p;
  p.hq = hq;
  p.hkv = hkv;
  p.d = d;
  return p;
}

void RunGpuCase(Problem p, const std::string& what) {
  using sieve::testing::DeviceMemory;
  const DType dt = DType::kBF16;
  const size_t elem = DTypeSize(dt);
  WindowScoresArgs a = p.Args();
  const auto q_bytes = ToBytes(p.q, dt);
  const auto k_bytes = ToBytes(p.k, dt);
  DeviceMemory d_q = DeviceMemory::From(q_bytes), d_k = DeviceMemory::From(k_bytes);
  std::vector<const void*> h_k_seqs, d_k_seqs;
  for (int b = 0; b < p.num_seqs(); ++b) {
    const int64_t off = p.k_offset[b] * elem;
    h_k_seqs.push_back((p.fused ? q_bytes.data() : k_bytes.data()) + off);
    d_k_seqs.push_back((p.fused ? d_q.as<uint8_t>() : d_k.as<uint8_t>()) + off);
  }
  DeviceMemory d_ptrs = DeviceMemory::From(d_k_seqs), d_q_starts = DeviceMemory::From(p.q_starts),
               d_kv = DeviceMemory::From(p.kv_lens), d_kb = DeviceMemory::From(p.key_begin),
               d_kc = DeviceMemory::From(p.key_count);
  const size_t n_scores = size_t(p.num_seqs()) * p.hkv * a.scores_stride;
  std::vector<float> want(n_scores, -5.f);
  a.kv_token_stride = p.kv_token_stride;
  a.kv_head_stride = p.kv_head_stride;
  a.dtype = dt;
  WindowScoresArgs ref = a;
  ref.q = q_bytes.data();
  ref.k_seqs = h_k_seqs.data();
  ref.q_starts = p.q_starts.data();
  ref.kv_lens = p.kv_lens.data();
  ref.key_begin = p.key_begin.data();
  ref.key_count = p.key_count.data();
  ref.scores = want.data();
  WindowScoresRef(ref);
  DeviceMemory d_scores = DeviceMemory::From(std::vector<float>(n_scores, -5.f));
  DeviceMemory d_ws(std::max<size_t>(1, WindowScoresWorkspaceBytes(a)));
  a.q = d_q.get();
  a.k_seqs = d_ptrs.as<const void*>();
  a.q_starts = d_q_starts.as<int32_t>();
  a.kv_lens = d_kv.as<int32_t>();
  a.key_begin = d_kb.as<int32_t>();
  a.key_count = d_kc.as<int32_t>();
  a.scores = d_scores.as<float>();
  ASSERT_EQ(LaunchWindowScores(a, d_ws.get(), d_ws.bytes(), nullptr), cudaSuccess) << what;
  ASSERT_TRUE(sieve::testing::DeviceSync()) << what;
  EXPECT_TRUE(AllClose(d_scores.ToVector<float>(n_scores), want, {1e-6, 2e-3}, what));
}
#endif

TEST(WindowScoresKernelTest, GpuMatchesRef) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  struct Heads {
    int hq, hkv, d;
  };
  for (Heads h : {Heads{4, 2, 16}, Heads{32, 8, 128}}) {
    const std::string tag = " d=" + std::to_string(h.d);
    {  // SnapKV compression: chunks [BOS] ctx [BOS] query (query 9 rows), 8 scoring rows.
      Problem p = WithHeads(h.hq, h.hkv, h.d);
      p.fused = true;
      for (int ctx : {1, 7, 733, 2048, 64}) {
        const int rows = ctx + 2 + 9;
        p.q_starts.push_back(rows);
        p.kv_lens.push_back(rows);
        p.key_begin.push_back(1);
        p.key_count.push_back(ctx);
      }
      p.num_rows = 8;
      p.Build(11, 2.f);
      RunGpuCase(p, "compression" + tag);
    }
    {  // SCOPE decode: one row per sequence against a cache; history in the middle.
      Problem p = WithHeads(h.hq, h.hkv, h.d);
      for (int kv : {1, 100, 8192, 24576, 777}) {
        p.q_starts.push_back(1);
        p.kv_lens.push_back(kv);
        p.key_begin.push_back(kv / 3);
        p.key_count.push_back(std::max(1, kv / 2));
      }
      p.num_rows = 1;
      p.head_scale = float(h.hkv) / float(h.hq);
      p.Build(12, 2.f);
      RunGpuCase(p, "decode" + tag);
    }
    {  // Calibration: 33 query rows against a 3000-entry prefill cache plus themselves.
      Problem p = WithHeads(h.hq, h.hkv, h.d);
      p.q_starts = {33};
      p.kv_lens = {3033};
      p.key_begin = {0};
      p.key_count = {3000};
      p.num_rows = 1;
      p.head_scale = float(h.hkv) / float(h.hq);
      p.Build(13, 2.f);
      RunGpuCase(p, "calibration" + tag);
    }
  }
#endif
}

}  // namespace
}  // namespace sieve::kernels
