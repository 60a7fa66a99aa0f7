// GEMM (kernels/gemm.h): GemmRef against a naive double-precision product (fp32 and bf16
// operands, alpha / beta, padded row strides), and CublasLtGemm (kernels/gemm_cublas.h) against
// GemmRef on the same bf16 operands: bf16 output within one bf16 rounding plus the fp32
// accumulation-order error, fp32 output (the LM-head logits) within the accumulation error.
// Shapes: m {1, 7, 733, 8192} x n {37, 64, 128, 4096} x k {64, 128, 4096} (large products are
// checked on a sample of rows), the LM head (m 3, n 128256, k 4096), alpha 2 / beta 0.5, and
// unsupported dtype combinations (cudaErrorNotSupported); and every candidate algorithm of the
// heuristic, and the one Tune picks, for the transformer's epilogues (bf16 out, residual add into
// bf16 / fp32).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/gemm.h"
#include "tests/unit/kernels/gpu_test_util.h"

#if SIEVE_WITH_CUDA
#include "kernels/gemm_cublas.h"
#endif

namespace sieve::kernels {
namespace {

using sieve::testing::AllClose;
using sieve::testing::FromBytes;
using sieve::testing::ToBytes;

TEST(GemmKernelTest, RefMatchesNaive) {
  for (DType dt : {DType::kF32, DType::kBF16}) {
    for (int64_t m : {1, 7, 33}) {
      for (int64_t n : {37, 64}) {
        for (int64_t k : {64, 300}) {
          const int64_t ldx = k + 3, ldy = n + 5;
          const float alpha = 2.f, beta = 0.5f;
          const auto x = ToBytes(sieve::testing::RandomNormal(m * ldx, 1), dt);
          const auto w = ToBytes(sieve::testing::RandomNormal(n * k, 2), dt);
          const auto y0 = sieve::testing::RandomNormal(m * ldy, 3);
          auto y = ToBytes(y0, DType::kF32);
          GemmRef({.x = x.data(),
                   .w = w.data(),
                   .y = y.data(),
                   .m = m,
                   .n = n,
                   .k = k,
                   .ldx = ldx,
                   .ldy = ldy,
                   .alpha = alpha,
                   .beta = beta,
                   .x_dtype = dt,
                   .w_dtype = dt,
                   .y_dtype = DType::kF32});
          const auto xf = FromBytes(x, dt, m * ldx), wf = FromBytes(w, dt, n * k);
          std::vector<float> want = y0;
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < n; ++j) {
              double acc = 0;
              for (int64_t p = 0; p < k; ++p) acc += double(xf[i * ldx + p]) * wf[j * k + p];
              want[i * ldy + j] = static_cast<float>(alpha * acc + beta * double(y0[i * ldy + j]));
            }
          }
          EXPECT_TRUE(AllClose(FromBytes(y, DType::kF32, m * ldy), want, {1e-4, 1e-5},
                               "gemm ref " + std::string(DTypeName(dt))));
        }
      }
    }
  }
}

#if SIEVE_WITH_CUDA
// Which algorithm RunGpuCase runs: the plan's current choice, one candidate, or the tuned one.
constexpr int kCurrent = -1, kTuned = -2;

// Runs one product on the GPU and compares rows `rows` with GemmRef.
void RunGpuCase(CublasLtGemm& gemm, int64_t m, int64_t n, int64_t k, DType y_dtype, float alpha,
                float beta, bool sample_rows, int algo = kCurrent) {
  using sieve::testing::DeviceMemory;
  const int64_t ldx = k, ldy = n;
  const auto [x, w, y0] = sieve::testing::MakeGemmOperands(m, n, k, ldx, ldy, y_dtype);
  DeviceMemory d_x = DeviceMemory::From(x), d_w = DeviceMemory::From(w),
               d_y = DeviceMemory::From(y0);
  GemmArgs args{.x = d_x.get(),
                .w = d_w.get(),
                .y = d_y.get(),
                .m = m,
                .n = n,
                .k = k,
                .ldx = ldx,
                .ldy = ldy,
                .alpha = alpha,
                .beta = beta,
                .x_dtype = DType::kBF16,
                .w_dtype = DType::kBF16,
                .y_dtype = y_dtype};
  if (algo == kTuned) {
    int chosen = -1;
    ASSERT_EQ(gemm.Tune(args, nullptr, &chosen), cudaSuccess);
    EXPECT_TRUE(gemm.Tuned(args));
    cudaError_t err;
    EXPECT_GE(chosen, 0);
    EXPECT_LT(chosen, gemm.NumCandidates(args, &err));
    d_y = DeviceMemory::From(y0);  // tuning ran the product (beta != 0 accumulates)
    args.y = d_y.get();
  } else if (algo >= 0) {
    ASSERT_EQ(gemm.Choose(args, algo), cudaSuccess);
  }
  ASSERT_EQ(gemm.Run(args, nullptr), cudaSuccess) << cublasGetStatusString(gemm.last_status());
  ASSERT_TRUE(sieve::testing::DeviceSync());
  const size_t ye = DTypeSize(y_dtype);
  const auto y_gpu = d_y.ToVector<uint8_t>(y0.size());
  // Reference on the checked rows (a sub-GEMM with the same row strides).
  std::vector<int64_t> rows;
  if (sample_rows) {
    for (int32_t r : sieve::testing::RandomInts(48, 3, 0, static_cast<int32_t>(m - 1)))
      rows.push_back(r);
    rows.push_back(0);
    rows.push_back(m - 1);
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  } else {
    for (int64_t r = 0; r < m; ++r) rows.push_back(r);
  }
  std::vector<uint8_t> sub_x, sub_y, got_y;
  for (int64_t r : rows) {
    sub_x.insert(sub_x.end(), x.begin() + r * ldx * 2, x.begin() + (r + 1) * ldx * 2);
    sub_y.insert(sub_y.end(), y0.begin() + r * ldy * ye, y0.begin() + (r + 1) * ldy * ye);
    got_y.insert(got_y.end(), y_gpu.begin() + r * ldy * ye, y_gpu.begin() + (r + 1) * ldy * ye);
  }
  // The product alone (for the tolerance of a bf16 residual add, below).
  double max_product = 0;
  const std::vector<uint8_t> sub_y0 = sub_y;
  GemmArgs ref = args;
  ref.x = sub_x.data();
  ref.w = w.data();
  ref.y = sub_y.data();
  ref.m = static_cast<int64_t>(rows.size());
  GemmRef(ref);
  const size_t count = rows.size() * ldy;
  const auto want_y = FromBytes(sub_y, y_dtype, count),
             y_before = FromBytes(sub_y0, y_dtype, count);
  for (size_t i = 0; i < count; ++i) {
    max_product = std::max(max_product, std::abs(double(want_y[i]) - beta * y_before[i]));
  }
  // The accumulation order differs (cuBLAS vs the reference's blocked loop).
  sieve::testing::Tolerance tol = sieve::testing::GemmTolerance(k, y_dtype);
  // With a bf16 C, cuBLASLt rounds the product to bf16 before adding beta * C (so a residual add
  // rounds twice, as PyTorch's bf16 `residual + out`); the reference rounds once. Allow half an
  // ulp of the largest product on top.
  if (beta != 0.f && y_dtype == DType::kBF16) tol.atol += max_product * std::pow(2.0, -8);
  EXPECT_TRUE(AllClose(FromBytes(got_y, y_dtype, count), FromBytes(sub_y, y_dtype, count), tol,
                       "gemm m=" + std::to_string(m) + " n=" + std::to_string(n) +
                           " k=" + std::to_string(k) + " y=" + std::string(DTypeName(y_dtype))));
}
#endif

TEST(GemmKernelTest, GpuMatchesRef) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  std::unique_ptr<CublasLtGemm> gemm;
  ASSERT_EQ(CublasLtGemm::Create(CublasLtGemm::kDefaultWorkspaceBytes, &gemm), cudaSuccess);
  for (int64_t m : {1, 7, 733, 8192}) {
    for (int64_t n : {37, 64, 128, 4096}) {
      for (int64_t k : {64, 128, 4096}) {
        const bool sample = m * n * k > (int64_t{1} << 28);
        RunGpuCase(*gemm, m, n, k, DType::kBF16, 1.f, 0.f, sample);
      }
    }
  }
  RunGpuCase(*gemm, 7, 4096, 4096, DType::kBF16, 2.f, 0.5f, false);
  RunGpuCase(*gemm, 7, 4096, 4096, DType::kF32, 1.f, 0.f, false);
  RunGpuCase(*gemm, 3, 128256, 4096, DType::kF32, 1.f, 0.f, false);  // LM head
  RunGpuCase(*gemm, 33, 128256, 64, DType::kF32, 1.f, 0.f, false);   // the fixture's LM head
  // The same shape again hits the cached plan.
  RunGpuCase(*gemm, 3, 128256, 4096, DType::kF32, 1.f, 0.f, false);
  // Unsupported: mixed operand types.
  GemmArgs bad{.x = gemm.get(),
               .w = gemm.get(),
               .y = gemm.get(),
               .m = 1,
               .n = 1,
               .k = 1,
               .ldx = 1,
               .ldy = 1,
               .x_dtype = DType::kBF16,
               .w_dtype = DType::kF32,
               .y_dtype = DType::kF32};
  EXPECT_EQ(gemm->Run(bad, nullptr), cudaErrorNotSupported);
#endif
}

// Every algorithm the heuristic offers gives the right product, and so does the one Tune picks,
// for the transformer's epilogues: bf16 out, and the residual add into bf16 and fp32.
TEST(GemmKernelTest, GpuCandidatesAndTuningMatchRef) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  std::unique_ptr<CublasLtGemm> gemm;
  ASSERT_EQ(CublasLtGemm::Create(CublasLtGemm::kDefaultWorkspaceBytes, &gemm), cudaSuccess);
  const int64_t m = 733, n = 4096, k = 4096;
  for (auto [y_dtype, beta] :
       {std::pair{DType::kBF16, 0.f}, std::pair{DType::kBF16, 1.f}, std::pair{DType::kF32, 1.f}}) {
    sieve::testing::DeviceMemory probe(size_t(m) * std::max(n, k) * 4);
    const GemmArgs args =
        DenseGemmArgs(probe.get(), probe.get(), probe.get(), m, n, k, DType::kBF16, y_dtype, beta);
    cudaError_t err;
    const int candidates = gemm->NumCandidates(args, &err);
    ASSERT_EQ(err, cudaSuccess);
    ASSERT_GE(candidates, 1);
    EXPECT_LE(candidates, CublasLtGemm::kMaxCandidates);
    for (int c = 0; c < candidates; ++c) {
      SCOPED_TRACE("candidate " + std::to_string(c));
      RunGpuCase(*gemm, m, n, k, y_dtype, 1.f, beta, /*sample_rows=*/true, c);
    }
    EXPECT_EQ(gemm->Choose(args, candidates), cudaErrorInvalidValue);
    EXPECT_FALSE(gemm->Tuned(args));
    RunGpuCase(*gemm, m, n, k, y_dtype, 1.f, beta, /*sample_rows=*/true, kTuned);
    GemmArgs same_bucket = args;
    same_bucket.m = 600;  // 733 and 600 both round up to 1024
    EXPECT_TRUE(gemm->Tuned(same_bucket));
  }
#endif
}

}  // namespace
}  // namespace sieve::kernels
