// AttentionCpu (the CPU backend's blocked attention) against AttentionRef on awkward shapes:
// packed chunks of unequal length, GQA groups 1/2/4, head_dim 16/64/128, query rows fewer than
// keys (query prefill and decode), sliding windows, and blocks straddling the causal diagonal.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/attention_cpu.h"

namespace sieve::kernels {
namespace {

struct Case {
  std::vector<int> q_lens;
  std::vector<int> kv_lens;
  int q_heads, kv_heads, head_dim, window;
};

void RunCase(const Case& c) {
  std::mt19937 rng(c.q_lens.size() * 131 + c.head_dim);
  std::normal_distribution<float> dist(0.f, 1.f);
  const int nseq = static_cast<int>(c.q_lens.size());
  std::vector<int32_t> q_starts{0}, kv_lens(c.kv_lens.begin(), c.kv_lens.end());
  for (int n : c.q_lens) q_starts.push_back(q_starts.back() + n);
  const int64_t total_q = q_starts.back();
  const int64_t q_stride = int64_t(c.q_heads) * c.head_dim + 7;  // padded rows, like fused QKV
  std::vector<float> q(total_q * q_stride);
  for (float& x : q) x = dist(rng);
  const int64_t kv_stride = int64_t(c.kv_heads) * c.head_dim + 3;
  std::vector<std::vector<float>> ks(nseq), vs(nseq);
  std::vector<const void*> kp(nseq), vp(nseq);
  int max_q = 0, max_kv = 0;
  for (int b = 0; b < nseq; ++b) {
    ks[b].resize(kv_lens[b] * kv_stride);
    vs[b].resize(kv_lens[b] * kv_stride);
    for (float& x : ks[b]) x = dist(rng);
    for (float& x : vs[b]) x = dist(rng);
    kp[b] = ks[b].data();
    vp[b] = vs[b].data();
    max_q = std::max(max_q, c.q_lens[b]);
    max_kv = std::max(max_kv, kv_lens[b]);
  }
  const int64_t out_stride = int64_t(c.q_heads) * c.head_dim;
  std::vector<float> got(total_q * out_stride, NAN), want(total_q * out_stride, NAN);
  AttentionArgs args{.q = q.data(),
                     .out = got.data(),
                     .k_seqs = kp.data(),
                     .v_seqs = vp.data(),
                     .kv_token_stride = kv_stride,
                     .kv_head_stride = c.head_dim,
                     .q_starts = q_starts.data(),
                     .kv_lens = kv_lens.data(),
                     .num_seqs = nseq,
                     .total_q = total_q,
                     .max_q_len = max_q,
                     .max_kv_len = max_kv,
                     .num_q_heads = c.q_heads,
                     .num_kv_heads = c.kv_heads,
                     .head_dim = c.head_dim,
                     .q_stride = q_stride,
                     .out_stride = out_stride,
                     .scale = 1.f / std::sqrt(float(c.head_dim)),
                     .window = c.window,
                     .dtype = DType::kF32};
  AttentionCpu(args);
  args.out = want.data();
  AttentionRef(args);
  double norm = 0;
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    norm += std::abs(want[i]);
    const bool ok = std::abs(got[i] - want[i]) <= 2e-5f + 2e-5f * std::abs(want[i]);
    if (!ok && bad++ < 10)
      ADD_FAILURE() << "element " << i << ": got " << got[i] << " want " << want[i];
  }
  EXPECT_EQ(bad, 0);
  EXPECT_GT(norm, 0);
}

TEST(AttentionCpuTest, PackedCausalChunks) {
  RunCase({{1, 7, 65, 300}, {1, 7, 65, 300}, 4, 2, 16, 0});
  RunCase({{129, 64}, {129, 64}, 8, 2, 64, 0});
}

TEST(AttentionCpuTest, LlamaShapesWithFewerQueryRowsThanKeys) {
  RunCase({{11}, {733}, 32, 8, 128, 0});             // query prefill against a cache
  RunCase({{1, 1, 1}, {1, 520, 257}, 4, 4, 64, 0});  // decode, batch of three
}

TEST(AttentionCpuTest, SlidingWindow) { RunCase({{300, 90}, {300, 120}, 4, 1, 16, 37}); }

}  // namespace
}  // namespace sieve::kernels
