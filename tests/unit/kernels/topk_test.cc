// MaxPool1d and TopkSelect (kernels/topk.h): the CPU references against naive versions (a full
// sort by (value descending, index ascending)), and the CUDA kernels against the references,
// exactly: lengths {1, 7, 733, 8192, 100000} with k in {0, 1, 5, len/2, len - 1, len, len + 3},
// per-row ks, heavy ties (values quantized to a few levels, so the tie-break by lower index is
// exercised at the threshold), +0 / -0 (equal), negative values and a strided output.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernels/topk.h"
#include "tests/unit/kernels/gpu_test_util.h"

namespace sieve::kernels {
namespace {

using sieve::testing::AllClose;
using sieve::testing::AllEqual;

// Scores with many exact ties: kind 0 continuous, 1 quantized to 8 levels, 2 mostly zeros of
// both signs with a few positive and negative outliers.
std::vector<float> Scores(int64_t n, int kind, uint64_t seed) {
  auto v = sieve::testing::RandomNormal(n, seed);
  for (int64_t i = 0; i < n; ++i) {
    if (kind == 1) v[i] = std::round(v[i] * 2.f) / 2.f;
    if (kind == 2) v[i] = (i % 11 == 3) ? v[i] : ((i % 2) ? 0.f : -0.f);
  }
  return v;
}

std::vector<int32_t> NaiveTopk(const float* in, int len, int k) {
  std::vector<int32_t> order(len);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [in](int32_t a, int32_t b) { return in[a] > in[b]; });
  order.resize(std::max(0, std::min(k, len)));
  std::sort(order.begin(), order.end());
  return order;
}

TEST(TopkKernelTest, MaxPoolRefMatchesNaive) {
  const int64_t rows = 3, stride = 40;
  const auto in = sieve::testing::RandomNormal(rows * stride, 1);
  const std::vector<int32_t> lengths = {40, 1, 17};
  for (int kernel : {1, 3, 7}) {
    std::vector<float> out(rows * stride, 99.f), want(rows * stride, 99.f);
    MaxPool1dRef({.in = in.data(),
                  .out = out.data(),
                  .lengths = lengths.data(),
                  .rows = rows,
                  .stride = stride,
                  .kernel = kernel});
    for (int64_t r = 0; r < rows; ++r) {
      for (int t = 0; t < lengths[r]; ++t) {
        float m = -INFINITY;
        for (int u = t - kernel / 2; u <= t + kernel / 2; ++u) {
          if (u >= 0 && u < lengths[r]) m = std::max(m, in[r * stride + u]);
        }
        want[r * stride + t] = m;
      }
    }
    EXPECT_TRUE(AllClose(out, want, sieve::testing::kExact, "maxpool ref"));
  }
}

TEST(TopkKernelTest, TopkRefMatchesNaive) {
  for (int64_t len : {1, 7, 733}) {
    for (int kind : {0, 1, 2}) {
      const auto in = Scores(len, kind, 2);
      for (int64_t k : {int64_t{0}, int64_t{1}, int64_t{5}, len / 2, len, len + 3}) {
        const int32_t length = static_cast<int32_t>(len);
        std::vector<int32_t> out(std::max<int64_t>(1, std::min(k, len)), -1);
        TopkSelectRef({.in = in.data(),
                       .lengths = &length,
                       .out = out.data(),
                       .rows = 1,
                       .in_stride = len,
                       .out_stride = static_cast<int64_t>(out.size()),
                       .k = static_cast<int>(k),
                       .max_length = length});
        auto want = NaiveTopk(in.data(), length, static_cast<int>(k));
        out.resize(want.size());
        EXPECT_TRUE(AllEqual(out, want,
                             "topk ref len=" + std::to_string(len) + " k=" + std::to_string(k) +
                                 " kind=" + std::to_string(kind)));
      }
    }
  }
}

TEST(TopkKernelTest, GpuMaxPoolMatchesRef) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  using sieve::testing::DeviceMemory;
  for (int64_t stride : {1, 7, 733, 8192}) {
    const int64_t rows = 37;
    const auto in = sieve::testing::RandomNormal(rows * stride, 3);
    auto lengths = sieve::testing::RandomInts(rows, 4, 0, static_cast<int32_t>(stride));
    lengths[0] = static_cast<int32_t>(stride);
    for (int kernel : {1, 7}) {
      std::vector<float> want(rows * stride, 5.f);
      MaxPool1dArgs args{.in = in.data(),
                         .out = want.data(),
                         .lengths = lengths.data(),
                         .rows = rows,
                         .stride = stride,
                         .kernel = kernel};
      MaxPool1dRef(args);
      DeviceMemory d_in = DeviceMemory::From(in), d_len = DeviceMemory::From(lengths),
                   d_out = DeviceMemory::From(std::vector<float>(rows * stride, 5.f));
      args.in = d_in.as<float>();
      args.out = d_out.as<float>();
      args.lengths = d_len.as<int32_t>();
      ASSERT_EQ(LaunchMaxPool1d(args, nullptr), cudaSuccess);
      ASSERT_TRUE(sieve::testing::DeviceSync());
      EXPECT_TRUE(AllClose(d_out.ToVector<float>(want.size()), want, sieve::testing::kExact,
                           "maxpool stride=" + std::to_string(stride)));
    }
  }
#endif
}

TEST(TopkKernelTest, GpuTopkMatchesRef) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  using sieve::testing::DeviceMemory;
  for (int64_t len : {1, 7, 733, 8192, 100000}) {
    for (int kind : {0, 1, 2}) {
      // One launch, one row per k (rows share the input row's values, different k).
      const std::vector<int64_t> k_values = {0,   1,      5, len / 2, std::max<int64_t>(0, len - 1),
                                             len, len + 3};
      const int64_t rows = static_cast<int64_t>(k_values.size());
      const auto row = Scores(len, kind, 5 + kind);
      std::vector<float> in;
      for (int64_t r = 0; r < rows; ++r) in.insert(in.end(), row.begin(), row.end());
      std::vector<int32_t> lengths(rows, static_cast<int32_t>(len)), ks;
      for (int64_t k : k_values) ks.push_back(static_cast<int32_t>(k));
      const int64_t out_stride = len + 5;
      std::vector<int32_t> want(rows * out_stride, -1);
      TopkSelectArgs args{.in = in.data(),
                          .lengths = lengths.data(),
                          .ks = ks.data(),
                          .out = want.data(),
                          .rows = rows,
                          .in_stride = len,
                          .out_stride = out_stride,
                          .k = 0,
                          .max_length = static_cast<int>(len)};
      TopkSelectRef(args);
      DeviceMemory d_in = DeviceMemory::From(in), d_len = DeviceMemory::From(lengths),
                   d_ks = DeviceMemory::From(ks),
                   d_out = DeviceMemory::From(std::vector<int32_t>(rows * out_stride, -1));
      args.in = d_in.as<float>();
      args.lengths = d_len.as<int32_t>();
      args.ks = d_ks.as<int32_t>();
      args.out = d_out.as<int32_t>();
      ASSERT_EQ(LaunchTopkSelect(args, nullptr), cudaSuccess);
      ASSERT_TRUE(sieve::testing::DeviceSync());
      const auto got = d_out.ToVector<int32_t>(want.size());
      EXPECT_TRUE(
          AllEqual(got, want, "topk len=" + std::to_string(len) + " kind=" + std::to_string(kind)));
      // The selection is non-trivial: the k = len/2 row holds distinct ascending indices.
      if (len >= 4) {
        const int32_t* r = got.data() + 3 * out_stride;
        EXPECT_TRUE(std::is_sorted(r, r + len / 2) &&
                    std::adjacent_find(r, r + len / 2) == r + len / 2);
      }
    }
  }
  // The `k` field (ks == nullptr) path with rows of different lengths.
  {
    const int64_t rows = 9, stride = 1000;
    const auto in = Scores(rows * stride, 1, 9);
    auto lengths = sieve::testing::RandomInts(rows, 10, 0, static_cast<int32_t>(stride));
    const int k = 300;
    std::vector<int32_t> want(rows * k, -1);
    TopkSelectArgs args{.in = in.data(),
                        .lengths = lengths.data(),
                        .out = want.data(),
                        .rows = rows,
                        .in_stride = stride,
                        .out_stride = k,
                        .k = k,
                        .max_length = static_cast<int>(stride)};
    TopkSelectRef(args);
    DeviceMemory d_in = DeviceMemory::From(in), d_len = DeviceMemory::From(lengths),
                 d_out = DeviceMemory::From(std::vector<int32_t>(rows * k, -1));
    args.in = d_in.as<float>();
    args.lengths = d_len.as<int32_t>();
    args.out = d_out.as<int32_t>();
    ASSERT_EQ(LaunchTopkSelect(args, nullptr), cudaSuccess);
    ASSERT_TRUE(sieve::testing::DeviceSync());
    EXPECT_TRUE(AllEqual(d_out.ToVector<int32_t>(want.size()), want, "topk k field"));
  }
#endif
}

}  // namespace
}  // namespace sieve::kernels
