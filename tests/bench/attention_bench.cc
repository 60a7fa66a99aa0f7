// sieve-attention-bench: times LaunchAttention (kernels/attention.cu) on Llama-3.1-8B shapes
// (32 query heads, 8 KV heads, head_dim 128, bf16):
//   prefill  16 x 8192 and 4 x 8192 packed causal chunks, each timed twice: variant 1
//            (mma.sync) forced, then LaunchAttention's choice (the sm_90a wgmma kernel on H100);
//            the "variant" column names the kernel that ran;
//   decode   1 row x 24576 keys, and 16 sequences x 1 row x 24576 keys (split-K decode).
// Each configuration is validated once against AttentionRef (kernels/ref/attention_ref.cc) on
// a sample of rows before it is timed: the "#wrong" column counts elements outside
// atol 1e-2 + rtol 1e-2. Timing: 3 warm-ups, then >= 10 repetitions, each after a 256 MiB write
// that evicts L2, bracketed by CUDA events; the median and minimum are reported with the
// achieved TFLOP/s (prefill) or GB/s (decode). Formulas: tests/bench/METRICS.md.
//
//   ./build-gpu/tests/sieve-attention-bench [--reps N]
//
// Built with -DSIEVE_BUILD_BENCH=ON (target sieve-attention-bench); run by bench/gpu_check.sh.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "kernels/cuda_check.h"
#include "tests/bench/bench_util.h"

namespace sieve::kernels {
namespace {

constexpr int kHq = 32, kHkv = 8, kD = 128;

using bench::DeviceBuffer;

void FillRandom(void* p, int64_t n, uint64_t stream, float stddev) {
  bench::FillRandomBf16(p, n, /*seed=*/1234, stream, stddev);
}

struct Config {
  std::string name;
  std::vector<int32_t> nq, kv_len;  // per sequence
  bool decode;
  int split_keys = 0;  // decode: AttentionArgs::decode_split_keys (0: the launcher's choice)
};

struct Result {
  AttentionVariant variant = AttentionVariant::kGeneric;
  double median_ms = 0, min_ms = 0;
  int64_t wrong = 0, checked = 0;
};

// Sampled rows of sequence `b` against AttentionRef (one-row sub-problems, as the unit test).
void Validate(const AttentionArgs& a, const Config& c, const std::vector<int32_t>& q_starts,
              const std::vector<const void*>& k_dev, const std::vector<const void*>& v_dev,
              Result* result) {
  const int nseq = static_cast<int>(c.nq.size());
  for (int b : {0, nseq - 1}) {
    const int nq = c.nq[b], kv = c.kv_len[b];
    std::vector<int> rows = {0, 1, 63, 64, 65, 127, 128, 129, nq / 2, nq - 129, nq - 2, nq - 1};
    std::erase_if(rows, [nq](int r) { return r < 0 || r >= nq; });
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    // Host copies of this sequence's K and V (token stride kHkv * kD) and of the chosen rows.
    const size_t kv_elems = size_t(kv) * a.kv_token_stride;
    std::vector<uint16_t> k(std::max<size_t>(kv_elems, 1)), v(std::max<size_t>(kv_elems, 1));
    SIEVE_CUDA_CHECK(cudaMemcpy(k.data(), k_dev[b], kv_elems * 2, cudaMemcpyDeviceToHost));
    SIEVE_CUDA_CHECK(cudaMemcpy(v.data(), v_dev[b], kv_elems * 2, cudaMemcpyDeviceToHost));
    const size_t row_elems = size_t(kHq) * kD;
    std::vector<uint16_t> q(rows.size() * row_elems), got(rows.size() * row_elems),
        want(rows.size() * row_elems);
    std::vector<int32_t> starts = {0}, lens;
    std::vector<const void*> ks, vs;
    for (size_t j = 0; j < rows.size(); ++j) {
      const int64_t row = q_starts[b] + rows[j];
      SIEVE_CUDA_CHECK(cudaMemcpy(q.data() + j * row_elems,
                                  static_cast<const uint16_t*>(a.q) + row * a.q_stride,
                                  row_elems * 2, cudaMemcpyDeviceToHost));
      SIEVE_CUDA_CHECK(cudaMemcpy(got.data() + j * row_elems,
                                  static_cast<const uint16_t*>(a.out) + row * a.out_stride,
                                  row_elems * 2, cudaMemcpyDeviceToHost));
      starts.push_back(starts.back() + 1);
      lens.push_back(std::max(0, kv - (nq - 1 - rows[j])));
      ks.push_back(k.data());
      vs.push_back(v.data());
    }
    AttentionArgs r = a;
    r.q = q.data();
    r.out = want.data();
    r.k_seqs = ks.data();
    r.v_seqs = vs.data();
    r.q_starts = starts.data();
    r.kv_lens = lens.data();
    r.num_seqs = static_cast<int>(rows.size());
    r.total_q = static_cast<int64_t>(rows.size());
    r.max_q_len = 1;
    r.max_kv_len = kv;
    r.q_stride = static_cast<int64_t>(row_elems);
    r.out_stride = static_cast<int64_t>(row_elems);
    AttentionRef(r);
    for (size_t i = 0; i < got.size(); ++i) {
      const double g = BF16ToFloat(got[i]), w = BF16ToFloat(want[i]);
      ++result->checked;
      if (!(std::abs(g - w) <= 1e-2 + 1e-2 * std::abs(w))) ++result->wrong;
    }
  }
}

// Times `variant` when set (LaunchAttentionVariant), else LaunchAttention's own choice.
Result Run(const Config& c, int reps, DeviceBuffer& flush,
           std::optional<AttentionVariant> variant) {
  const int nseq = static_cast<int>(c.nq.size());
  std::vector<int32_t> q_starts = {0};
  int max_q = 0, max_kv = 0;
  int64_t kv_total = 0;
  for (int b = 0; b < nseq; ++b) {
    q_starts.push_back(q_starts.back() + c.nq[b]);
    max_q = std::max(max_q, c.nq[b]);
    max_kv = std::max(max_kv, c.kv_len[b]);
    kv_total += c.kv_len[b];
  }
  const int64_t total_q = q_starts.back();
  const int64_t kv_stride = int64_t{kHkv} * kD;  // cache layout [tokens][kv heads][d]
  DeviceBuffer q(total_q * kHq * kD * 2), out(total_q * kHq * kD * 2);
  DeviceBuffer k(kv_total * kv_stride * 2), v(kv_total * kv_stride * 2);
  FillRandom(q.get(), total_q * kHq * kD, 1, 2.f);
  FillRandom(k.get(), kv_total * kv_stride, 2, 1.f);
  FillRandom(v.get(), kv_total * kv_stride, 3, 1.f);
  std::vector<const void*> k_ptrs, v_ptrs;
  int64_t off = 0;
  for (int b = 0; b < nseq; ++b) {
    k_ptrs.push_back(k.get<uint16_t>() + off * kv_stride);
    v_ptrs.push_back(v.get<uint16_t>() + off * kv_stride);
    off += c.kv_len[b];
  }
  DeviceBuffer d_k_ptrs(nseq * sizeof(void*)), d_v_ptrs(nseq * sizeof(void*));
  DeviceBuffer d_starts((nseq + 1) * 4), d_lens(nseq * 4);
  SIEVE_CUDA_CHECK(
      cudaMemcpy(d_k_ptrs.get(), k_ptrs.data(), nseq * sizeof(void*), cudaMemcpyHostToDevice));
  SIEVE_CUDA_CHECK(
      cudaMemcpy(d_v_ptrs.get(), v_ptrs.data(), nseq * sizeof(void*), cudaMemcpyHostToDevice));
  SIEVE_CUDA_CHECK(
      cudaMemcpy(d_starts.get(), q_starts.data(), (nseq + 1) * 4, cudaMemcpyHostToDevice));
  SIEVE_CUDA_CHECK(cudaMemcpy(d_lens.get(), c.kv_len.data(), nseq * 4, cudaMemcpyHostToDevice));
  AttentionArgs a{.q = q.get(),
                  .out = out.get(),
                  .k_seqs = d_k_ptrs.get<const void* const>(),
                  .v_seqs = d_v_ptrs.get<const void* const>(),
                  .kv_token_stride = kv_stride,
                  .kv_head_stride = kD,
                  .q_starts = d_starts.get<int32_t>(),
                  .kv_lens = d_lens.get<int32_t>(),
                  .num_seqs = nseq,
                  .total_q = total_q,
                  .max_q_len = max_q,
                  .max_kv_len = max_kv,
                  .num_q_heads = kHq,
                  .num_kv_heads = kHkv,
                  .head_dim = kD,
                  .q_stride = int64_t{kHq} * kD,
                  .out_stride = int64_t{kHq} * kD,
                  .scale = 1.f / std::sqrt(float(kD)),
                  .window = 0,
                  .dtype = DType::kBF16,
                  .decode_split_keys = c.split_keys};
  const size_t ws_bytes = AttentionWorkspaceBytes(a);
  DeviceBuffer ws(ws_bytes);
  const AttentionVariant chosen = variant.value_or(AttentionChooseVariant(a));
  auto launch = [&] {
    SIEVE_CUDA_CHECK(LaunchAttentionVariant(a, chosen, ws.get(), ws_bytes, nullptr));
  };

  Result result;
  result.variant = chosen;
  // Poison the output (NaN bf16) so rows the kernel does not write fail validation.
  SIEVE_CUDA_CHECK(cudaMemset(out.get(), 0xff, out.bytes()));
  launch();
  SIEVE_CUDA_CHECK(cudaDeviceSynchronize());
  // Validation (host pointers for the reference copies; device pointers for the copies).
  AttentionArgs host_view = a;
  Validate(host_view, c, q_starts, k_ptrs, v_ptrs, &result);

  const bench::Timing t = bench::TimeFlushed(launch, flush, reps);
  result.median_ms = t.median_ms;
  result.min_ms = t.min_ms;
  return result;
}

}  // namespace
}  // namespace sieve::kernels

int main(int argc, char** argv) {
  using namespace sieve::kernels;
  int reps = 20;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0) reps = std::max(10, std::atoi(argv[i + 1]));
  }
  int device_count = 0;
  if (cudaGetDeviceCount(&device_count) != cudaSuccess || device_count == 0) {
    std::printf("sieve-attention-bench: no CUDA device, nothing to time\n");
    return 0;
  }
  cudaDeviceProp prop{};
  SIEVE_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf(
      "# sieve-attention-bench on %s (%d SMs), bf16, %d q heads / %d kv heads / d %d, "
      "median of %d reps after 3 warm-ups, L2 flushed per rep\n",
      prop.name, prop.multiProcessorCount, kHq, kHkv, kD, reps);
  std::printf("%-28s %-20s %10s %10s %12s %10s %8s\n", "config", "variant", "median_ms", "min_ms",
              "TFLOP/s", "GB/s", "#wrong");
  DeviceBuffer flush(size_t{256} << 20);
  const std::vector<Config> configs = {
      {"prefill causal 16x8192", std::vector<int32_t>(16, 8192), std::vector<int32_t>(16, 8192),
       false},
      {"prefill causal 4x8192", std::vector<int32_t>(4, 8192), std::vector<int32_t>(4, 8192),
       false},
      {"decode 1x24576", {1}, {24576}, true},
      // Other partitions of the same work (the default is 768 keys per block: 256 blocks).
      {"decode 1x24576 keys/split 256", {1}, {24576}, true, 256},
      {"decode 1x24576 keys/split 512", {1}, {24576}, true, 512},
      {"decode 1x24576 keys/split 1024", {1}, {24576}, true, 1024},
      {"decode 1x24576 keys/split 2048", {1}, {24576}, true, 2048},
      {"decode 16 seqs x 24576", std::vector<int32_t>(16, 1), std::vector<int32_t>(16, 24576),
       true},
  };
  int failures = 0;
  // Prefill configurations run twice: variant 1 (mma.sync) forced, then LaunchAttention's choice
  // (the sm_90a wgmma kernel on an H100), so one run reports before and after.
  std::vector<std::pair<Config, std::optional<AttentionVariant>>> runs;
  for (const Config& c : configs) {
    if (!c.decode) runs.push_back({c, AttentionVariant::kPrefill});
    runs.push_back({c, std::nullopt});
  }
  for (const auto& [c, variant] : runs) {
    const Result r = Run(c, reps, flush, variant);
    double flops = 0, bytes = 0;
    for (size_t b = 0; b < c.nq.size(); ++b) {
      const double s = c.nq[b];
      // Causal: 2 matmuls x 2 flop per multiply-add x S^2 d per head, halved by the mask.
      flops += 2.0 * 2.0 * s * s * kD * kHq / 2.0;
      // Decode: K and V of every key read once, plus q and out.
      bytes += 2.0 * c.kv_len[b] * kHkv * kD * 2 + 2.0 * c.nq[b] * kHq * kD * 2;
    }
    if (c.decode) {
      std::printf("%-28s %-20s %10.4f %10.4f %12s %10.1f %4lld/%lld\n", c.name.c_str(),
                  AttentionVariantName(r.variant), r.median_ms, r.min_ms, "-",
                  bytes / (r.median_ms * 1e-3) / 1e9, static_cast<long long>(r.wrong),
                  static_cast<long long>(r.checked));
    } else {
      std::printf("%-28s %-20s %10.4f %10.4f %12.1f %10s %4lld/%lld\n", c.name.c_str(),
                  AttentionVariantName(r.variant), r.median_ms, r.min_ms,
                  flops / (r.median_ms * 1e-3) / 1e12, "-", static_cast<long long>(r.wrong),
                  static_cast<long long>(r.checked));
    }
    failures += r.wrong > 0;
  }
  return failures == 0 ? 0 : 1;
}
