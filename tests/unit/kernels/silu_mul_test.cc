// SiluMul (kernels/silu_mul.h): the CPU reference against a double-precision SwiGLU, and
// LaunchSiluMul against the reference over rows {1, 7, 733, 8192} x inter {37, 64, 128, 4096,
// 14336} (Llama-3.1-8B's intermediate size) in bf16 (within one bf16 rounding), fp16 and fp32:
// the 16-byte vector variant (16-bit dtypes, inter % 8 == 0) and the scalar one (fp32, inter 37),
// plus views one element off 16-byte alignment, which must take the scalar variant; and the
// interleaved layout (block 64: vector, block 1: scalar), also checked against the plain layout.
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

// The interleaved layout (block > 0) computes what the plain one does on the un-permuted input.
TEST(SiluMulKernelTest, RefBlockLayoutMatchesPlain) {
  const int64_t rows = 5, inter = 192;
  for (int64_t block : {8, 64, 192}) {
    const auto plain = sieve::testing::RandomNormal(rows * 2 * inter, 4, 3.f);
    std::vector<float> interleaved(plain.size());
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < inter; ++i) {
        const int64_t gate = r * 2 * inter + 2 * block * (i / block) + i % block;
        interleaved[gate] = plain[r * 2 * inter + i];
        interleaved[gate + block] = plain[r * 2 * inter + inter + i];
      }
    }
    std::vector<float> want(rows * inter), got(rows * inter);
    SiluMulRef({.gate_up = plain.data(), .out = want.data(), .rows = rows, .inter = inter});
    SiluMulRef({.gate_up = interleaved.data(),
                .out = got.data(),
                .rows = rows,
                .inter = inter,
                .block = block});
    EXPECT_EQ(got, want) << "block " << block;
  }
}

TEST(SiluMulKernelTest, GpuMatchesRef) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  using sieve::testing::DeviceMemory;
  for (DType dtype : {DType::kBF16, DType::kF16, DType::kF32}) {
    for (int64_t rows : {1, 7, 733, 8192}) {
      for (int64_t inter : {37, 64, 128, 4096, 14336}) {
        for (int64_t block : {int64_t{0}, int64_t{64}, int64_t{1}}) {
          if (rows * inter > int64_t{8192} * 4096) continue;  // keeps the CPU reference quick
          if (block > 0 && (inter % block != 0 || rows > 733)) continue;
          const auto gate_up =
              ToBytes(sieve::testing::RandomNormal(rows * 2 * inter, 2, 3.f), dtype);
          std::vector<uint8_t> want(rows * inter * DTypeSize(dtype));
          SiluMulArgs args{.gate_up = gate_up.data(),
                           .out = want.data(),
                           .rows = rows,
                           .inter = inter,
                           .block = block,
                           .dtype = dtype};
          SiluMulRef(args);
          DeviceMemory d_in = DeviceMemory::From(gate_up), d_out(want.size());
          args.gate_up = d_in.get();
          args.out = d_out.get();
          ASSERT_EQ(LaunchSiluMul(args, nullptr), cudaSuccess);
          ASSERT_TRUE(sieve::testing::DeviceSync());
          const auto tol =
              dtype == DType::kF32 ? sieve::testing::kF32Tol : sieve::testing::kBf16RoundingTol;
          EXPECT_TRUE(AllClose(FromBytes(d_out.ToVector<uint8_t>(want.size()), dtype, rows * inter),
                               FromBytes(want, dtype, rows * inter), tol,
                               "silu_mul rows=" + std::to_string(rows) + " inter=" +
                                   std::to_string(inter) + " block=" + std::to_string(block)));
        }
      }
    }
  }
#endif
}

// Views whose base is one element past a 16-byte boundary (a slice of a larger buffer): the
// launcher must fall back to the scalar variant and still match the reference.
TEST(SiluMulKernelTest, GpuUnalignedViewMatchesRef) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  using sieve::testing::DeviceMemory;
  const DType dtype = DType::kBF16;
  const int64_t rows = 33, inter = 4096, elem = 2;
  const auto gate_up = ToBytes(sieve::testing::RandomNormal(rows * 2 * inter, 5, 3.f), dtype);
  std::vector<uint8_t> want(rows * inter * elem);
  SiluMulRef({.gate_up = gate_up.data(),
              .out = want.data(),
              .rows = rows,
              .inter = inter,
              .dtype = dtype});
  DeviceMemory d_in(gate_up.size() + 16), d_out(want.size() + 16);
  d_in.Upload(gate_up.data(), gate_up.size(), elem);
  SiluMulArgs args{.gate_up = d_in.as<uint8_t>() + elem,
                   .out = d_out.as<uint8_t>() + elem,
                   .rows = rows,
                   .inter = inter,
                   .dtype = dtype};
  ASSERT_EQ(LaunchSiluMul(args, nullptr), cudaSuccess);
  ASSERT_TRUE(sieve::testing::DeviceSync());
  std::vector<uint8_t> got(want.size());
  d_out.Download(got.data(), got.size(), elem);
  EXPECT_TRUE(AllClose(FromBytes(got, dtype, rows * inter), FromBytes(want, dtype, rows * inter),
                       sieve::testing::kBf16RoundingTol, "silu_mul unaligned view"));
#endif
}

}  // namespace
}  // namespace sieve::kernels
