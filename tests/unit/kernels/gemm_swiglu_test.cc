// GemmSwiglu (kernels/gemm_swiglu.h). CPU: GemmSwigluRef against a double-precision SwiGLU of the
// standard [gate; up] weight (fp32 and bf16, padded strides), against the unfused path (GemmRef
// then SiluMulRef, fp32), and SwigluInterleaveRef against the row mapping written out. GPU:
// LaunchSwigluInterleave against the reference byte for byte (16-byte and element paths), and
// LaunchGemmSwigluSm90 in every schedule against
// GemmSwigluRef over m {1, 7, 733, 8192} x inter {128, 384, 14336} x k {64, 200, 4096} (k 200: a
// partial last k block; large products checked on a sample of rows), padded row strides, output
// poisoned with NaN before each run (an unwritten element fails) and the padding columns checked
// untouched. Shapes the kernel does not take (inter % 64, k % 8, strides, alignment, dtype) are
// checked rejected, without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/gemm_swiglu.h"
#include "kernels/silu_mul.h"
#include "tests/unit/kernels/gpu_test_util.h"

namespace sieve::kernels {
namespace {

using sieve::testing::AllClose;
using sieve::testing::FromBytes;
using sieve::testing::ToBytes;

// The interleaved weight of a standard one (host).
std::vector<uint8_t> Interleaved(const std::vector<uint8_t>& w, int64_t inter, int64_t k,
                                 DType dtype) {
  std::vector<uint8_t> out(w.size());
  SwigluInterleaveRef({.src = w.data(), .dst = out.data(), .inter = inter, .k = k, .dtype = dtype});
  return out;
}

TEST(GemmSwigluTest, InterleaveRefPermutesRows) {
  const int64_t inter = 3 * kSwigluBlock, k = 5;
  // Element (row, p) of the standard weight holds row * 8 + p: exact in fp32.
  std::vector<float> w(2 * inter * k);
  for (int64_t row = 0; row < 2 * inter; ++row) {
    for (int64_t p = 0; p < k; ++p) w[row * k + p] = static_cast<float>(row * 8 + p);
  }
  const auto got =
      FromBytes(Interleaved(ToBytes(w, DType::kF32), inter, k, DType::kF32), DType::kF32, w.size());
  for (int64_t b = 0; b < inter / kSwigluBlock; ++b) {
    for (int64_t r = 0; r < kSwigluBlock; ++r) {
      const int64_t gate_dst = 2 * kSwigluBlock * b + r, up_dst = gate_dst + kSwigluBlock;
      const int64_t gate_src = kSwigluBlock * b + r, up_src = inter + gate_src;
      for (int64_t p = 0; p < k; ++p) {
        ASSERT_EQ(got[gate_dst * k + p], w[gate_src * k + p]) << "gate b=" << b << " r=" << r;
        ASSERT_EQ(got[up_dst * k + p], w[up_src * k + p]) << "up b=" << b << " r=" << r;
      }
    }
  }
}

TEST(GemmSwigluTest, RefMatchesNaive) {
  for (DType dt : {DType::kF32, DType::kBF16}) {
    for (int64_t m : {1, 7, 19}) {
      for (int64_t inter : {int64_t{kSwigluBlock}, int64_t{3 * kSwigluBlock}}) {
        for (int64_t k : {64, 75}) {
          const int64_t ldx = k + 3, ldo = inter + 5;
          const auto x = ToBytes(sieve::testing::RandomNormal(m * ldx, m + k), dt);
          const auto w = ToBytes(sieve::testing::RandomNormal(2 * inter * k, inter + k, 0.2f), dt);
          const auto w_il = Interleaved(w, inter, k, dt);
          std::vector<uint8_t> out(m * ldo * DTypeSize(dt), 0);
          GemmSwigluRef({.x = x.data(),
                         .w = w_il.data(),
                         .out = out.data(),
                         .m = m,
                         .inter = inter,
                         .k = k,
                         .ldx = ldx,
                         .ldo = ldo,
                         .dtype = dt});
          const auto xf = FromBytes(x, dt, m * ldx), wf = FromBytes(w, dt, 2 * inter * k);
          const auto of = FromBytes(out, dt, m * ldo);
          std::vector<float> got, want;
          for (int64_t r = 0; r < m; ++r) {
            for (int64_t i = 0; i < inter; ++i) {
              double g = 0, u = 0;
              for (int64_t p = 0; p < k; ++p) {
                g += double(xf[r * ldx + p]) * wf[i * k + p];
                u += double(xf[r * ldx + p]) * wf[(inter + i) * k + p];
              }
              want.push_back(static_cast<float>(g / (1 + std::exp(-g)) * u));
              got.push_back(of[r * ldo + i]);
            }
          }
          const sieve::testing::Tolerance tol = dt == DType::kF32
                                                    ? sieve::testing::Tolerance{1e-5, 1e-4}
                                                    : sieve::testing::Tolerance{1e-5, 1.0 / 128};
          EXPECT_TRUE(AllClose(got, want, tol,
                               "gemm_swiglu ref " + std::string(DTypeName(dt)) +
                                   " m=" + std::to_string(m) + " inter=" + std::to_string(inter) +
                                   " k=" + std::to_string(k)));
        }
      }
    }
  }
}

// Same arithmetic as GemmRef (fp32 output on the standard weight) followed by SiluMulRef.
TEST(GemmSwigluTest, RefMatchesUnfusedPath) {
  const int64_t m = 9, inter = 2 * kSwigluBlock, k = 300;
  const auto x = sieve::testing::RandomNormal(m * k, 4);
  const auto w = sieve::testing::RandomNormal(2 * inter * k, 5, 0.05f);
  std::vector<float> gate_up(m * 2 * inter), want(m * inter), got(m * inter);
  GemmRef({.x = x.data(),
           .w = w.data(),
           .y = gate_up.data(),
           .m = m,
           .n = 2 * inter,
           .k = k,
           .ldx = k,
           .ldy = 2 * inter});
  SiluMulRef({.gate_up = gate_up.data(), .out = want.data(), .rows = m, .inter = inter});
  std::vector<float> w_il(w.size());
  SwigluInterleaveRef(
      {.src = w.data(), .dst = w_il.data(), .inter = inter, .k = k, .dtype = DType::kF32});
  GemmSwigluRef({.x = x.data(),
                 .w = w_il.data(),
                 .out = got.data(),
                 .m = m,
                 .inter = inter,
                 .k = k,
                 .ldx = k,
                 .ldo = inter,
                 .dtype = DType::kF32});
  EXPECT_TRUE(AllClose(got, want, {1e-6, 1e-5}, "gemm_swiglu ref vs gemm + silu_mul"));
}

#if SIEVE_WITH_CUDA
GemmSwigluArgs ValidArgs() {
  // Never dereferenced: only the checks run.
  alignas(16) static uint8_t dummy[16];
  return {.x = dummy,
          .w = dummy,
          .out = dummy,
          .m = 5,
          .inter = 4 * kSwigluBlock,
          .k = 128,
          .ldx = 128,
          .ldo = 4 * kSwigluBlock,
          .dtype = DType::kBF16};
}
#endif

TEST(GemmSwigluTest, Sm90RejectsUnsupportedShapes) {
#if SIEVE_WITH_CUDA
  EXPECT_TRUE(GemmSwigluSm90Ok(ValidArgs()));
  struct Case {
    const char* what;
    void (*edit)(GemmSwigluArgs&);
  };
  const Case cases[] = {
      {"fp32", [](GemmSwigluArgs& a) { a.dtype = DType::kF32; }},
      {"fp16", [](GemmSwigluArgs& a) { a.dtype = DType::kF16; }},
      {"inter 96", [](GemmSwigluArgs& a) { a.inter = a.ldo = 96; }},
      {"inter 0", [](GemmSwigluArgs& a) { a.inter = 0; }},
      {"k 100", [](GemmSwigluArgs& a) { a.k = a.ldx = 100; }},
      {"k 0", [](GemmSwigluArgs& a) { a.k = 0; }},
      {"ldx 129", [](GemmSwigluArgs& a) { a.ldx = 129; }},
      {"ldx < k", [](GemmSwigluArgs& a) { a.ldx = 64; }},
      {"ldo < inter", [](GemmSwigluArgs& a) { a.ldo = a.inter - 8; }},
      {"ldo odd", [](GemmSwigluArgs& a) { a.ldo = a.inter + 1; }},
      {"x unaligned", [](GemmSwigluArgs& a) { a.x = static_cast<const uint8_t*>(a.x) + 2; }},
      {"w unaligned", [](GemmSwigluArgs& a) { a.w = static_cast<const uint8_t*>(a.w) + 8; }},
      {"out unaligned", [](GemmSwigluArgs& a) { a.out = static_cast<uint8_t*>(a.out) + 4; }},
      {"out null", [](GemmSwigluArgs& a) { a.out = nullptr; }},
      {"m negative", [](GemmSwigluArgs& a) { a.m = -1; }},
  };
  for (const Case& c : cases) {
    GemmSwigluArgs a = ValidArgs();
    c.edit(a);
    EXPECT_FALSE(GemmSwigluSm90Ok(a)) << c.what;
    // Rejected before any device work, so this runs without a GPU too.
    EXPECT_EQ(LaunchGemmSwigluSm90(a, nullptr), cudaErrorNotSupported) << c.what;
  }
  GemmSwigluArgs empty = ValidArgs();
  empty.m = 0;
  EXPECT_EQ(LaunchGemmSwigluSm90(empty, nullptr), cudaSuccess);  // no-op
  SwigluInterleaveArgs bad{.src = empty.w, .dst = empty.out, .inter = 96, .k = 8};
  EXPECT_EQ(LaunchSwigluInterleave(bad, nullptr), cudaErrorInvalidValue);
#else
  GTEST_SKIP() << "built without CUDA";
#endif
}

#if SIEVE_WITH_CUDA
using sieve::testing::DeviceMemory;

// g and u are sums of k products of |x| ~ 1 and |w| ~ 0.05 accumulated in different orders by
// the kernel and the reference (GemmTolerance's bound on each), and |out| moves by at most
// ~(|g| + |u|) times that; 16 covers |g|, |u| up to ~6 sigma at k = 4096. Plus one bf16 rounding.
sieve::testing::Tolerance SwigluTolerance(int64_t k) {
  const double accum = sieve::testing::GemmTolerance(k, DType::kBF16).atol - 1e-4;
  return {2e-3 + 16 * accum, 1.0 / 128};
}

std::vector<int64_t> CheckedRows(int64_t m, bool sample) {
  std::vector<int64_t> rows;
  if (!sample) {
    for (int64_t r = 0; r < m; ++r) rows.push_back(r);
    return rows;
  }
  for (int32_t r : sieve::testing::RandomInts(40, 3, 0, static_cast<int32_t>(m - 1))) {
    rows.push_back(r);
  }
  rows.push_back(0);
  rows.push_back(m - 1);
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  return rows;
}

// One weight (inter, k): the GPU interleave against the reference, then every m in `ms` in both
// schedules against GemmSwigluRef. `pad`: extra elements per row of x and of out.
void RunGpuCases(int64_t inter, int64_t k, std::initializer_list<int64_t> ms, int64_t pad) {
  const DType dt = DType::kBF16;
  const auto w = ToBytes(sieve::testing::RandomNormal(2 * inter * k, inter * 7 + k, 0.05f), dt);
  const auto w_il = Interleaved(w, inter, k, dt);
  DeviceMemory d_w = DeviceMemory::From(w), d_w_il(w.size());
  ASSERT_EQ(
      LaunchSwigluInterleave(
          {.src = d_w.get(), .dst = d_w_il.get(), .inter = inter, .k = k, .dtype = dt}, nullptr),
      cudaSuccess);
  ASSERT_TRUE(sieve::testing::DeviceSync());
  ASSERT_TRUE(d_w_il.ToVector<uint8_t>(w.size()) == w_il)
      << "LaunchSwigluInterleave inter=" << inter << " k=" << k;
  for (const int64_t m : ms) {
    const int64_t ldx = k + pad, ldo = inter + pad;
    const auto x = ToBytes(sieve::testing::RandomNormal(m * ldx, m + k + inter), dt);
    const std::vector<int64_t> rows = CheckedRows(m, m * inter * k > (int64_t{1} << 28));
    const int64_t n_rows = static_cast<int64_t>(rows.size());
    std::vector<uint8_t> sub_x;
    for (int64_t r : rows)
      sub_x.insert(sub_x.end(), x.begin() + r * ldx * 2, x.begin() + (r + 1) * ldx * 2);
    std::vector<uint8_t> want_bytes(n_rows * ldo * 2);
    GemmSwigluArgs args{.x = sub_x.data(),
                        .w = w_il.data(),
                        .out = want_bytes.data(),
                        .m = n_rows,
                        .inter = inter,
                        .k = k,
                        .ldx = ldx,
                        .ldo = ldo,
                        .dtype = dt};
    GemmSwigluRef(args);
    std::vector<float> want;
    const auto want_all = FromBytes(want_bytes, dt, n_rows * ldo);
    for (int64_t i = 0; i < n_rows; ++i) {
      want.insert(want.end(), want_all.begin() + i * ldo, want_all.begin() + i * ldo + inter);
    }
    DeviceMemory d_x = DeviceMemory::From(x), d_out(m * ldo * 2);
    args.x = d_x.get();
    args.w = d_w_il.get();
    args.out = d_out.get();
    args.m = m;
    ASSERT_TRUE(GemmSwigluSm90Ok(args));
    for (const GemmSwigluSchedule schedule :
         {GemmSwigluSchedule::kCooperative128x256, GemmSwigluSchedule::kPingPong128x128,
          GemmSwigluSchedule::kCooperativeCluster2}) {
      const std::string what = "gemm_swiglu schedule=" + std::to_string(int(schedule)) +
                               " m=" + std::to_string(m) + " inter=" + std::to_string(inter) +
                               " k=" + std::to_string(k) + " pad=" + std::to_string(pad);
      ASSERT_EQ(cudaMemset(d_out.get(), 0xff, d_out.bytes()), cudaSuccess);  // bf16 NaN
      ASSERT_EQ(LaunchGemmSwigluSm90(args, schedule, nullptr), cudaSuccess) << what;
      ASSERT_TRUE(sieve::testing::DeviceSync()) << what;
      const auto out = d_out.ToVector<uint16_t>(m * ldo);
      std::vector<float> got;
      int64_t pad_written = 0;
      for (int64_t r : rows) {
        for (int64_t i = 0; i < inter; ++i) got.push_back(BF16ToFloat(out[r * ldo + i]));
        for (int64_t i = inter; i < ldo; ++i) pad_written += out[r * ldo + i] != 0xffff;
      }
      EXPECT_EQ(pad_written, 0) << what << ": padding columns written";
      EXPECT_TRUE(AllClose(got, want, SwigluTolerance(k), what));
    }
  }
}
#endif

TEST(GemmSwigluTest, GpuMatchesRef) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  if (!GemmSwigluSm90DeviceOk()) GTEST_SKIP() << "not an sm_90a device";
  for (int64_t inter : {128, 384}) {
    for (int64_t k : {64, 200, 4096}) {
      RunGpuCases(inter, k, {1, 7, 733, 8192}, /*pad=*/0);
    }
  }
  RunGpuCases(384, 200, {733}, /*pad=*/8);
  RunGpuCases(64, 64, {7, 300}, /*pad=*/0);  // one block: half of a 256-wide tile is past 2 inter
  RunGpuCases(14336, 64, {7, 733}, /*pad=*/0);
  RunGpuCases(14336, 4096, {1, 733, 8192}, /*pad=*/0);  // Llama-3.1-8B's MLP
#endif
}

// A view one bf16 element past 16-byte alignment with an odd k: the element-copy path.
TEST(GemmSwigluTest, GpuInterleaveUnalignedMatchesRef) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  const int64_t inter = 2 * kSwigluBlock, k = 37;
  const auto w = ToBytes(sieve::testing::RandomNormal(2 * inter * k, 11), DType::kBF16);
  const auto want = Interleaved(w, inter, k, DType::kBF16);
  DeviceMemory d_src(w.size() + 2), d_dst(w.size() + 2);
  d_src.Upload(w.data(), w.size(), 2);
  ASSERT_EQ(LaunchSwigluInterleave({.src = d_src.as<uint8_t>() + 2,
                                    .dst = d_dst.as<uint8_t>() + 2,
                                    .inter = inter,
                                    .k = k,
                                    .dtype = DType::kBF16},
                                   nullptr),
            cudaSuccess);
  ASSERT_TRUE(sieve::testing::DeviceSync());
  std::vector<uint8_t> got(w.size());
  d_dst.Download(got.data(), got.size(), 2);
  EXPECT_TRUE(got == want);
#endif
}

}  // namespace
}  // namespace sieve::kernels
