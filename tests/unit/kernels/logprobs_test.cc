// LogSoftmaxGather (kernels/logprobs.h): the CPU reference against a naive double log-softmax,
// and LaunchLogSoftmaxGather against the reference (fp32 vs the reference's double: lse within
// 2e-6 relative) for rows {1, 7, 128} x vocab {37, 1000, 128256}, including targets outside the
// vocabulary (-inf) and a strided row layout.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/logprobs.h"
#include "tests/unit/kernels/gpu_test_util.h"

namespace sieve::kernels {
namespace {

using sieve::testing::AllClose;

std::vector<int32_t> Targets(int64_t rows, int64_t vocab, uint64_t seed) {
  auto t = sieve::testing::RandomInts(rows, seed, 0, static_cast<int32_t>(vocab - 1));
  if (rows > 2) {
    t[1] = -1;
    t[2] = static_cast<int32_t>(vocab);
  }
  return t;
}

TEST(LogprobsKernelTest, RefMatchesNaive) {
  for (int64_t rows : {1, 7}) {
    for (int64_t vocab : {37, 1000}) {
      const int64_t stride = vocab + 3;
      const auto logits = sieve::testing::RandomNormal(rows * stride, 1, 4.f);
      const auto targets = Targets(rows, vocab, 2);
      std::vector<float> lse(rows), lp(rows), want_lse(rows), want_lp(rows);
      LogSoftmaxGatherRef({.logits = logits.data(),
                           .targets = targets.data(),
                           .target_logprobs = lp.data(),
                           .lse = lse.data(),
                           .rows = rows,
                           .vocab = vocab,
                           .stride = stride});
      for (int64_t r = 0; r < rows; ++r) {
        double sum = 0;
        for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(logits[r * stride + v]));
        want_lse[r] = static_cast<float>(std::log(sum));
        const int32_t t = targets[r];
        want_lp[r] = (t >= 0 && t < vocab)
                         ? static_cast<float>(logits[r * stride + t] - std::log(sum))
                         : -INFINITY;
      }
      EXPECT_TRUE(AllClose(lse, want_lse, {1e-5, 1e-6}, "lse ref"));
      EXPECT_TRUE(AllClose(lp, want_lp, {1e-5, 1e-6}, "target logprob ref"));
    }
  }
}

TEST(LogprobsKernelTest, GpuMatchesRef) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  using sieve::testing::DeviceMemory;
  for (int64_t rows : {1, 7, 128}) {
    for (int64_t vocab : {37, 1000, 128256}) {
      const int64_t stride = vocab + (vocab % 2);
      const auto logits = sieve::testing::RandomNormal(rows * stride, 3, 4.f);
      const auto targets = Targets(rows, vocab, 4);
      std::vector<float> lse(rows), lp(rows);
      LogSoftmaxGatherArgs args{.logits = logits.data(),
                                .targets = targets.data(),
                                .target_logprobs = lp.data(),
                                .lse = lse.data(),
                                .rows = rows,
                                .vocab = vocab,
                                .stride = stride};
      LogSoftmaxGatherRef(args);
      DeviceMemory d_logits = DeviceMemory::From(logits), d_targets = DeviceMemory::From(targets);
      DeviceMemory d_lse(rows * sizeof(float)), d_lp(rows * sizeof(float));
      args.logits = d_logits.as<float>();
      args.targets = d_targets.as<int32_t>();
      args.target_logprobs = d_lp.as<float>();
      args.lse = d_lse.as<float>();
      ASSERT_EQ(LaunchLogSoftmaxGather(args, nullptr), cudaSuccess);
      ASSERT_TRUE(sieve::testing::DeviceSync());
      const std::string what = "rows=" + std::to_string(rows) + " vocab=" + std::to_string(vocab);
      EXPECT_TRUE(AllClose(d_lse.ToVector<float>(rows), lse, {1e-5, 2e-6}, "lse " + what));
      EXPECT_TRUE(AllClose(d_lp.ToVector<float>(rows), lp, {3e-5, 2e-6}, "logprob " + what));
    }
  }
#endif
}

}  // namespace
}  // namespace sieve::kernels
