// Rope (kernels/rope.h): the CPU reference against a double-precision rotation by the same fp32
// angle, and LaunchRope against the reference on the fused QKV layout of the transformer, for
// tokens {1, 7, 733, 8192}, the fixture's heads (4 q / 2 kv, head_dim 16) and Llama-3.1-8B's
// (32 / 8, 128) with Llama-3 scaled frequencies and positions up to 131072 (bf16: the vector
// variant), plus 3 / 1 heads of 12 (bf16: the scalar variant). The kernel is
// designed to match the reference bit for bit: every element must be within one bf16 rounding
// (fp32: 2e-7 relative), and at least 99.9% must be bit-identical.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/rope.h"
#include "tests/unit/kernels/gpu_test_util.h"
#include "worker/rope_table.h"

namespace sieve::kernels {
namespace {

using sieve::testing::AllClose;
using sieve::testing::FromBytes;
using sieve::testing::ToBytes;

std::vector<float> Llama3InvFreq(int head_dim) {
  worker::RopeConfig rope{.type = worker::RopeType::kLlama3,
                          .theta = 500000.0,
                          .factor = 8.0,
                          .low_freq_factor = 1.0,
                          .high_freq_factor = 4.0,
                          .original_max_position_embeddings = 8192};
  return worker::ComputeRopeInvFreq(rope, head_dim, DType::kF32);
}

TEST(RopeKernelTest, RefMatchesNaive) {
  const int hq = 4, hkv = 2, d = 16;
  const int64_t tokens = 19;
  const int64_t stride = (hq + 2 * hkv) * d;
  auto qkv = sieve::testing::RandomNormal(tokens * stride, 7);
  const auto orig = qkv;
  auto positions = sieve::testing::RandomInts(tokens, 8, 0, 131071);
  positions[0] = 0;
  const auto inv_freq = Llama3InvFreq(d);
  RopeRef({.q = qkv.data(),
           .k = qkv.data() + hq * d,
           .positions = positions.data(),
           .inv_freq = inv_freq.data(),
           .num_tokens = tokens,
           .num_q_heads = hq,
           .num_kv_heads = hkv,
           .head_dim = d,
           .q_stride = stride,
           .k_stride = stride});
  std::vector<float> want = orig;
  for (int64_t t = 0; t < tokens; ++t) {
    for (int h = 0; h < hq + hkv; ++h) {
      for (int i = 0; i < d / 2; ++i) {
        const float angle = inv_freq[i] * static_cast<float>(positions[t]);  // fp32, as torch
        const double c = std::cos(double(angle)), s = std::sin(double(angle));
        const int64_t o = t * stride + h * d;
        want[o + i] = static_cast<float>(orig[o + i] * c - orig[o + i + d / 2] * s);
        want[o + i + d / 2] = static_cast<float>(orig[o + i + d / 2] * c + orig[o + i] * s);
      }
    }
  }
  // The V part (heads hq + hkv ..) is untouched by both.
  EXPECT_TRUE(AllClose(qkv, want, {1e-6, 1e-6}, "rope ref"));
}

TEST(RopeKernelTest, GpuMatchesRef) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  using sieve::testing::DeviceMemory;
  struct Heads {
    int hq, hkv, d;
  };
  // bf16 takes the vector variant for d 16 and 128; d 12 (6 pairs per head) the scalar one.
  for (Heads heads : {Heads{4, 2, 16}, Heads{32, 8, 128}, Heads{3, 1, 12}}) {
    for (DType dtype : {DType::kBF16, DType::kF32}) {
      for (int64_t tokens : {1, 7, 733, 8192}) {
        const int64_t stride = int64_t{heads.hq + 2 * heads.hkv} * heads.d;
        const int64_t n = tokens * stride;
        auto host = ToBytes(sieve::testing::RandomNormal(n, 9, 1.5f), dtype);
        auto positions = sieve::testing::RandomInts(tokens, 10, 0, 131071);
        for (int64_t t = 0; t < tokens && t < 64; ++t) positions[t] = static_cast<int32_t>(t);
        const auto inv_freq = Llama3InvFreq(heads.d);
        DeviceMemory d_qkv = DeviceMemory::From(host), d_pos = DeviceMemory::From(positions),
                     d_freq = DeviceMemory::From(inv_freq);
        const size_t elem = DTypeSize(dtype);
        RopeArgs args{.q = host.data(),
                      .k = host.data() + heads.hq * heads.d * elem,
                      .positions = positions.data(),
                      .inv_freq = inv_freq.data(),
                      .num_tokens = tokens,
                      .num_q_heads = heads.hq,
                      .num_kv_heads = heads.hkv,
                      .head_dim = heads.d,
                      .q_stride = stride,
                      .k_stride = stride,
                      .attention_scaling = 1.f,
                      .dtype = dtype};
        RopeRef(args);
        args.q = d_qkv.get();
        args.k = d_qkv.as<uint8_t>() + heads.hq * heads.d * elem;
        args.positions = d_pos.as<int32_t>();
        args.inv_freq = d_freq.as<float>();
        ASSERT_EQ(LaunchRope(args, nullptr), cudaSuccess);
        ASSERT_TRUE(sieve::testing::DeviceSync());
        const auto got_bytes = d_qkv.ToVector<uint8_t>(host.size());
        const auto got = FromBytes(got_bytes, dtype, n);
        const auto want = FromBytes(host, dtype, n);
        const std::string what = "rope d=" + std::to_string(heads.d) +
                                 " tokens=" + std::to_string(tokens) + " " +
                                 std::string(DTypeName(dtype));
        const auto tol = dtype == DType::kBF16 ? sieve::testing::kBf16RoundingTol
                                               : sieve::testing::Tolerance{0.0, 2.5e-7};
        EXPECT_TRUE(AllClose(got, want, tol, what));
        size_t identical = 0;
        for (int64_t i = 0; i < n; ++i) identical += std::memcmp(&got[i], &want[i], 4) == 0;
        EXPECT_GE(double(identical), 0.999 * double(n))
            << what << ": only " << identical << " of " << n << " bit-identical";
      }
    }
  }
#endif
}

}  // namespace
}  // namespace sieve::kernels
