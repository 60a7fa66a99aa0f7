// Skinny GEMM (kernels/gemm_skinny.h): LaunchSkinnyGemm against GemmRef on the same bf16
// operands, every row count 1..8, n with a partial last warp (1, 7, 33) and real decode widths
// (4096; the LM head's 128256), k from one 16-byte group to Llama's 14336 (including k not a
// multiple of the 32-lane x 4-group stride), bf16 and fp32 outputs, alpha / beta, padded row
// strides; plus what must be refused (cudaErrorNotSupported): fp32 operands, 9 rows, k % 8 != 0,
// misaligned x.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/gemm_skinny.h"
#include "tests/unit/kernels/gpu_test_util.h"

namespace sieve::kernels {
namespace {

using sieve::testing::AllClose;
using sieve::testing::FromBytes;

#if SIEVE_WITH_CUDA
void RunCase(int64_t m, int64_t n, int64_t k, DType y_dtype, float alpha = 1.f, float beta = 0.f,
             int64_t x_pad = 0, int64_t y_pad = 0) {
  using sieve::testing::DeviceMemory;
  const int64_t ldx = k + x_pad, ldy = n + y_pad;
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
  const std::string what = "skinny gemm m=" + std::to_string(m) + " n=" + std::to_string(n) +
                           " k=" + std::to_string(k) + " y=" + std::string(DTypeName(y_dtype));
  ASSERT_TRUE(SkinnyGemmSupported(args)) << what;
  ASSERT_EQ(LaunchSkinnyGemm(args, nullptr), cudaSuccess) << what;
  ASSERT_TRUE(sieve::testing::DeviceSync());
  const auto got = d_y.ToVector<uint8_t>(y0.size());
  auto want = y0;
  GemmArgs ref = args;
  ref.x = x.data();
  ref.w = w.data();
  ref.y = want.data();
  GemmRef(ref);
  // AllClose also fails an all-zero product.
  const size_t count = size_t(m) * ldy;
  EXPECT_TRUE(AllClose(FromBytes(got, y_dtype, count), FromBytes(want, y_dtype, count),
                       sieve::testing::GemmTolerance(k, y_dtype), what));
}
#endif

TEST(SkinnyGemmKernelTest, GpuMatchesRef) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  for (int64_t m = 1; m <= kSkinnyGemmMaxRows; ++m) {
    for (int64_t n : {1, 7, 33, 4096}) {
      for (int64_t k : {8, 264, 1032, 4096}) RunCase(m, n, k, DType::kBF16);
    }
  }
  RunCase(1, 4096, 14336, DType::kBF16);  // down projection
  RunCase(4, 6144, 4096, DType::kBF16);   // fused QKV, a decode batch of 4
  RunCase(1, 128256, 4096, DType::kF32);  // LM head, fp32 logits
  RunCase(3, 37, 264, DType::kF32, 2.f, 0.5f);
  RunCase(5, 33, 1032, DType::kBF16, 0.5f, 1.f, /*x_pad=*/16, /*y_pad=*/3);
#endif
}

TEST(SkinnyGemmKernelTest, GpuRefusesWhatItCannotRun) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  sieve::testing::DeviceMemory buf(1 << 20);
  const GemmArgs good{.x = buf.get(),
                      .w = buf.get(),
                      .y = buf.get(),
                      .m = 1,
                      .n = 16,
                      .k = 64,
                      .ldx = 64,
                      .ldy = 16,
                      .x_dtype = DType::kBF16,
                      .w_dtype = DType::kBF16,
                      .y_dtype = DType::kBF16};
  EXPECT_TRUE(SkinnyGemmSupported(good));
  GemmArgs a = good;
  a.x_dtype = a.w_dtype = DType::kF32;
  EXPECT_EQ(LaunchSkinnyGemm(a, nullptr), cudaErrorNotSupported);
  a = good;
  a.m = kSkinnyGemmMaxRows + 1;
  EXPECT_EQ(LaunchSkinnyGemm(a, nullptr), cudaErrorNotSupported);
  a = good;
  a.k = 60;
  a.ldx = 60;
  EXPECT_EQ(LaunchSkinnyGemm(a, nullptr), cudaErrorNotSupported);
  a = good;
  a.x = buf.as<uint8_t>() + 2;
  EXPECT_EQ(LaunchSkinnyGemm(a, nullptr), cudaErrorNotSupported);
#endif
}

}  // namespace
}  // namespace sieve::kernels
