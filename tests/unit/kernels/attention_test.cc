// Attention (kernels/attention.h).
//
// CPU: AttentionRef against a naive double-precision attention (bottom-right causal, GQA,
// sliding window, nq < kv_len and nq > kv_len, fp32 / bf16 storage).
//
// GPU: LaunchAttention against AttentionRef on the same bf16 (or fp32) inputs, per element
// within atol 1e-2 + rtol 1e-2 for bf16 (P is rounded to bf16 as the P·V operand, the output to
// bf16), over every path:
//   - generic (the fixture's 4 q / 2 kv heads, head_dim 16; fp32 and bf16);
//   - tensor-core prefill (Llama-3.1-8B: 32 / 8, head_dim 128; and 16 / 4, head_dim 64): packed
//     chunks {1, 7, 64, 65, 128, 129, 733} (keys = the chunks' own rows of the fused QKV), one
//     8192-row chunk (a sample of rows checked, including every tile boundary region), query
//     prefill (33 rows against a 5000-entry cache), a sliding window, rows with no visible key,
//     and K/V base pointers that are not 16-byte aligned (the plain-load staging);
//   - sm_90a wgmma prefill (GpuPrefillSm90MatchesRef, forced; skipped off compute capability
//     9.0): packed {1, 7, 733, 128, 129, 255, 64}, packed {8191, 1, 3001, 0, 8000} (edge rows of
//     every sequence checked), query prefill over longer caches, empty sequences, GQA group 4
//     and 1, windows, nq > kv_len, a peaky softmax, all with K/V by the copy engine (per-sequence
//     tensor maps), and misaligned K/V (the plain-load path); NaN rows after every sequence's
//     keys, on both paths, catch a read past kv_lens; the prefill cases above run both through
//     LaunchAttention's choice and with variant 1 forced;
//   - split-K decode (also with forced keys per split: 64, 512, 3000, 24576): one row per
//     sequence with kv {0, 1, 63, 64, 65, 1000, 24576}, 2-3 rows per sequence, 8 rows (32
//     query vectors: two MMA row tiles), a window, misaligned K/V.
// A boundary probe makes each row's softmax collapse onto its last visible key (or first, for
// the window's lower edge), so a mask that is off by one key changes the output completely
// rather than by 1 / kv_len.
// Every comparison also asserts nonzero norms (no all-zero pass) and the absence of NaNs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "tests/unit/kernels/gpu_test_util.h"

namespace sieve::kernels {
namespace {

using sieve::testing::AllClose;
using sieve::testing::FromBytes;
using sieve::testing::ToBytes;

// One attention problem in host memory (fp32 values; stored as `dtype` for the kernels).
struct Problem {
  int hq = 4, hkv = 2, d = 16;
  DType dtype = DType::kBF16;
  int window = 0;
  std::vector<int32_t> nq, kv_len;  // per sequence
  bool fused = false;               // keys are the sequences' own rows of the fused QKV buffer
  int kv_misalign = 0;              // elements added to every K/V base pointer (cache layout)
  int kv_nan_rows = 0;              // cache layout: NaN token rows after each sequence's keys
  int decode_split_keys = 0;        // AttentionArgs::decode_split_keys
  // Built:
  std::vector<int32_t> q_starts;
  int64_t q_stride = 0, kv_token_stride = 0, kv_head_stride = 0, out_stride = 0;
  std::vector<float> q;            // [total_q, q_stride] (the fused buffer when fused)
  std::vector<float> k, v;         // cache layout: [kv_misalign + sum kv_len * token stride]
  std::vector<int64_t> kv_offset;  // per sequence, elements into q (fused: K; V at + hkv d) or k/v
  int max_q_len = 0, max_kv_len = 0;

  int num_seqs() const { return static_cast<int>(nq.size()); }
  int64_t total_q() const { return q_starts.back(); }
  float scale() const { return 1.f / std::sqrt(float(d)); }

  // q ~ N(0, q_std) makes the softmax peakier as q_std grows; K, V ~ N(0, 1).
  void Build(uint64_t seed, float q_std) {
    q_starts = {0};
    for (int b = 0; b < num_seqs(); ++b) {
      q_starts.push_back(q_starts.back() + nq[b]);
      max_q_len = std::max(max_q_len, nq[b]);
      max_kv_len = std::max(max_kv_len, kv_len[b]);
    }
    kv_head_stride = d;
    out_stride = int64_t{hq} * d;
    if (fused) {
      q_stride = int64_t{hq + 2 * hkv} * d;
      kv_token_stride = q_stride;
      q = sieve::testing::RandomNormal(total_q() * q_stride, seed, 1.f);
      // Scale the Q part only.
      for (int64_t r = 0; r < total_q(); ++r) {
        for (int64_t e = 0; e < int64_t{hq} * d; ++e) q[r * q_stride + e] *= q_std;
      }
      for (int b = 0; b < num_seqs(); ++b) kv_offset.push_back(q_starts[b] * q_stride + hq * d);
    } else {
      q_stride = int64_t{hq} * d;
      kv_token_stride = int64_t{hkv} * d;
      q = sieve::testing::RandomNormal(total_q() * q_stride, seed, q_std);
      int64_t off = kv_misalign;
      std::vector<int64_t> nan_begin;
      for (int b = 0; b < num_seqs(); ++b) {
        kv_offset.push_back(off);
        off += int64_t{kv_len[b]} * kv_token_stride;
        nan_begin.push_back(off);
        off += int64_t{kv_nan_rows} * kv_token_stride;
        off = (off + 7) / 8 * 8 + kv_misalign;
      }
      k = sieve::testing::RandomNormal(off + 8, seed + 1);
      v = sieve::testing::RandomNormal(off + 8, seed + 2);
      for (int64_t begin : nan_begin) {
        for (int64_t i = begin; i < begin + int64_t{kv_nan_rows} * kv_token_stride; ++i) {
          k[i] = v[i] = std::numeric_limits<float>::quiet_NaN();
        }
      }
    }
  }

  const float* KBase(int b, const std::vector<float>& qs, const std::vector<float>& ks) const {
    return (fused ? qs.data() : ks.data()) + kv_offset[b];
  }
  const float* VBase(int b, const std::vector<float>& qs, const std::vector<float>& vs) const {
    return (fused ? qs.data() + int64_t{hkv} * d : vs.data()) + kv_offset[b];
  }

  AttentionArgs Args() const {
    return {.kv_token_stride = kv_token_stride,
            .kv_head_stride = kv_head_stride,
            .num_seqs = num_seqs(),
            .total_q = total_q(),
            .max_q_len = max_q_len,
            .max_kv_len = max_kv_len,
            .num_q_heads = hq,
            .num_kv_heads = hkv,
            .head_dim = d,
            .q_stride = q_stride,
            .out_stride = out_stride,
            .scale = scale(),
            .window = window,
            .dtype = dtype,
            .decode_split_keys = decode_split_keys};
  }
};

// The attention of kernels/attention.h in double, for every row.
std::vector<float> Naive(const Problem& p, const std::vector<float>& q, const std::vector<float>& k,
                         const std::vector<float>& v) {
  std::vector<float> out(p.total_q() * p.out_stride, 0.f);
  const int group = p.hq / p.hkv;
  for (int b = 0; b < p.num_seqs(); ++b) {
    const float* kb = p.KBase(b, q, k);
    const float* vb = p.VBase(b, q, v);
    for (int i = 0; i < p.nq[b]; ++i) {
      const int hi = p.kv_len[b] - (p.nq[b] - 1 - i);
      const int lo = p.window > 0 ? std::max(0, hi - p.window) : 0;
      for (int h = 0; h < p.hq; ++h) {
        const int g = h / group;
        const float* qr = q.data() + (p.q_starts[b] + i) * p.q_stride + h * p.d;
        std::vector<double> s;
        double m = -INFINITY;
        for (int t = lo; t < hi; ++t) {
          double dot = 0;
          for (int e = 0; e < p.d; ++e) {
            dot += double(qr[e]) * kb[t * p.kv_token_stride + g * p.kv_head_stride + e];
          }
          s.push_back(dot * p.scale());
          m = std::max(m, s.back());
        }
        double z = 0;
        for (double x : s) z += std::exp(x - m);
        for (int e = 0; e < p.d; ++e) {
          double acc = 0;
          for (int t = lo; t < hi; ++t) {
            acc += std::exp(s[t - lo] - m) * vb[t * p.kv_token_stride + g * p.kv_head_stride + e];
          }
          out[(p.q_starts[b] + i) * p.out_stride + h * p.d + e] =
              hi > lo ? static_cast<float>(acc / z) : 0.f;
        }
      }
    }
  }
  return out;
}

TEST(AttentionKernelTest, RefMatchesNaive) {
  struct Case {
    std::vector<int32_t> nq, kv;
    int window;
    bool fused;
  };
  const Case cases[] = {
      {{1, 7, 19}, {1, 7, 19}, 0, true},  // packed chunks
      {{5, 1}, {40, 33}, 0, false},       // query prefill / decode against a cache
      {{19, 9}, {19, 30}, 6, false},      // sliding window
      {{10}, {4}, 0, false},              // nq > kv_len: early rows see nothing
  };
  for (const Case& c : cases) {
    for (DType dtype : {DType::kF32, DType::kBF16}) {
      Problem p;
      p.dtype = dtype;
      p.nq = c.nq;
      p.kv_len = c.kv;
      p.window = c.window;
      p.fused = c.fused;
      p.Build(1, 2.f);
      // Round the inputs to the storage type first so both sides see the same values.
      const auto q_stored = FromBytes(ToBytes(p.q, dtype), dtype, p.q.size());
      const auto k_stored = FromBytes(ToBytes(p.k, dtype), dtype, p.k.size());
      const auto v_stored = FromBytes(ToBytes(p.v, dtype), dtype, p.v.size());
      const auto q_bytes = ToBytes(p.q, dtype), k_bytes = ToBytes(p.k, dtype),
                 v_bytes = ToBytes(p.v, dtype);
      const size_t elem = DTypeSize(dtype);
      std::vector<const void*> ks, vs;
      for (int b = 0; b < p.num_seqs(); ++b) {
        if (p.fused) {
          ks.push_back(q_bytes.data() + p.kv_offset[b] * elem);
          vs.push_back(q_bytes.data() + (p.kv_offset[b] + p.hkv * p.d) * elem);
        } else {
          ks.push_back(k_bytes.data() + p.kv_offset[b] * elem);
          vs.push_back(v_bytes.data() + p.kv_offset[b] * elem);
        }
      }
      std::vector<uint8_t> out(p.total_q() * p.out_stride * elem);
      AttentionArgs a = p.Args();
      a.q = q_bytes.data();
      a.out = out.data();
      a.k_seqs = ks.data();
      a.v_seqs = vs.data();
      a.q_starts = p.q_starts.data();
      a.kv_lens = p.kv_len.data();
      AttentionRef(a);
      const auto want = Naive(p, q_stored, k_stored, v_stored);
      const auto tol = dtype == DType::kF32 ? sieve::testing::Tolerance{1e-5, 1e-4}
                                            : sieve::testing::Tolerance{1e-2, 1e-2};
      EXPECT_TRUE(AllClose(FromBytes(out, dtype, want.size()), want, tol,
                           "attention ref window=" + std::to_string(c.window)));
    }
  }
}

#if SIEVE_WITH_CUDA
// Runs `p` on the GPU and checks rows `check_rows` (packed row indices; empty = all) against
// AttentionRef. When `probe` is set, the caller prepared Q/K/V to make every row's softmax
// collapse onto one key.
// With `variant`, that kernel is forced (LaunchAttentionVariant); otherwise LaunchAttention
// chooses.
void RunGpuCase(const Problem& p, std::vector<int64_t> check_rows, const std::string& what,
                std::optional<AttentionVariant> variant = std::nullopt) {
  using sieve::testing::DeviceMemory;
  const DType dt = p.dtype;
  const size_t elem = DTypeSize(dt);
  const auto q_bytes = ToBytes(p.q, dt), k_bytes = ToBytes(p.k, dt), v_bytes = ToBytes(p.v, dt);
  DeviceMemory d_q = DeviceMemory::From(q_bytes), d_k = DeviceMemory::From(k_bytes),
               d_v = DeviceMemory::From(v_bytes);
  std::vector<const void*> hk, hv, dk, dv;
  for (int b = 0; b < p.num_seqs(); ++b) {
    const int64_t off = p.kv_offset[b] * elem;
    const int64_t voff = p.fused ? off + p.hkv * p.d * elem : off;
    hk.push_back((p.fused ? q_bytes.data() : k_bytes.data()) + off);
    hv.push_back((p.fused ? q_bytes.data() : v_bytes.data()) + voff);
    dk.push_back((p.fused ? d_q.as<uint8_t>() : d_k.as<uint8_t>()) + off);
    dv.push_back((p.fused ? d_q.as<uint8_t>() : d_v.as<uint8_t>()) + voff);
  }
  DeviceMemory d_kp = DeviceMemory::From(dk), d_vp = DeviceMemory::From(dv),
               d_starts = DeviceMemory::From(p.q_starts), d_lens = DeviceMemory::From(p.kv_len);
  const int64_t out_elems = p.total_q() * p.out_stride;
  // NaN-filled output: every element the kernel should write must be written.
  DeviceMemory d_out = DeviceMemory::From(
      ToBytes(std::vector<float>(out_elems, std::numeric_limits<float>::quiet_NaN()), dt));
  AttentionArgs a = p.Args();
  a.q = d_q.get();
  a.out = d_out.get();
  a.k_seqs = d_kp.as<const void*>();
  a.v_seqs = d_vp.as<const void*>();
  a.q_starts = d_starts.as<int32_t>();
  a.kv_lens = d_lens.as<int32_t>();
  ASSERT_TRUE(AttentionCanImplement(a)) << what;
  const size_t ws_bytes = AttentionWorkspaceBytes(a);
  DeviceMemory d_ws(std::max<size_t>(ws_bytes, 1));
  if (variant) {
    ASSERT_EQ(LaunchAttentionVariant(a, *variant, d_ws.get(), ws_bytes, nullptr), cudaSuccess)
        << what << " (" << AttentionVariantName(*variant) << ")";
  } else {
    ASSERT_EQ(LaunchAttention(a, d_ws.get(), ws_bytes, nullptr), cudaSuccess) << what;
  }
  ASSERT_TRUE(sieve::testing::DeviceSync()) << what;
  const auto got_all =
      FromBytes(d_out.ToVector<uint8_t>(out_elems * elem), dt, static_cast<size_t>(out_elems));

  if (check_rows.empty()) {
    check_rows.resize(p.total_q());
    std::iota(check_rows.begin(), check_rows.end(), 0);
  }
  // The reference on the checked rows only: row i of sequence b (nq rows, kv_len keys) is a
  // one-row sequence with kv_len' = hi_i keys (same window).
  std::vector<int32_t> sub_starts = {0}, sub_lens;
  std::vector<const void*> sub_k, sub_v;
  std::vector<uint8_t> sub_q;
  for (int64_t row : check_rows) {
    const int b = static_cast<int>(
        std::upper_bound(p.q_starts.begin(), p.q_starts.end(), static_cast<int32_t>(row)) -
        p.q_starts.begin() - 1);
    const int i = static_cast<int>(row - p.q_starts[b]);
    sub_lens.push_back(std::max(0, p.kv_len[b] - (p.nq[b] - 1 - i)));
    sub_starts.push_back(sub_starts.back() + 1);
    sub_k.push_back(hk[b]);
    sub_v.push_back(hv[b]);
    const uint8_t* qr = q_bytes.data() + row * p.q_stride * elem;
    sub_q.insert(sub_q.end(), qr, qr + p.hq * p.d * elem);
  }
  const int64_t n_rows = static_cast<int64_t>(check_rows.size());
  std::vector<uint8_t> sub_out(n_rows * p.hq * p.d * elem);
  AttentionArgs r = p.Args();
  r.q = sub_q.data();
  r.out = sub_out.data();
  r.k_seqs = sub_k.data();
  r.v_seqs = sub_v.data();
  r.q_starts = sub_starts.data();
  r.kv_lens = sub_lens.data();
  r.num_seqs = static_cast<int>(n_rows);
  r.total_q = n_rows;
  r.max_q_len = 1;
  r.max_kv_len = *std::max_element(sub_lens.begin(), sub_lens.end());
  r.q_stride = int64_t{p.hq} * p.d;
  r.out_stride = int64_t{p.hq} * p.d;
  AttentionRef(r);
  const auto want = FromBytes(sub_out, dt, sub_out.size() / elem);
  std::vector<float> got;
  for (int64_t row : check_rows) {
    got.insert(got.end(), got_all.begin() + row * p.out_stride,
               got_all.begin() + row * p.out_stride + p.hq * p.d);
  }
  const auto tol = dt == DType::kF32 ? sieve::testing::Tolerance{2e-5, 2e-4}
                                     : sieve::testing::Tolerance{1e-2, 1e-2};
  EXPECT_TRUE(AllClose(got, want, tol, what));
  // Rows that are not checked must still be written (no NaN left from the fill).
  size_t nan = 0;
  for (float x : got_all) nan += std::isnan(x);
  EXPECT_EQ(nan, 0u) << what << ": output elements left unwritten";
}

// Rows 0..3, around every 64-row tile boundary up to 256, a random sample and the last 8.
std::vector<int64_t> SampleRows(int64_t total, uint64_t seed) {
  std::vector<int64_t> rows;
  for (int64_t r = 0; r < 4; ++r) rows.push_back(r);
  for (int64_t t = 64; t <= 256; t += 64) {
    for (int64_t r = t - 2; r <= t + 1; ++r) rows.push_back(r);
  }
  for (int32_t r : sieve::testing::RandomInts(48, seed, 0, static_cast<int32_t>(total - 1))) {
    rows.push_back(r);
  }
  for (int64_t r = total - 8; r < total; ++r) rows.push_back(r);
  std::erase_if(rows, [total](int64_t r) { return r < 0 || r >= total; });
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  return rows;
}

Problem Make(int hq, int hkv, int d, std::vector<int32_t> nq, std::vector<int32_t> kv, bool fused,
             int window = 0, DType dtype = DType::kBF16, int misalign = 0) {
  Problem p;
  p.hq = hq;
  p.hkv = hkv;
  p.d = d;
  p.nq = std::move(nq);
  p.kv_len = std::move(kv);
  p.fused = fused;
  p.window = window;
  p.dtype = dtype;
  p.kv_misalign = misalign;
  p.Build(static_cast<uint64_t>(hq * 1000 + d + window), 3.f);
  return p;
}
#endif

TEST(AttentionKernelTest, GpuGenericPathMatchesRef) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  for (DType dt : {DType::kBF16, DType::kF32}) {
    const std::string tag = " fixture heads " + std::string(DTypeName(dt));
    RunGpuCase(Make(4, 2, 16, {1, 7, 733}, {1, 7, 733}, true, 0, dt), {}, "chunks" + tag);
    RunGpuCase(Make(4, 2, 16, {33}, {5033}, false, 0, dt), {}, "query prefill" + tag);
    RunGpuCase(Make(4, 2, 16, {1, 1, 1, 1}, {1, 65, 4000, 24576}, false, 0, dt), {},
               "decode" + tag);
    RunGpuCase(Make(4, 2, 16, {300, 10}, {300, 4}, false, 37, dt), {}, "window" + tag);
  }
  // A head_dim no tensor-core kernel is instantiated for, and a large one.
  RunGpuCase(Make(6, 3, 80, {129, 1}, {129, 500}, false), {}, "head_dim 80");
  RunGpuCase(Make(2, 1, 256, {70}, {70}, true), {}, "head_dim 256");
#endif
}

TEST(AttentionKernelTest, GpuPrefillMatchesRef) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  struct Heads {
    int hq, hkv, d;
  };
  // The automatic choice (the sm_90a variant for head_dim 128 on an H100) and variant 1 forced.
  for (std::optional<AttentionVariant> v :
       {std::optional<AttentionVariant>{}, std::optional{AttentionVariant::kPrefill}}) {
    for (Heads h : {Heads{32, 8, 128}, Heads{16, 4, 64}}) {
      const std::string tag = " d=" + std::to_string(h.d) + (v ? " (variant 1)" : "");
      RunGpuCase(Make(h.hq, h.hkv, h.d, {1, 7, 64, 65, 128, 129, 733},
                      {1, 7, 64, 65, 128, 129, 733}, true),
                 {}, "packed chunks" + tag, v);
      {
        const Problem p = Make(h.hq, h.hkv, h.d, {8192}, {8192}, true);
        RunGpuCase(p, SampleRows(8192, 5), "one 8192 chunk" + tag, v);
      }
      RunGpuCase(Make(h.hq, h.hkv, h.d, {33}, {5033}, false), {}, "query prefill" + tag, v);
      RunGpuCase(Make(h.hq, h.hkv, h.d, {733, 100}, {733, 5000}, false, 100), {},
                 "window 100" + tag, v);
      RunGpuCase(Make(h.hq, h.hkv, h.d, {200}, {200}, true, 64), {}, "window 64" + tag, v);
      RunGpuCase(Make(h.hq, h.hkv, h.d, {80}, {20}, false), {}, "nq > kv_len" + tag, v);
      RunGpuCase(Make(h.hq, h.hkv, h.d, {150, 70}, {150, 900}, false, 0, DType::kBF16, 1), {},
                 "misaligned K/V" + tag, v);
    }
  }
#endif
}

// Rows `rows` of every sequence of `p` (packed indices), where they exist: the first and last
// rows and both sides of each 128-row tile edge near the start and end of the sequence.
std::vector<int64_t> EdgeRows(const Problem& p) {
  std::vector<int64_t> rows;
  for (int b = 0; b < p.num_seqs(); ++b) {
    const int nq = p.nq[b];
    for (int r : {0, 1, 63, 64, 127, 128, 129, 255, 256, nq / 2, nq - 129, nq - 128, nq - 65,
                  nq - 64, nq - 2, nq - 1}) {
      if (r >= 0 && r < nq) rows.push_back(p.q_starts[b] + r);
    }
  }
  for (int32_t r : sieve::testing::RandomInts(64, 11, 0, static_cast<int32_t>(p.total_q() - 1))) {
    rows.push_back(r);
  }
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  return rows;
}

// The Hopper wgmma prefill (kernels/attention_sm90.cu), forced, on awkward shapes: lengths that
// are not tile multiples, several packed sequences (some empty), GQA group 4 and 1, query
// prefill over a longer cache, a window, rows with no visible key, misaligned K/V. Skipped
// where the variant cannot run (not compute capability 9.0 or no sm_90a code).
TEST(AttentionKernelTest, GpuPrefillSm90MatchesRef) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  {
    const Problem probe = Make(32, 8, 128, {300}, {300}, false);
    if (AttentionChooseVariant(probe.Args()) != AttentionVariant::kPrefillSm90) {
      GTEST_SKIP() << "the sm_90a prefill variant does not run on this device";
    }
  }
  const AttentionVariant v = AttentionVariant::kPrefillSm90;
  struct Heads {
    int hq, hkv;
  };
  for (Heads h : {Heads{32, 8}, Heads{8, 8}}) {
    const std::string tag = " hq=" + std::to_string(h.hq) + " hkv=" + std::to_string(h.hkv);
    RunGpuCase(Make(h.hq, h.hkv, 128, {1, 7, 733, 128, 129, 255, 64},
                    {1, 7, 733, 128, 129, 255, 64}, true),
               {}, "sm90 packed chunks" + tag, v);
    {
      const Problem p =
          Make(h.hq, h.hkv, 128, {8191, 1, 3001, 0, 8000}, {8191, 1, 3001, 0, 8000}, true);
      RunGpuCase(p, EdgeRows(p), "sm90 packed 8191/1/3001/0/8000" + tag, v);
    }
    RunGpuCase(Make(h.hq, h.hkv, 128, {33, 300, 1, 129}, {5033, 8000, 4097, 130}, false), {},
               "sm90 query prefill (q < kv)" + tag, v);
    RunGpuCase(Make(h.hq, h.hkv, 128, {0, 200, 0}, {0, 200, 5}, false), {},
               "sm90 empty sequences" + tag, v);
  }
  RunGpuCase(Make(32, 8, 128, {733, 100}, {733, 5000}, false, 100), {}, "sm90 window 100", v);
  RunGpuCase(Make(32, 8, 128, {300}, {300}, true, 64), {}, "sm90 window 64", v);
  RunGpuCase(Make(32, 8, 128, {80, 300}, {20, 0}, false), {}, "sm90 nq > kv_len", v);
  RunGpuCase(Make(32, 8, 128, {150, 70}, {150, 900}, false, 0, DType::kBF16, 1), {},
             "sm90 misaligned K/V", v);
  // NaN rows right after every sequence's keys: no block may read past kv_lens[b], neither
  // through its sequence's tensor map (which must bound the rows per sequence, not per launch)
  // nor on the plain-load path of misaligned K/V.
  for (int misalign : {0, 1}) {
    Problem p;
    p.hq = 32;
    p.hkv = 8;
    p.d = 128;
    p.nq = {300, 1, 129, 40};
    p.kv_len = {300, 4000, 130, 2000};
    p.kv_misalign = misalign;
    p.kv_nan_rows = 3;
    p.Build(91 + misalign, 3.f);
    RunGpuCase(p, {}, "sm90 NaN past each sequence" + std::string(misalign ? " misaligned" : ""),
               v);
  }
  {
    // One long chunk with a peaky softmax (q ~ N(0, 8)): large running-max corrections.
    Problem p = Make(32, 8, 128, {4100}, {4100}, true);
    for (float& x : p.q) x *= 2.5f;
    RunGpuCase(p, EdgeRows(p), "sm90 peaky 4100", v);
  }
#endif
}

TEST(AttentionKernelTest, GpuDecodeMatchesRef) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  struct Heads {
    int hq, hkv, d;
  };
  for (Heads h : {Heads{32, 8, 128}, Heads{16, 4, 64}}) {
    const std::string tag = " d=" + std::to_string(h.d);
    RunGpuCase(
        Make(h.hq, h.hkv, h.d, {1, 1, 1, 1, 1, 1, 1}, {0, 1, 63, 64, 65, 1000, 24576}, false), {},
        "decode batch" + tag);
    RunGpuCase(Make(h.hq, h.hkv, h.d, {1}, {24576}, false), {}, "decode one" + tag);
    RunGpuCase(Make(h.hq, h.hkv, h.d, {2, 2}, {300, 7000}, false), {}, "two rows" + tag);
    RunGpuCase(Make(h.hq, h.hkv, h.d, {3, 1, 2}, {3, 4000, 129}, false), {}, "three rows" + tag);
    // 32 query vectors per KV head (GQA 4 x 8 rows): two 16-row MMA tiles.
    RunGpuCase(Make(h.hq, h.hkv, h.d, {8, 1}, {5000, 300}, false), {}, "eight rows" + tag);
    RunGpuCase(Make(h.hq, h.hkv, h.d, {1, 2}, {3000, 5000}, false, 1000), {},
               "decode window" + tag);
    RunGpuCase(Make(h.hq, h.hkv, h.d, {1, 1}, {777, 5000}, false, 0, DType::kBF16, 1), {},
               "decode misaligned" + tag);
    // Forced partitions: the default floor (512 keys), tile-sized splits up to the merge's
    // 256-split limit, and one split for the whole cache.
    for (int keys : {64, 512, 3000, 24576}) {
      Problem p = Make(h.hq, h.hkv, h.d, {1, 1}, {24576, 1500}, false);
      p.decode_split_keys = keys;
      RunGpuCase(p, {}, "decode keys/split " + std::to_string(keys) + tag);
    }
    // Many sequences: one split each.
    std::vector<int32_t> ones(300, 1), lens(300);
    for (int i = 0; i < 300; ++i) lens[i] = 1 + (i * 37) % 2000;
    RunGpuCase(Make(h.hq, h.hkv, h.d, ones, lens, false), {}, "decode 300 seqs" + tag);
  }
#endif
}

// Each row's scores grow with the key index (K[t][0] = t, Q[.][0] = c): the softmax puts ~all
// mass on the row's last visible key, so the output is that key's V. With `descending`, the first
// visible key (the window's lower edge) takes the mass instead.
TEST(AttentionKernelTest, GpuBoundaryProbe) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  struct Heads {
    int hq, hkv, d;
  };
  for (Heads h : {Heads{32, 8, 128}, Heads{4, 2, 16}}) {
    for (int window : {0, 5, 64}) {
      for (bool descending : {false, true}) {
        if (descending && window == 0) continue;  // the lower edge is key 0 then
        for (auto [nq, kv] :
             {std::pair{200, 200}, std::pair{1, 256}, std::pair{40, 256}, std::pair{3, 130}}) {
          Problem p = Make(h.hq, h.hkv, h.d, {nq}, {kv}, false, window);
          // Q: only dim 0 nonzero; K: dim 0 = +-t (exact in bf16 for t <= 256), others 0.
          std::fill(p.q.begin(), p.q.end(), 0.f);
          for (int64_t r = 0; r < p.total_q(); ++r) {
            for (int hh = 0; hh < p.hq; ++hh) p.q[r * p.q_stride + hh * p.d] = 16.f;
          }
          std::fill(p.k.begin(), p.k.end(), 0.f);
          for (int t = 0; t < kv; ++t) {
            for (int g = 0; g < p.hkv; ++g) {
              p.k[p.kv_offset[0] + t * p.kv_token_stride + g * p.d] =
                  descending ? -float(t) : float(t);
            }
          }
          const std::string what = "probe d=" + std::to_string(h.d) + " nq=" + std::to_string(nq) +
                                   " kv=" + std::to_string(kv) +
                                   " window=" + std::to_string(window) +
                                   (descending ? " lower edge" : " upper edge");
          RunGpuCase(p, {}, what);
          if (h.d == 128 && AttentionChooseVariant(p.Args()) == AttentionVariant::kPrefillSm90) {
            RunGpuCase(p, {}, what + " (variant 1)", AttentionVariant::kPrefill);
          }
        }
      }
    }
  }
#endif
}

}  // namespace
}  // namespace sieve::kernels
