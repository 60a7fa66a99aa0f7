// KvGather (kernels/kv_gather.h): the CPU reference against a naive per-element copy, and
// LaunchKvGather against the reference, bit for bit, on whole destination buffers (untouched
// entries must stay untouched): shared and per-head index lists, the fused-QKV source layout,
// head_dim 16 / 37 / 128 (the 16-byte, 4-byte and 2-byte copy widths), counts {1, 7, 733, 8192},
// bf16 and fp32, plus the LM-head row gather (one head of 4096).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "kernels/kv_gather.h"
#include "tests/unit/kernels/gpu_test_util.h"

namespace sieve::kernels {
namespace {

using sieve::testing::AllClose;
using sieve::testing::FromBytes;
using sieve::testing::ToBytes;

struct Case {
  int heads, head_dim;
  int64_t src_tokens, count, dst_begin;
  bool per_head;
  int64_t src_token_stride, src_head_stride, dst_token_stride, dst_head_stride;
};

// Source, indices and destination of a case; dst starts as a recognizable pattern.
struct Buffers {
  std::vector<float> src_k, src_v, dst_k, dst_v;
  std::vector<int32_t> indices;
};

Buffers MakeBuffers(const Case& c, uint64_t seed) {
  Buffers b;
  const int64_t src_n = c.src_tokens * c.src_token_stride;
  const int64_t dst_n = (c.dst_begin + c.count) * c.dst_token_stride;
  b.src_k = sieve::testing::RandomNormal(src_n, seed);
  b.src_v = sieve::testing::RandomNormal(src_n, seed + 1);
  b.dst_k.assign(dst_n, 7.f);
  b.dst_v.assign(dst_n, -7.f);
  b.indices = sieve::testing::RandomInts((c.per_head ? c.heads : 1) * c.count, seed + 2, 0,
                                         static_cast<int32_t>(c.src_tokens - 1));
  return b;
}

KvGatherArgs ArgsOf(const Case& c, DType dtype) {
  return {.index_head_stride = c.per_head ? c.count : 0,
          .count = c.count,
          .dst_begin = c.dst_begin,
          .num_heads = c.heads,
          .head_dim = c.head_dim,
          .src_token_stride = c.src_token_stride,
          .src_head_stride = c.src_head_stride,
          .dst_token_stride = c.dst_token_stride,
          .dst_head_stride = c.dst_head_stride,
          .dtype = dtype};
}

std::vector<Case> Cases() {
  std::vector<Case> cases;
  for (int64_t count : {1, 7, 733, 8192}) {
    // Fixture shape from the fused QKV (row stride (4 + 2 * 2) * 16) into a cache.
    cases.push_back({2, 16, count + 5, count, 3, false, 128, 16, 32, 16});
    cases.push_back({2, 16, count + 5, count, 0, true, 128, 16, 32, 16});
    // Llama-3.1-8B: 8 KV heads of 128 from rows of (32 + 16) * 128.
    cases.push_back({8, 128, count + 1, count, 1, true, 6144, 128, 1024, 128});
    // An odd head_dim (2-byte copies in bf16).
    cases.push_back({3, 37, count + 2, count, 2, true, 120, 40, 111, 37});
  }
  cases.push_back({1, 4096, 733, 128, 0, false, 4096, 0, 4096, 0});  // LM-head row gather
  return cases;
}

TEST(KvGatherKernelTest, RefMatchesNaive) {
  for (const Case& c : Cases()) {
    if (c.count > 733) continue;
    Buffers b = MakeBuffers(c, 1);
    auto want_k = b.dst_k, want_v = b.dst_v;
    for (int g = 0; g < c.heads; ++g) {
      for (int64_t j = 0; j < c.count; ++j) {
        const int64_t src = b.indices[(c.per_head ? g * c.count : 0) + j];
        for (int e = 0; e < c.head_dim; ++e) {
          const int64_t so = src * c.src_token_stride + g * c.src_head_stride + e;
          const int64_t d = (c.dst_begin + j) * c.dst_token_stride + g * c.dst_head_stride + e;
          want_k[d] = b.src_k[so];
          want_v[d] = b.src_v[so];
        }
      }
    }
    KvGatherArgs args = ArgsOf(c, DType::kF32);
    args.src_k = b.src_k.data();
    args.src_v = b.src_v.data();
    args.dst_k = b.dst_k.data();
    args.dst_v = b.dst_v.data();
    args.indices = b.indices.data();
    KvGatherRef(args);
    EXPECT_TRUE(AllClose(b.dst_k, want_k, sieve::testing::kExact, "kv_gather ref k"));
    EXPECT_TRUE(AllClose(b.dst_v, want_v, sieve::testing::kExact, "kv_gather ref v"));
  }
}

TEST(KvGatherKernelTest, GpuMatchesRef) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  using sieve::testing::DeviceMemory;
  for (DType dtype : {DType::kBF16, DType::kF32}) {
    for (const Case& c : Cases()) {
      const Buffers b = MakeBuffers(c, 3);
      auto src_k = ToBytes(b.src_k, dtype), src_v = ToBytes(b.src_v, dtype);
      auto want_k = ToBytes(b.dst_k, dtype), want_v = ToBytes(b.dst_v, dtype);
      DeviceMemory d_src_k = DeviceMemory::From(src_k), d_src_v = DeviceMemory::From(src_v),
                   d_dst_k = DeviceMemory::From(want_k), d_dst_v = DeviceMemory::From(want_v),
                   d_idx = DeviceMemory::From(b.indices);
      KvGatherArgs args = ArgsOf(c, dtype);
      args.src_k = src_k.data();
      args.src_v = src_v.data();
      args.dst_k = want_k.data();
      args.dst_v = want_v.data();
      args.indices = b.indices.data();
      KvGatherRef(args);
      args.src_k = d_src_k.get();
      args.src_v = d_src_v.get();
      args.dst_k = d_dst_k.get();
      args.dst_v = d_dst_v.get();
      args.indices = d_idx.as<int32_t>();
      ASSERT_EQ(LaunchKvGather(args, nullptr), cudaSuccess);
      ASSERT_TRUE(sieve::testing::DeviceSync());
      const size_t n = b.dst_k.size();
      const std::string what = "kv_gather heads=" + std::to_string(c.heads) +
                               " d=" + std::to_string(c.head_dim) +
                               " count=" + std::to_string(c.count);
      EXPECT_TRUE(AllClose(FromBytes(d_dst_k.ToVector<uint8_t>(want_k.size()), dtype, n),
                           FromBytes(want_k, dtype, n), sieve::testing::kExact, what + " k"));
      EXPECT_TRUE(AllClose(FromBytes(d_dst_v.ToVector<uint8_t>(want_v.size()), dtype, n),
                           FromBytes(want_v, dtype, n), sieve::testing::kExact, what + " v"));
    }
  }
#endif
}

}  // namespace
}  // namespace sieve::kernels
