// SiluMul (kernels/silu_mul.h): the CPU reference against a double-precision SwiGLU, and
// LaunchSiluMul against the reference over rows {1, 7, 733, 8192} x inter {37, 64, 128, 4096,
// 14336} (Llama-3.1-8B's intermediate size) in bf16 (within one bf16 rounding) and fp32.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/silu_mul.h"
#include "tests/unit/kernels/gpu_test_util.h"

namespace sieve::kernels {
namespace {

using sieve::testing::AllClose;
using sieve::testing::FromBytes;
using sieve::testing::ToBytes;

TEST(SiluMulKernelTest, RefMatchesNaive) {
  for (int64_t rows : {1, 7, 19}) {
    for (int64_t inter : {37, 64, 128}) {
      const auto gate_up = sieve::testing::RandomNormal(rows * 2 * inter, 1, 3.f);
      std::vector<float> out(rows * inter), want(rows * inter);
      SiluMulRef({.gate_up = gate_up.data(), .out = out.data(), .rows = rows, .inter = inter});
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t i = 0; i < inter; ++i) {
          const double g = gate_up[r * 2 * inter + i], u = gate_up[r * 2 * inter + inter + i];
          want[r * inter + i] = static_cast<float>(g / (1 + std::exp(-g)) * u);
        }
      }
      EXPECT_TRUE(AllClose(out, want, {1e-6, 1e-5}, "silu_mul ref"));
    }
  }
}

TEST(SiluMulKernelTest, GpuMatchesRef) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  using sieve::testing::DeviceMemory;
  for (DType dtype : {DType::kBF16, DType::kF32}) {
    for (int64_t rows : {1, 7, 733, 8192}) {
      for (int64_t inter : {37, 64, 128, 4096, 14336}) {
        if (rows * inter > int64_t{8192} * 4096) continue;  // keeps the CPU reference quick
        const auto gate_up = ToBytes(sieve::testing::RandomNormal(rows * 2 * inter, 2, 3.f), dtype);
        std::vector<uint8_t> want(rows * inter * DTypeSize(dtype));
        SiluMulArgs args{.gate_up = gate_up.data(),
                         .out = want.data(),
                         .rows = rows,
                         .inter = inter,
                         .dtype = dtype};
        SiluMulRef(args);
        DeviceMemory d_in = DeviceMemory::From(gate_up), d_out(want.size());
        args.gate_up = d_in.get();
        args.out = d_out.get();
        ASSERT_EQ(LaunchSiluMul(args, nullptr), cudaSuccess);
        ASSERT_TRUE(sieve::testing::DeviceSync());
        const auto tol =
            dtype == DType::kBF16 ? sieve::testing::kBf16RoundingTol : sieve::testing::kF32Tol;
        EXPECT_TRUE(
            AllClose(FromBytes(d_out.ToVector<uint8_t>(want.size()), dtype, rows * inter),
                     FromBytes(want, dtype, rows * inter), tol,
                     "silu_mul rows=" + std::to_string(rows) + " inter=" + std::to_string(inter)));
      }
    }
  }
#endif
}

}  // namespace
}  // namespace sieve::kernels
