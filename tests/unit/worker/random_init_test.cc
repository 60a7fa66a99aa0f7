// Tests of the RandomInit trio (kernels/random_init.h, kernels/ref/random_init_ref.cc,
// kernels/random_init.cu) and of worker/random_weights.{h,cc}: determinism, independence of
// tensors and seeds, distribution (moments and a Kolmogorov-Smirnov test), accuracy of the
// libm-free Box-Muller against libm, dtype rounding, slicing, and GPU == CPU bit for bit.
#include "kernels/random_init.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "worker/random_weights.h"

#if SIEVE_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace sieve::worker {
namespace {

using kernels::RandomInitArgs;
using kernels::RandomInitRef;

std::vector<float> RefF32(uint64_t seed, uint64_t stream, int64_t n, float mean = 0.f,
                          float stddev = 1.f) {
  std::vector<float> out(static_cast<size_t>(n));
  RandomInitRef(RandomInitArgs{out.data(), DType::kF32, n, seed, stream, mean, stddev, false});
  return out;
}

TEST(RandomInitTest, TensorStreamIdIsFnv1a) {
  // Published FNV-1a 64-bit test vectors.
  EXPECT_EQ(kernels::TensorStreamId(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(kernels::TensorStreamId("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(kernels::TensorStreamId("foobar"), 0x85944171f73967e8ull);
  EXPECT_NE(kernels::TensorStreamId("model.layers.0.mlp.up_proj.weight"),
            kernels::TensorStreamId("model.layers.1.mlp.up_proj.weight"));
}

TEST(RandomInitTest, SameInputsSameBytes) {
  const std::vector<float> a = RefF32(7, 99, 10001);
  const std::vector<float> b = RefF32(7, 99, 10001);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0);
}

TEST(RandomInitTest, SeedsAndStreamsAreIndependent) {
  const int64_t n = 4096;
  const std::vector<float> base = RefF32(1, 2, n);
  const std::vector<float> other_seed = RefF32(2, 2, n);
  const std::vector<float> other_stream = RefF32(1, 3, n);
  // Independent standard normals: the sample correlation is ~N(0, 1/n); 5 sigma is 0.08.
  auto correlation = [&](const std::vector<float>& x, const std::vector<float>& y) {
    double sxy = 0, sxx = 0, syy = 0;
    for (int64_t i = 0; i < n; ++i) {
      sxy += double(x[i]) * y[i];
      sxx += double(x[i]) * x[i];
      syy += double(y[i]) * y[i];
    }
    return sxy / std::sqrt(sxx * syy);
  };
  EXPECT_LT(std::abs(correlation(base, other_seed)), 0.08);
  EXPECT_LT(std::abs(correlation(base, other_stream)), 0.08);
  int64_t equal = 0;
  for (int64_t i = 0; i < n; ++i) equal += base[i] == other_stream[i];
  EXPECT_LT(equal, 3);
  // Neighbouring elements (cos / sin of one Box-Muller pair, and consecutive pairs) too.
  std::vector<float> even, odd;
  for (int64_t i = 0; i + 1 < n; i += 2) {
    even.push_back(base[i]);
    odd.push_back(base[i + 1]);
  }
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < even.size(); ++i) {
    sxy += double(even[i]) * odd[i];
    sxx += double(even[i]) * even[i];
    syy += double(odd[i]) * odd[i];
  }
  EXPECT_LT(std::abs(sxy / std::sqrt(sxx * syy)), 0.12);
}

TEST(RandomInitTest, MomentsAndTails) {
  const int64_t n = int64_t{1} << 20;
  const float mean = 0.5f, stddev = 0.02f;
  const std::vector<float> v = RefF32(123, kernels::TensorStreamId("x"), n, mean, stddev);
  double sum = 0, sum_sq = 0;
  int64_t beyond_2sigma = 0;
  double max_abs_z = 0;
  for (const float x : v) {
    ASSERT_TRUE(std::isfinite(x));
    const double z = (double(x) - mean) / stddev;
    sum += z;
    sum_sq += z * z;
    beyond_2sigma += std::abs(z) > 2;
    max_abs_z = std::max(max_abs_z, std::abs(z));
  }
  const double m = sum / n;
  const double var = sum_sq / n - m * m;
  EXPECT_LT(std::abs(m), 5.0 / std::sqrt(double(n)));        // standard error 1e-3
  EXPECT_LT(std::abs(var - 1.0), 5.0 * std::sqrt(2.0 / n));  // standard error 1.4e-3
  // P(|z| > 2) = 4.550%; binomial standard error 0.02%.
  EXPECT_NEAR(double(beyond_2sigma) / n, 0.0455, 0.0015);
  EXPECT_GT(max_abs_z, 4.0);
  EXPECT_LE(max_abs_z, 6.67);  // sqrt(2 ln 2^32): the largest value the 32-bit u1 allows
}

TEST(RandomInitTest, KolmogorovSmirnovAgainstNormal) {
  const int64_t n = 100000;
  std::vector<float> v = RefF32(5, kernels::TensorStreamId("ks"), n);
  std::sort(v.begin(), v.end());
  double d = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double cdf = 0.5 * std::erfc(-double(v[i]) / std::sqrt(2.0));
    d = std::max({d, std::abs(cdf - double(i) / n), std::abs(cdf - double(i + 1) / n)});
  }
  EXPECT_LT(d, 1.63 / std::sqrt(double(n)));  // 1% critical value
}

// The polynomial log / cos / sin must agree with libm's Box-Muller from the same bits.
TEST(RandomInitTest, BoxMullerMatchesLibm) {
  double worst = 0;
  for (uint64_t i = 0; i < 200000; ++i) {
    const uint64_t bits = kernels::RandomBits(9, 77, i >> 1);
    const double u1 = double((bits & 0xffffffffull) + 1) / 4294967296.0;
    const double angle = 2 * M_PI * double(uint32_t(bits >> 32)) / 4294967296.0;
    const double r = std::sqrt(-2 * std::log(u1));
    const double expected = r * ((i & 1) ? std::sin(angle) : std::cos(angle));
    const double got = kernels::RandomNormal(9, 77, i);
    worst = std::max(worst, std::abs(got - expected) / (1 + std::abs(expected)));
  }
  EXPECT_LT(worst, 1e-12);
  // Edge cases of the generator's inputs: u1 = 1 gives radius 0, u1 = 2^-32 the largest.
  EXPECT_EQ(kernels::random_init_internal::LogOfUnitInterval(uint64_t{1} << 32), 0.0);
  EXPECT_NEAR(kernels::random_init_internal::LogOfUnitInterval(1), -32 * std::log(2.0), 1e-13);
  EXPECT_NEAR(kernels::random_init_internal::LogOfUnitInterval(3), std::log(3.0 / 4294967296.0),
              1e-13);
  for (const uint32_t k : {0u, 1u << 29, 1u << 30, 3u << 29, 1u << 31, 0xffffffffu, 123456789u}) {
    const double a = 2 * M_PI * k / 4294967296.0;
    EXPECT_NEAR(kernels::random_init_internal::CosSinOfTurn(k, false), std::cos(a), 1e-15) << k;
    EXPECT_NEAR(kernels::random_init_internal::CosSinOfTurn(k, true), std::sin(a), 1e-15) << k;
  }
}

// Pins the generator: a change here changes every synthesized model (and the GPU kernel must
// follow), so it has to be deliberate.
TEST(RandomInitTest, GoldenValues) {
  const std::vector<float> v = RefF32(0, kernels::TensorStreamId("model.embed_tokens.weight"), 4);
  const uint32_t expected[4] = {0x3f83301au, 0x3e9600fdu, 0x3eadb3afu, 0xbf1512cfu};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(FloatToBits(v[i]), expected[i]) << i << ": " << v[i];
  }
}

TEST(RandomInitTest, LowPrecisionIsRoundedFp32) {
  const int64_t n = 50000;
  const std::vector<float> f32 = RefF32(11, 22, n, 0.f, 0.02f);
  std::vector<uint16_t> bf16(n), f16(n);
  RandomInitRef(RandomInitArgs{bf16.data(), DType::kBF16, n, 11, 22, 0.f, 0.02f, false});
  RandomInitRef(RandomInitArgs{f16.data(), DType::kF16, n, 11, 22, 0.f, 0.02f, false});
  int64_t inexact = 0;
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(bf16[i], FloatToBF16(f32[i])) << i;
    ASSERT_EQ(f16[i], FloatToHalf(f32[i])) << i;
    inexact += BF16ToFloat(bf16[i]) != f32[i];
  }
  EXPECT_GT(inexact, n / 2);  // the fp32 values really carry more bits than bf16
}

TEST(RandomInitTest, SlicesMatchTheWhole) {
  const TensorSpec spec{"model.layers.3.mlp.gate_proj.weight", {37, 129}, TensorKind::kLinear};
  const int64_t n = spec.NumElements();
  std::vector<uint16_t> whole(n), pieces(n);
  ASSERT_TRUE(FillRandomWeight(spec, 5, 0.02f, DType::kBF16, whole.data()).ok());
  const int64_t cuts[] = {0, 1, 1000, 1001, 4000, n};
  for (size_t i = 0; i + 1 < std::size(cuts); ++i) {
    ASSERT_TRUE(FillRandomWeightSlice(spec, 5, 0.02f, DType::kBF16, cuts[i], cuts[i + 1] - cuts[i],
                                      pieces.data() + cuts[i])
                    .ok());
  }
  EXPECT_EQ(whole, pieces);
  EXPECT_FALSE(FillRandomWeightSlice(spec, 5, 0.02f, DType::kBF16, n - 1, 2, pieces.data()).ok());
  EXPECT_FALSE(FillRandomWeightSlice(spec, 5, 0.02f, DType::kBF16, -1, 1, pieces.data()).ok());
  EXPECT_FALSE(FillRandomWeight(spec, 5, 0.02f, DType::kBF16, nullptr).ok());
}

TEST(RandomInitTest, FillRandomWeightKinds) {
  const TensorSpec norm{"model.norm.weight", {64}, TensorKind::kNorm};
  std::vector<uint16_t> ones(64);
  ASSERT_TRUE(FillRandomWeight(norm, 1, 0.02f, DType::kBF16, ones.data()).ok());
  for (const uint16_t x : ones) EXPECT_EQ(x, 0x3f80);  // bf16 1.0

  const TensorSpec linear{"model.layers.0.self_attn.q_proj.weight", {256, 64}, TensorKind::kLinear};
  const TensorSpec embedding{"model.embed_tokens.weight", {256, 64}, TensorKind::kEmbedding};
  std::vector<float> a(256 * 64), b(256 * 64), c(256 * 64);
  ASSERT_TRUE(FillRandomWeight(linear, 1, 0.02f, DType::kF32, a.data()).ok());
  ASSERT_TRUE(FillRandomWeight(linear, 1, 0.02f, DType::kF32, b.data()).ok());
  ASSERT_TRUE(FillRandomWeight(embedding, 1, 0.02f, DType::kF32, c.data()).ok());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);  // another name, other values
  double sum_sq = 0;
  for (const float x : a) sum_sq += double(x) * x;
  EXPECT_NEAR(std::sqrt(sum_sq / a.size()), 0.02, 0.001);
  // The value is exactly mean + stddev * the standard normal of the same stream.
  const std::vector<float> z = RefF32(1, kernels::TensorStreamId(linear.name), 8);
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(a[i], 0.02 * z[i], 1e-8);
}

#if SIEVE_WITH_CUDA
TEST(RandomInitTest, GpuMatchesReferenceBitForBit) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    cudaGetLastError();
    GTEST_SKIP() << "no CUDA device";
  }
  for (const DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    const int64_t n = (int64_t{1} << 20) + 3;
    const size_t bytes = static_cast<size_t>(n) * DTypeSize(dtype);
    std::vector<uint8_t> host(bytes), from_gpu(bytes);
    RandomInitArgs args{host.data(), dtype, n,    2024, kernels::TensorStreamId("w"),
                        0.1f,        0.02f, false};
    args.offset = 12345;
    RandomInitRef(args);
    void* device = nullptr;
    ASSERT_EQ(cudaMalloc(&device, bytes), cudaSuccess);
    args.out = device;
    ASSERT_EQ(kernels::LaunchRandomInit(args, nullptr), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(from_gpu.data(), device, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
    ASSERT_EQ(cudaFree(device), cudaSuccess);
    size_t mismatches = 0;
    for (size_t i = 0; i < bytes; ++i) mismatches += host[i] != from_gpu[i];
    EXPECT_EQ(mismatches, 0u) << DTypeName(dtype);
  }
  RandomInitArgs bad{nullptr, DType::kF32, 10, 0, 0, 0.f, 1.f, false};
  EXPECT_EQ(kernels::LaunchRandomInit(bad, nullptr), cudaErrorInvalidValue);
}
#endif

}  // namespace
}  // namespace sieve::worker
