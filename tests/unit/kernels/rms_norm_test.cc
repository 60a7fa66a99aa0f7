// RmsNorm (kernels/rms_norm.h): the CPU reference against a double-precision naive RMSNorm
// (with and without the residual add), and LaunchRmsNorm against the reference over rows {1, 7,
// 733, 8192} x cols {37, 64, 128, 4096, 8192} in the CUDA backend's dtypes (act and weight bf16,
// residual bf16 or fp32: both variants) and all-fp32. The residual must match exactly; the output
// within one bf16 rounding (fp32: 1e-5 relative).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/rms_norm.h"
#include "tests/unit/kernels/gpu_test_util.h"

namespace sieve::kernels {
namespace {

using sieve::testing::AllClose;
using sieve::testing::FromBytes;
using sieve::testing::ToBytes;

TEST(RmsNormKernelTest, RefMatchesNaive) {
  for (int64_t rows : {1, 7, 19}) {
    for (int64_t cols : {37, 64, 128}) {
      for (bool with_input : {false, true}) {
        const auto input = sieve::testing::RandomNormal(rows * cols, 1, 0.5f);
        auto residual = sieve::testing::RandomNormal(rows * cols, 2, 2.f);
        const auto weight = sieve::testing::RandomNormal(cols, 3, 0.2f, 1.f);
        std::vector<float> out(rows * cols);
        // Naive, in double.
        std::vector<double> want_res(rows * cols), want_out(rows * cols);
        for (int64_t r = 0; r < rows; ++r) {
          double ss = 0;
          for (int64_t c = 0; c < cols; ++c) {
            const int64_t i = r * cols + c;
            want_res[i] = double(residual[i]) + (with_input ? double(input[i]) : 0.0);
            ss += want_res[i] * want_res[i];
          }
          const double inv = 1.0 / std::sqrt(ss / cols + 1e-5);
          for (int64_t c = 0; c < cols; ++c) {
            want_out[r * cols + c] = weight[c] * want_res[r * cols + c] * inv;
          }
        }
        RmsNormRef({.input = with_input ? input.data() : nullptr,
                    .residual = residual.data(),
                    .weight = weight.data(),
                    .out = out.data(),
                    .rows = rows,
                    .cols = cols,
                    .eps = 1e-5f});
        EXPECT_TRUE(AllClose(residual, std::vector<float>(want_res.begin(), want_res.end()),
                             {1e-6, 1e-6}, "rms_norm residual"));
        EXPECT_TRUE(AllClose(out, std::vector<float>(want_out.begin(), want_out.end()),
                             {1e-6, 1e-5}, "rms_norm out"));
      }
    }
  }
}

TEST(RmsNormKernelTest, GpuMatchesRef) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  using sieve::testing::DeviceMemory;
  struct Types {
    DType act, residual, weight;
  };
  // bf16 / bf16 / bf16 and bf16 / fp32 / bf16 take the warp variant with 1024 rows or more where
  // cols % 8 == 0 (64, 128, 4096; 8192 does not fit it), otherwise the block variant, as fp32.
  for (Types types : {Types{DType::kBF16, DType::kBF16, DType::kBF16},
                      Types{DType::kBF16, DType::kF32, DType::kBF16},
                      Types{DType::kF32, DType::kF32, DType::kF32}}) {
    for (int64_t rows : {1, 7, 733, 1024, 8192}) {
      for (int64_t cols : {37, 64, 128, 4096, 8192}) {
        if (rows == 8192 && cols == 8192) continue;  // 64M elements: long on the CPU reference
        for (bool with_input : {false, true}) {
          const int64_t n = rows * cols;
          const auto input = ToBytes(sieve::testing::RandomNormal(n, 4, 0.5f), types.act);
          auto residual = ToBytes(sieve::testing::RandomNormal(n, 5, 2.f), types.residual);
          const auto weight =
              ToBytes(sieve::testing::RandomNormal(cols, 6, 0.2f, 1.f), types.weight);
          DeviceMemory d_input = DeviceMemory::From(input), d_res = DeviceMemory::From(residual),
                       d_weight = DeviceMemory::From(weight);
          DeviceMemory d_out(n * DTypeSize(types.act));
          std::vector<uint8_t> out(n * DTypeSize(types.act));
          RmsNormArgs args{.input = with_input ? input.data() : nullptr,
                           .residual = residual.data(),
                           .weight = weight.data(),
                           .out = out.data(),
                           .rows = rows,
                           .cols = cols,
                           .eps = 1e-5f,
                           .act_dtype = types.act,
                           .residual_dtype = types.residual,
                           .weight_dtype = types.weight};
          RmsNormRef(args);
          args.input = with_input ? d_input.get() : nullptr;
          args.residual = d_res.get();
          args.weight = d_weight.get();
          args.out = d_out.get();
          ASSERT_EQ(LaunchRmsNorm(args, nullptr), cudaSuccess);
          ASSERT_TRUE(sieve::testing::DeviceSync());
          const std::string what = "rows=" + std::to_string(rows) +
                                   " cols=" + std::to_string(cols) + (with_input ? " +input" : "");
          EXPECT_TRUE(AllClose(
              FromBytes(d_res.ToVector<uint8_t>(residual.size()), types.residual, n),
              FromBytes(residual, types.residual, n), sieve::testing::kExact, "residual " + what));
          const auto tol = types.act == DType::kBF16 ? sieve::testing::kBf16RoundingTol
                                                     : sieve::testing::kF32Tol;
          EXPECT_TRUE(AllClose(FromBytes(d_out.ToVector<uint8_t>(out.size()), types.act, n),
                               FromBytes(out, types.act, n), tol, "out " + what));
        }
      }
    }
  }
#endif
}

}  // namespace
}  // namespace sieve::kernels
