// Tests of coordinator/admission.{h,cc}: the KV footprint estimate used for admission.
//
//   ./build/tests/sieve_unit_tests --gtest_filter='Admission*'
#include "coordinator/admission.h"

#include <gtest/gtest.h>

namespace sieve::coordinator {
namespace {

TEST(AdmissionTest, ParallelCompKeepsTheLargestChunks) {
  SieveOptions s;
  s.chunk_tokens = 100;
  s.keep_chunks = 2;
  s.scope.strategy = ScopeStrategy::kSlide;
  s.scope.b1 = 8;
  s.scope.b2 = 8;
  GenerationOptions g;
  g.max_new_tokens = 64;
  const auto spans = PlanChunks(350, 100);  // 88, 88, 87, 87
  const auto assignment = AssignChunks(spans, 2);
  const KvFootprint f = EstimateKvFootprint(s, g, 350, 5, spans, assignment);
  // 2 x (89 + 89) + BOS + query 5 + history min(64, 8 + 8 + 1).
  EXPECT_EQ(f.decode_tokens, 2 * (89 + 89) + 1 + 5 + 17);
  ASSERT_EQ(f.worker_tokens.size(), 2u);
  EXPECT_EQ(f.worker_tokens[0], 89 + 89);
  EXPECT_EQ(f.worker_tokens[1], 88 + 88);
}

TEST(AdmissionTest, CompressionParallelAndFullModes) {
  SieveOptions s;
  s.keep_chunks = 1;
  s.kv_capacity = 10;
  s.scope.strategy = ScopeStrategy::kOff;
  GenerationOptions g;
  g.max_new_tokens = 100;
  const auto spans = PlanChunks(300, 100);
  const auto one = AssignChunks(spans, 1);
  KvFootprint f = EstimateKvFootprint(s, g, 300, 4, spans, one);
  EXPECT_EQ(f.decode_tokens, 2 * 11 + 1 + 4 + 100);  // strategy off keeps every token
  EXPECT_EQ(f.worker_tokens[0], 11);
  s.mode = PrefillMode::kParallel;
  f = EstimateKvFootprint(s, g, 300, 4, spans, one);
  EXPECT_EQ(f.decode_tokens, 2 * 33 + 1 + 4 + 100);
  EXPECT_EQ(f.worker_tokens[0], 33);
  s.mode = PrefillMode::kFull;
  s.kv_capacity.reset();
  f = EstimateKvFootprint(s, g, 300, 4, {}, {});
  EXPECT_EQ(f.decode_tokens, 2 * (300 + 4 + 2) + 100);
  EXPECT_TRUE(f.worker_tokens.empty());
}

}  // namespace
}  // namespace sieve::coordinator
