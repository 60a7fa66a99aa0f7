// sieve-gemm-swiglu-bench: the MLP gate-up of Llama-3.1-8B (k 4096, inter 14336, bf16) at
// m = 8192, 16384 and 32768 rows, two ways:
//   unfused  cuBLASLt y[m, 28672] = x · W_gate_upᵀ (kernels/gemm_cublas.h), then LaunchSiluMul
//            (kernels/silu_mul.h); each timed alone and both in one timed region;
//   fused    LaunchGemmSwigluSm90 (kernels/gemm_swiglu.h) on the interleaved weight, in each
//            schedule, plus each main loop alone (a diagnostic with wrong results: no epilogue).
// TFLOP/s = 2 · m · (2 · inter) · k / median time for every row (the SiLU·mul alone: GB/s of its
// 3 · m · inter · 2 bytes). Before timing, each fused schedule is checked against GemmSwigluRef
// on 16 sampled rows (#wrong: elements outside atol 5e-2 + rtol 1e-2, see METRICS.md), and the
// fused output is compared with the unfused one over every element: max |a - b|, max relative
// difference (|a - b| / max(|b|, 1e-2)) and ‖a - b‖ / ‖b‖. The two differ by design: the unfused
// path rounds g and u to bf16 before the SiLU, the fused kernel keeps them in fp32.
// Timing: 2 warm-ups of every op, then --reps rounds (default 20) that run every op once, in a
// random order per round, each run after a 256 MiB write that evicts L2 and bracketed by CUDA
// events; the median and minimum per op are reported, and "vs unfused" is the median over rounds of
// the unfused time divided by the op's time in the same round (the card throttles under sustained
// GEMMs: interleaving the ops gives each the same clocks, where timing one op after another did
// not); "vs coop" likewise against "fused coop 128x256" (kCooperative128x256, the schedule
// LaunchGemmSwigluSm90 runs).
//
//   ./build-gpu/tests/sieve-gemm-swiglu-bench [--reps N] [--m M]...   (--m repeatable)
//
// Built with -DSIEVE_BUILD_BENCH=ON (target sieve-gemm-swiglu-bench). Exits 1 if any element is
// wrong.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda_check.h"
#include "kernels/dtype.h"
#include "kernels/gemm_cublas.h"
#include "kernels/gemm_swiglu.h"
#include "kernels/silu_mul.h"
#include "tests/bench/bench_util.h"

namespace sieve::kernels {
namespace {

using bench::DeviceBuffer;

constexpr int64_t kHidden = 4096;
constexpr int64_t kInter = 14336;

std::vector<uint16_t> ToHost(const void* p, int64_t n) {
  std::vector<uint16_t> out(n);
  SIEVE_CUDA_CHECK(cudaMemcpy(out.data(), p, n * 2, cudaMemcpyDeviceToHost));
  return out;
}

// Fused output rows `rows` against GemmSwigluRef: number of elements outside atol + rtol |ref|.
int64_t CountWrong(const std::vector<uint16_t>& x, const std::vector<uint16_t>& w_il,
                   const std::vector<uint16_t>& got, const std::vector<int64_t>& rows) {
  std::vector<uint16_t> sub_x, want(rows.size() * kInter);
  for (int64_t r : rows) {
    sub_x.insert(sub_x.end(), x.begin() + r * kHidden, x.begin() + (r + 1) * kHidden);
  }
  GemmSwigluRef({.x = sub_x.data(),
                 .w = w_il.data(),
                 .out = want.data(),
                 .m = static_cast<int64_t>(rows.size()),
                 .inter = kInter,
                 .k = kHidden,
                 .ldx = kHidden,
                 .ldo = kInter,
                 .dtype = DType::kBF16});
  int64_t wrong = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    for (int64_t c = 0; c < kInter; ++c) {
      const double g = BF16ToFloat(got[i * kInter + c]), e = BF16ToFloat(want[i * kInter + c]);
      if (!(std::abs(g - e) <= 5e-2 + 1e-2 * std::abs(e))) ++wrong;
    }
  }
  return wrong;
}

int Main(int argc, char** argv) {
  int reps = 20;
  std::vector<int64_t> ms;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--reps") == 0) reps = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--m") == 0) ms.push_back(std::atoll(argv[i + 1]));
  }
  if (ms.empty()) ms = {8192, 16384, 32768};
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines reach a pipe even if the run is cut off
  if (!GemmSwigluSm90DeviceOk()) {
    std::printf("sieve-gemm-swiglu-bench: the device is not sm_90a; nothing to time\n");
    return 0;
  }
  const int64_t max_m = *std::max_element(ms.begin(), ms.end());
  std::unique_ptr<CublasLtGemm> cublas;
  SIEVE_CUDA_CHECK(CublasLtGemm::Create(CublasLtGemm::kDefaultWorkspaceBytes, &cublas));
  const DeviceBuffer flush(size_t{256} << 20);
  const DeviceBuffer x(size_t(max_m) * kHidden * 2), w(size_t(2 * kInter) * kHidden * 2),
      w_il(size_t(2 * kInter) * kHidden * 2), gate_up(size_t(max_m) * 2 * kInter * 2),
      out_a(size_t(max_m) * kInter * 2), out_b(size_t(max_m) * kInter * 2);
  bench::FillRandomBf16(x.get(), max_m * kHidden, /*seed=*/7, /*stream=*/1, 1.f);
  bench::FillRandomBf16(w.get(), 2 * kInter * kHidden, /*seed=*/7, /*stream=*/2, 0.02f);
  SIEVE_CUDA_CHECK(LaunchSwigluInterleave(
      {.src = w.get(), .dst = w_il.get(), .inter = kInter, .k = kHidden, .dtype = DType::kBF16},
      nullptr));
  SIEVE_CUDA_CHECK(cudaDeviceSynchronize());
  const auto w_il_host = ToHost(w_il.get(), 2 * kInter * kHidden);

  bool all_right = true;
  for (const int64_t m : ms) {
    const double flop = 2.0 * m * (2 * kInter) * kHidden;
    const GemmArgs gemm{.x = x.get(),
                        .w = w.get(),
                        .y = gate_up.get(),
                        .m = m,
                        .n = 2 * kInter,
                        .k = kHidden,
                        .ldx = kHidden,
                        .ldy = 2 * kInter,
                        .x_dtype = DType::kBF16,
                        .w_dtype = DType::kBF16,
                        .y_dtype = DType::kBF16};
    const SiluMulArgs silu{.gate_up = gate_up.get(),
                           .out = out_a.get(),
                           .rows = m,
                           .inter = kInter,
                           .dtype = DType::kBF16};
    const GemmSwigluArgs fused{.x = x.get(),
                               .w = w_il.get(),
                               .out = out_b.get(),
                               .m = m,
                               .inter = kInter,
                               .k = kHidden,
                               .ldx = kHidden,
                               .ldo = kInter,
                               .dtype = DType::kBF16};
    auto run_gemm = [&] { SIEVE_CUDA_CHECK(cublas->Run(gemm, nullptr)); };
    auto run_silu = [&] { SIEVE_CUDA_CHECK(LaunchSiluMul(silu, nullptr)); };

    // Unfused reference output (also the warm-up of cuBLAS's plan).
    run_gemm();
    run_silu();
    SIEVE_CUDA_CHECK(cudaDeviceSynchronize());
    const auto a = ToHost(out_a.get(), m * kInter);

    std::vector<int64_t> rows = {0, m - 1};
    for (int i = 1; i < 15; ++i) rows.push_back(std::min(m - 1, m * i / 15 + 37 * i));
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    const auto x_host = ToHost(x.get(), m * kHidden);
    struct Variant {
      const char* name;
      GemmSwigluSchedule schedule;
      cudaError_t Launch(const GemmSwigluArgs& args) const {
        return LaunchGemmSwigluSm90(args, schedule, nullptr);
      }
    };
    // variants[0] must stay kCooperative128x256: the "vs coop" column divides by it.
    const Variant variants[] = {
        {"fused coop 128x256", GemmSwigluSchedule::kCooperative128x256},
        {"fused coop 128x256 cluster 2", GemmSwigluSchedule::kCooperativeCluster2},
        {"fused pingpong 128x128", GemmSwigluSchedule::kPingPong128x128}};
    std::vector<int64_t> wrong_of;
    for (const Variant& v : variants) {
      SIEVE_CUDA_CHECK(cudaMemset(out_b.get(), 0xff, size_t(m) * kInter * 2));
      SIEVE_CUDA_CHECK(v.Launch(fused));
      SIEVE_CUDA_CHECK(cudaDeviceSynchronize());
      const auto b = ToHost(out_b.get(), m * kInter);
      std::vector<uint16_t> got;
      for (int64_t r : rows) {
        got.insert(got.end(), b.begin() + r * kInter, b.begin() + (r + 1) * kInter);
      }
      const int64_t wrong = CountWrong(x_host, w_il_host, got, rows);
      wrong_of.push_back(wrong);
      // Fused (b) against unfused (a), every element.
      double max_abs = 0, max_rel = 0, diff2 = 0, norm2 = 0;
      int64_t nan = 0;
      for (int64_t i = 0; i < m * kInter; ++i) {
        const double va = BF16ToFloat(a[i]), vb = BF16ToFloat(b[i]);
        if (std::isnan(va) || std::isnan(vb)) {
          ++nan;
          continue;
        }
        const double d = std::abs(va - vb);
        max_abs = std::max(max_abs, d);
        max_rel = std::max(max_rel, d / std::max(std::abs(vb), 1e-2));
        diff2 += d * d;
        norm2 += vb * vb;
      }
      all_right = all_right && wrong == 0 && nan == 0;
      std::printf(
          "m=%lld %-30s #wrong %lld of %zu vs GemmSwigluRef; vs unfused: max|a-b| %.3g,"
          " max rel %.3g, |a-b|/|b| %.3g, NaN %lld\n",
          static_cast<long long>(m), v.name, static_cast<long long>(wrong), got.size(), max_abs,
          max_rel, std::sqrt(diff2 / norm2), static_cast<long long>(nan));
    }

    // Timing: every op once per round, rounds repeated, so clock and thermal drift (the card
    // throttles under sustained GEMMs) falls on all ops alike.
    struct Op {
      std::string name;
      std::function<void()> run;
      std::vector<float> ms;
    };
    std::vector<Op> ops;
    ops.push_back({"cublas gate-up", run_gemm, {}});
    ops.push_back({"silu_mul", run_silu, {}});
    ops.push_back({"cublas gate-up + silu_mul",
                   [&] {
                     run_gemm();
                     run_silu();
                   },
                   {}});
    for (const Variant& v : variants) {
      ops.push_back(
          {v.name,
           [&fused, &v] { SIEVE_CUDA_CHECK(LaunchGemmSwigluSm90(fused, v.schedule, nullptr)); },
           {}});
    }
    for (const Variant& v : variants) {
      ops.push_back({std::string("  main loop only: ") + v.name,
                     [&fused, &v] {
                       SIEVE_CUDA_CHECK(
                           LaunchGemmSwigluSm90MainLoopOnly(fused, v.schedule, nullptr));
                     },
                     {}});
    }
    cudaEvent_t start = nullptr, stop = nullptr;
    SIEVE_CUDA_CHECK(cudaEventCreate(&start));
    SIEVE_CUDA_CHECK(cudaEventCreate(&stop));
    for (Op& op : ops) {
      for (int i = 0; i < 2; ++i) op.run();  // warm-up
    }
    // Each round runs the ops in a fresh random order (fixed seed): the card is held at its
    // power limit and an op's clocks depend on what ran just before it (in a fixed order, the op
    // after a slow one ran measurably faster), so no op may always follow the same one.
    std::vector<size_t> order(ops.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::mt19937 rng(12345);
    for (int rep = 0; rep < reps; ++rep) {
      std::shuffle(order.begin(), order.end(), rng);
      for (const size_t o : order) {
        Op& op = ops[o];
        SIEVE_CUDA_CHECK(cudaMemsetAsync(flush.get(), rep & 0xff, flush.bytes(), nullptr));
        SIEVE_CUDA_CHECK(cudaEventRecord(start, nullptr));
        op.run();
        SIEVE_CUDA_CHECK(cudaEventRecord(stop, nullptr));
        SIEVE_CUDA_CHECK(cudaEventSynchronize(stop));
        float ms = 0;
        SIEVE_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
        op.ms.push_back(ms);
      }
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    auto median = [](std::vector<float> v) {
      std::sort(v.begin(), v.end());
      return double(v[v.size() / 2]);
    };
    std::printf("%6s  %-42s %10s %10s %9s %9s %9s\n", "m", "op", "median us", "min us", "TFLOP/s",
                "vs unfused", "vs coop");
    const std::vector<float>& unfused = ops[2].ms;
    const std::vector<float>& coop = ops[3].ms;  // variants[0]: kCooperative128x256
    for (size_t o = 0; o < ops.size(); ++o) {
      const Op& op = ops[o];
      const double med = median(op.ms);
      const double mn = *std::min_element(op.ms.begin(), op.ms.end());
      // Median over rounds of (unfused time / this op's time) in the same round.
      std::vector<float> ratio, ratio_coop;
      for (int r = 0; r < reps; ++r) {
        ratio.push_back(unfused[r] / op.ms[r]);
        ratio_coop.push_back(coop[r] / op.ms[r]);
      }
      std::printf("%6lld  %-42s %10.1f %10.1f", static_cast<long long>(m), op.name.c_str(),
                  med * 1e3, mn * 1e3);
      if (o == 1) {
        std::printf(" %7.0f GB/s\n", 3.0 * m * kInter * 2 / (med * 1e-3) / 1e9);
      } else {
        std::printf(" %9.1f %8.3fx %8.3fx\n", flop / (med * 1e-3) / 1e12, median(ratio),
                    median(ratio_coop));
      }
    }
    std::fflush(stdout);
  }
  return all_right ? 0 : 1;
}

}  // namespace
}  // namespace sieve::kernels

int main(int argc, char** argv) { return sieve::kernels::Main(argc, argv); }
