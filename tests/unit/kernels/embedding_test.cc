// Embedding (kernels/embedding.h): the CPU reference against a naive lookup, and LaunchEmbedding
// against the reference, exactly, over token counts {1, 7, 733, 8192} x hidden {37, 64, 128,
// 4096} and the dtype pairs the backends use (ids outside the vocabulary give zero rows).
#include <gtest/gtest.h>

#include <vector>

#include "kernels/embedding.h"
#include "tests/unit/kernels/gpu_test_util.h"

namespace sieve::kernels {
namespace {

using sieve::testing::AllClose;
using sieve::testing::FromBytes;
using sieve::testing::kExact;
using sieve::testing::ToBytes;

std::vector<int32_t> Ids(int64_t n, int64_t vocab, uint64_t seed) {
  auto ids = sieve::testing::RandomInts(n, seed, 0, static_cast<int32_t>(vocab - 1));
  if (n > 2) {
    ids[1] = -1;                               // out of range: zero row
    ids[n - 1] = static_cast<int32_t>(vocab);  // out of range: zero row
  }
  return ids;
}

TEST(EmbeddingKernelTest, RefMatchesNaive) {
  for (int64_t tokens : {1, 7, 733}) {
    for (int64_t hidden : {37, 64, 128}) {
      for (DType table_dtype : {DType::kF32, DType::kBF16}) {
        const int64_t vocab = 101;
        const auto table = sieve::testing::RandomNormal(vocab * hidden, 11);
        const auto table_bytes = ToBytes(table, table_dtype);
        const auto ids = Ids(tokens, vocab, 12);
        std::vector<float> out(tokens * hidden, -1.f);
        EmbeddingRef({.ids = ids.data(),
                      .table = table_bytes.data(),
                      .out = out.data(),
                      .num_tokens = tokens,
                      .hidden = hidden,
                      .vocab = vocab,
                      .table_dtype = table_dtype,
                      .out_dtype = DType::kF32});
        const auto stored = FromBytes(table_bytes, table_dtype, table.size());
        std::vector<float> want(tokens * hidden, 0.f);
        for (int64_t t = 0; t < tokens; ++t) {
          if (ids[t] < 0 || ids[t] >= vocab) continue;
          for (int64_t c = 0; c < hidden; ++c) want[t * hidden + c] = stored[ids[t] * hidden + c];
        }
        EXPECT_TRUE(AllClose(out, want, kExact, "embedding ref"));
      }
    }
  }
}

TEST(EmbeddingKernelTest, GpuMatchesRef) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  using sieve::testing::DeviceMemory;
  struct Types {
    DType table, out;
  };
  for (Types types : {Types{DType::kBF16, DType::kF32}, Types{DType::kBF16, DType::kBF16},
                      Types{DType::kF32, DType::kF32}}) {
    for (int64_t tokens : {1, 7, 733, 8192}) {
      for (int64_t hidden : {37, 64, 128, 4096}) {
        const int64_t vocab = 1000;
        const auto table = ToBytes(sieve::testing::RandomNormal(vocab * hidden, 21), types.table);
        const auto ids = Ids(tokens, vocab, 22);
        const size_t out_bytes = tokens * hidden * DTypeSize(types.out);
        std::vector<uint8_t> want(out_bytes);
        EmbeddingArgs args{.ids = ids.data(),
                           .table = table.data(),
                           .out = want.data(),
                           .num_tokens = tokens,
                           .hidden = hidden,
                           .vocab = vocab,
                           .table_dtype = types.table,
                           .out_dtype = types.out};
        EmbeddingRef(args);
        DeviceMemory d_ids = DeviceMemory::From(ids), d_table = DeviceMemory::From(table);
        DeviceMemory d_out(out_bytes);
        args.ids = d_ids.as<int32_t>();
        args.table = d_table.get();
        args.out = d_out.get();
        ASSERT_EQ(LaunchEmbedding(args, nullptr), cudaSuccess);
        ASSERT_TRUE(sieve::testing::DeviceSync());
        const auto got = d_out.ToVector<uint8_t>(out_bytes);
        const std::string what =
            "embedding tokens=" + std::to_string(tokens) + " hidden=" + std::to_string(hidden);
        EXPECT_TRUE(AllClose(FromBytes(got, types.out, tokens * hidden),
                             FromBytes(want, types.out, tokens * hidden), kExact, what));
      }
    }
  }
#endif
}

}  // namespace
}  // namespace sieve::kernels
