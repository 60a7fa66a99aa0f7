// sieve-gemm-bench: the decode-sized products of Llama-3.1-8B (1 and 8 rows against each
// weight: fused QKV 6144 x 4096, attention output 4096 x 4096, fused gate-up 28672 x 4096, down
// 4096 x 14336, LM head 128256 x 4096 with fp32 logits), timed with cuBLASLt
// (kernels/gemm_cublas.h) and with the skinny kernel (kernels/gemm_skinny.h). Each output is
// first compared between the two (max relative difference printed). Timing: 3 warm-ups, then
// 20 repetitions each after a 256 MiB write that evicts L2, bracketed by CUDA events; the median
// is reported as microseconds and as GB/s of weight read (the bytes that bound the op).
//
// With `prefill [M]` (default M = 32768, the rows of one prefill forward of four 8K chunks) it
// times instead every candidate algorithm cuBLASLt's heuristic offers (CublasLtGemm::
// RunCandidate, up to kMaxCandidates) for the four projections at M rows, with the epilogues the
// transformer uses: bf16 out; and for O / down also the residual add (beta = 1) into a bf16 or
// an fp32 residual. It prints µs and TFLOP/s per candidate; candidate 0 is what Run uses.
//
//   ./build-gpu/tests/sieve-gemm-bench [prefill [M]]
//
// Built with -DSIEVE_BUILD_BENCH=ON (target sieve-gemm-bench); run by bench/gpu_run.sh bench.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cuda_check.h"
#include "kernels/dtype.h"
#include "kernels/gemm_cublas.h"
#include "kernels/gemm_skinny.h"
#include "tests/bench/bench_util.h"

namespace sieve::kernels {
namespace {

using bench::DeviceBuffer;

double MedianMicros(const std::function<void()>& run, const DeviceBuffer& flush) {
  return bench::TimeFlushed(run, flush, /*reps=*/20).median_ms * 1e3;
}

std::vector<float> ToHost(const void* p, int64_t n, DType dtype) {
  std::vector<uint8_t> raw(size_t(n) * DTypeSize(dtype));
  SIEVE_CUDA_CHECK(cudaMemcpy(raw.data(), p, raw.size(), cudaMemcpyDeviceToHost));
  std::vector<float> out(n);
  for (int64_t i = 0; i < n; ++i) out[i] = LoadAsFloat(raw.data(), dtype, i);
  return out;
}

int Prefill(int64_t m) {
  struct Shape {
    const char* name;
    int64_t n, k;
    bool residual;  // the transformer adds this product into the residual stream
  };
  const Shape shapes[] = {{"qkv", 6144, 4096, false},
                          {"o_proj", 4096, 4096, true},
                          {"gate_up", 28672, 4096, false},
                          {"down", 4096, 14336, true}};
  std::unique_ptr<CublasLtGemm> cublas;
  SIEVE_CUDA_CHECK(CublasLtGemm::Create(CublasLtGemm::kDefaultWorkspaceBytes, &cublas));
  const DeviceBuffer flush(size_t{256} << 20);
  std::printf("%-8s %6s %6s %6s %-5s %4s | %4s %10s %8s\n", "op", "m", "n", "k", "y", "beta",
              "algo", "us", "TFLOP/s");
  for (const Shape& s : shapes) {
    const DeviceBuffer w(size_t(s.n) * s.k * 2), x(size_t(m) * s.k * 2), y(size_t(m) * s.n * 4);
    bench::FillRandomBf16(w.get(), s.n * s.k, /*seed=*/99, /*stream=*/1, 0.02f);
    bench::FillRandomBf16(x.get(), m * s.k, /*seed=*/99, /*stream=*/2, 1.f);
    struct Epilogue {
      DType y;
      float beta;
    };
    std::vector<Epilogue> epilogues = {{DType::kBF16, 0.f}};
    if (s.residual) epilogues.insert(epilogues.end(), {{DType::kBF16, 1.f}, {DType::kF32, 1.f}});
    for (const Epilogue& e : epilogues) {
      bench::FillRandomBf16(y.get(), m * s.n, /*seed=*/99, /*stream=*/3, 1.f);
      const GemmArgs a =
          DenseGemmArgs(x.get(), w.get(), y.get(), m, s.n, s.k, DType::kBF16, e.y, e.beta);
      cudaError_t err;
      const int candidates = cublas->NumCandidates(a, &err);
      SIEVE_CUDA_CHECK(err);
      for (int c = 0; c < candidates; ++c) {
        const double ms =
            bench::TimeFlushed([&] { SIEVE_CUDA_CHECK(cublas->RunCandidate(a, c, nullptr)); },
                               flush, /*reps=*/10)
                .median_ms;
        std::printf("%-8s %6lld %6lld %6lld %-5s %4.0f | %4d %10.1f %8.1f\n", s.name,
                    static_cast<long long>(m), static_cast<long long>(s.n),
                    static_cast<long long>(s.k), DTypeName(e.y).data(), e.beta, c, ms * 1e3,
                    2.0 * m * s.n * s.k / ms / 1e9);
      }
    }
  }
  return 0;
}

int Main() {
  struct Shape {
    const char* name;
    int64_t n, k;
    DType y;
  };
  const Shape shapes[] = {{"qkv", 6144, 4096, DType::kBF16},
                          {"o_proj", 4096, 4096, DType::kBF16},
                          {"gate_up", 28672, 4096, DType::kBF16},
                          {"down", 4096, 14336, DType::kBF16},
                          {"lm_head", 128256, 4096, DType::kF32}};
  std::unique_ptr<CublasLtGemm> cublas;
  SIEVE_CUDA_CHECK(CublasLtGemm::Create(CublasLtGemm::kDefaultWorkspaceBytes, &cublas));
  const DeviceBuffer flush(size_t{256} << 20);
  std::printf("%-8s %3s %7s %6s | %10s %8s | %10s %8s | %7s %9s\n", "op", "m", "n", "k",
              "cuBLAS us", "GB/s", "skinny us", "GB/s", "speedup", "max_rdiff");
  for (const Shape& s : shapes) {
    const DeviceBuffer w(size_t(s.n) * s.k * 2);
    bench::FillRandomBf16(w.get(), s.n * s.k, /*seed=*/99, /*stream=*/1, 0.02f);
    for (int64_t m : {1, 8}) {
      const DeviceBuffer x(size_t(m) * s.k * 2), y_ref(size_t(m) * s.n * 4), y(size_t(m) * s.n * 4);
      bench::FillRandomBf16(x.get(), m * s.k, /*seed=*/99, /*stream=*/2, 1.f);
      const GemmArgs a =
          DenseGemmArgs(x.get(), w.get(), y_ref.get(), m, s.n, s.k, DType::kBF16, s.y);
      const GemmArgs b = DenseGemmArgs(x.get(), w.get(), y.get(), m, s.n, s.k, DType::kBF16, s.y);
      SIEVE_CUDA_CHECK(cublas->Run(a, nullptr));
      SIEVE_CUDA_CHECK(LaunchSkinnyGemm(b, nullptr));
      SIEVE_CUDA_CHECK(cudaDeviceSynchronize());
      const auto want = ToHost(y_ref.get(), m * s.n, s.y), got = ToHost(y.get(), m * s.n, s.y);
      double max_rdiff = 0;
      for (size_t i = 0; i < want.size(); ++i) {
        max_rdiff = std::max(max_rdiff, std::abs(double(got[i]) - want[i]) /
                                            std::max(1e-3, std::abs(double(want[i]))));
      }
      const double t_cublas =
          MedianMicros([&] { SIEVE_CUDA_CHECK(cublas->Run(a, nullptr)); }, flush);
      const double t_skinny =
          MedianMicros([&] { SIEVE_CUDA_CHECK(LaunchSkinnyGemm(b, nullptr)); }, flush);
      const double bytes = double(s.n) * s.k * 2;
      std::printf("%-8s %3lld %7lld %6lld | %10.1f %8.0f | %10.1f %8.0f | %6.2fx %9.2e\n", s.name,
                  static_cast<long long>(m), static_cast<long long>(s.n),
                  static_cast<long long>(s.k), t_cublas, bytes / t_cublas / 1e3, t_skinny,
                  bytes / t_skinny / 1e3, t_cublas / t_skinny, max_rdiff);
    }
  }
  return 0;
}

}  // namespace
}  // namespace sieve::kernels

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "prefill") {
    return sieve::kernels::Prefill(argc >= 3 ? std::atoll(argv[2]) : 32768);
  }
  return sieve::kernels::Main();
}
