// Tests of comm/chunk_plan.{h,cc}: PlanChunks (ParallelComp's near-equal chunk sizes, as
// tools/oracle.py's plan_chunks defines them) and AssignChunks (contiguous, balanced runs of
// chunks per worker).
//
// PlanChunks is checked exactly against the oracle fixture (1646 document tokens, chunk 300 ->
// 275, 275, 274, 274, 274, 274) and, over a sweep of sizes, against the oracle's rule: C =
// ceil(n / chunk), sizes differ by at most one, earlier chunks larger, spans contiguous and
// covering [0, n). AssignChunks is checked over a sweep of chunk and worker counts: every chunk
// exactly once, contiguous increasing runs in worker order, token totals within one chunk of
// each other, more workers than chunks, and a single worker.
//
//   ./build/tests/sieve_unit_tests --gtest_filter='PlanChunks*:AssignChunks*'
#include "comm/chunk_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <boost/json.hpp>

#include "tests/unit/test_util.h"

namespace sieve {
namespace {

std::vector<int64_t> Sizes(const std::vector<ChunkSpan>& spans) {
  std::vector<int64_t> sizes;
  for (const ChunkSpan& s : spans) sizes.push_back(s.size());
  return sizes;
}

// tools/oracle.py's plan_chunks, transcribed: C = max(1, ceil(n / chunk)), divmod(n, C), the
// first n % C chunks one larger.
std::vector<ChunkSpan> OraclePlan(int64_t n, int64_t chunk) {
  const int64_t c = std::max<int64_t>(1, (n + chunk - 1) / chunk);
  const int64_t base = n / c, rem = n % c;
  std::vector<ChunkSpan> out;
  int64_t s = 0;
  for (int64_t i = 0; i < c; ++i) {
    const int64_t z = base + (i < rem ? 1 : 0);
    out.push_back({s, s + z});
    s += z;
  }
  return out;
}

TEST(PlanChunksTest, OracleFixture) {
  // The document of tests/fixtures/pipeline/oracle_dev.json, chunked at 300 as every scenario is.
  const boost::json::value oracle =
      boost::json::parse(testing::ReadFileOrDie(testing::FixturePath("pipeline/oracle_dev.json")));
  const int64_t n = static_cast<int64_t>(oracle.at("document_ids").as_array().size());
  ASSERT_EQ(n, 1646);
  const std::vector<ChunkSpan> spans = PlanChunks(n, 300);
  EXPECT_EQ(Sizes(spans), (std::vector<int64_t>{275, 275, 274, 274, 274, 274}));
  EXPECT_EQ(spans, (std::vector<ChunkSpan>{
                       {0, 275}, {275, 550}, {550, 824}, {824, 1098}, {1098, 1372}, {1372, 1646}}));
  // The oracle's per-chunk token counts agree.
  const auto& chunks = oracle.at("scenarios").at("parallelcomp_k2").at("result").at("chunks");
  std::vector<int64_t> oracle_sizes;
  for (const auto& c : chunks.as_array()) oracle_sizes.push_back(c.at("tokens").as_int64());
  EXPECT_EQ(Sizes(spans), oracle_sizes);
}

TEST(PlanChunksTest, SmallCases) {
  EXPECT_EQ(PlanChunks(1, 300), (std::vector<ChunkSpan>{{0, 1}}));
  EXPECT_EQ(PlanChunks(300, 300), (std::vector<ChunkSpan>{{0, 300}}));
  EXPECT_EQ(PlanChunks(301, 300), (std::vector<ChunkSpan>{{0, 151}, {151, 301}}));
  EXPECT_EQ(PlanChunks(600, 300), (std::vector<ChunkSpan>{{0, 300}, {300, 600}}));
  EXPECT_EQ(PlanChunks(601, 300), (std::vector<ChunkSpan>{{0, 201}, {201, 401}, {401, 601}}));
  EXPECT_EQ(PlanChunks(7, 1), OraclePlan(7, 1));
  EXPECT_EQ(Sizes(PlanChunks(7, 1)), (std::vector<int64_t>(7, 1)));
  EXPECT_EQ(Sizes(PlanChunks(10, 3)), (std::vector<int64_t>{3, 3, 2, 2}));
}

TEST(PlanChunksTest, EmptyDocumentHasNoChunks) { EXPECT_TRUE(PlanChunks(0, 300).empty()); }

TEST(PlanChunksTest, SweepMatchesTheOracleRule) {
  for (int64_t n = 1; n <= 400; ++n) {
    for (int64_t chunk : {1, 2, 3, 5, 7, 16, 64, 99, 100, 101, 300, 399, 400, 401}) {
      SCOPED_TRACE(::testing::Message() << "n=" << n << " chunk=" << chunk);
      const std::vector<ChunkSpan> spans = PlanChunks(n, chunk);
      ASSERT_EQ(static_cast<int64_t>(spans.size()), (n + chunk - 1) / chunk);
      ASSERT_EQ(spans, OraclePlan(n, chunk));
      // Cover [0, n) exactly, contiguous, each within the chunk size.
      EXPECT_EQ(spans.front().begin, 0);
      EXPECT_EQ(spans.back().end, n);
      int64_t lo = spans[0].size(), hi = spans[0].size();
      for (size_t i = 0; i < spans.size(); ++i) {
        if (i > 0) {
          EXPECT_EQ(spans[i].begin, spans[i - 1].end);
          EXPECT_LE(spans[i].size(), spans[i - 1].size()) << "earlier chunks are larger";
        }
        EXPECT_GE(spans[i].size(), 1);
        EXPECT_LE(spans[i].size(), chunk);
        lo = std::min(lo, spans[i].size());
        hi = std::max(hi, spans[i].size());
      }
      EXPECT_LE(hi - lo, 1);
    }
  }
}

TEST(PlanChunksTest, LongDocuments) {
  // 128K tokens at the Llama-3.1 default of 6000: 22 chunks of 5958 or 5957.
  const std::vector<ChunkSpan> spans = PlanChunks(131072, 6000);
  ASSERT_EQ(spans.size(), 22u);
  EXPECT_EQ(spans, OraclePlan(131072, 6000));
  EXPECT_EQ(spans.front().size(), 5958);
  EXPECT_EQ(spans.back().size(), 5957);
  EXPECT_EQ(spans.back().end, 131072);
  // Beyond 2^31 tokens the arithmetic stays in int64.
  const int64_t big = (int64_t{1} << 33) + 5;
  const std::vector<ChunkSpan> b = PlanChunks(big, int64_t{1} << 31);
  ASSERT_EQ(b.size(), 5u);
  EXPECT_EQ(b.back().end, big);
}

// ---------------------------------------------------------------------------------------------
// AssignChunks.

// Checks the structural contract and returns each worker's token total.
std::vector<int64_t> CheckAssignment(const std::vector<ChunkSpan>& spans, int workers,
                                     const std::vector<std::vector<int>>& got) {
  EXPECT_EQ(static_cast<int>(got.size()), workers);
  std::vector<int> all;
  std::vector<int64_t> tokens;
  for (const std::vector<int>& w : got) {
    int64_t total = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      if (i > 0) EXPECT_EQ(w[i], w[i - 1] + 1) << "a worker's chunks are one contiguous run";
      if (w[i] >= 0 && w[i] < static_cast<int>(spans.size())) total += spans[w[i]].size();
      all.push_back(w[i]);
    }
    tokens.push_back(total);
  }
  // In worker order the runs concatenate to 0, 1, ..., C-1: every chunk exactly once.
  std::vector<int> want(spans.size());
  for (size_t i = 0; i < want.size(); ++i) want[i] = static_cast<int>(i);
  EXPECT_EQ(all, want);
  return tokens;
}

TEST(AssignChunksTest, SweepIsContiguousCompleteAndBalanced) {
  for (int64_t n : {1, 2, 5, 17, 100, 1646, 5000, 131072}) {
    for (int64_t chunk : {1, 7, 300, 6000}) {
      const std::vector<ChunkSpan> spans = PlanChunks(n, chunk);
      if (spans.size() > 2000) continue;
      int64_t max_chunk = 0;
      for (const ChunkSpan& s : spans) max_chunk = std::max(max_chunk, s.size());
      for (int workers : {1, 2, 3, 4, 5, 7, 8, 16, 33}) {
        SCOPED_TRACE(::testing::Message() << "n=" << n << " chunk=" << chunk
                                          << " chunks=" << spans.size() << " workers=" << workers);
        const auto got = AssignChunks(spans, workers);
        const std::vector<int64_t> tokens = CheckAssignment(spans, workers, got);
        size_t min_count = spans.size(), max_count = 0;
        for (const auto& w : got) {
          min_count = std::min(min_count, w.size());
          max_count = std::max(max_count, w.size());
        }
        if (static_cast<size_t>(workers) <= spans.size()) {
          // Nobody idles while another worker has two chunks or more to do.
          EXPECT_GE(min_count, 1u);
          // Balanced within one chunk: counts differ by at most one (near-equal spans), and the
          // token totals by at most one chunk's size.
          EXPECT_LE(max_count - min_count, 1u);
          const auto [lo, hi] = std::minmax_element(tokens.begin(), tokens.end());
          EXPECT_LE(*hi - *lo, max_chunk);
          for (int64_t t : tokens) {
            EXPECT_LE(std::abs(static_cast<double>(t) - static_cast<double>(n) / workers),
                      static_cast<double>(max_chunk));
          }
        } else {
          // More workers than chunks: one chunk each for C workers, none for the rest.
          EXPECT_EQ(max_count, 1u);
        }
      }
    }
  }
}

TEST(AssignChunksTest, OracleFixtureOnTwoAndFourWorkers) {
  const std::vector<ChunkSpan> spans = PlanChunks(1646, 300);
  EXPECT_EQ(AssignChunks(spans, 2), (std::vector<std::vector<int>>{{0, 1, 2}, {3, 4, 5}}));
  EXPECT_EQ(AssignChunks(spans, 3), (std::vector<std::vector<int>>{{0, 1}, {2, 3}, {4, 5}}));
  const auto four = AssignChunks(spans, 4);
  CheckAssignment(spans, 4, four);
  for (const auto& w : four) {
    EXPECT_GE(w.size(), 1u);
    EXPECT_LE(w.size(), 2u);
  }
  EXPECT_EQ(AssignChunks(spans, 6), (std::vector<std::vector<int>>{{0}, {1}, {2}, {3}, {4}, {5}}));
}

TEST(AssignChunksTest, MoreWorkersThanChunks) {
  const std::vector<ChunkSpan> spans = PlanChunks(10, 4);  // 3 chunks
  ASSERT_EQ(spans.size(), 3u);
  const auto got = AssignChunks(spans, 5);
  CheckAssignment(spans, 5, got);
  int busy = 0;
  for (const auto& w : got) {
    EXPECT_LE(w.size(), 1u);
    busy += !w.empty();
  }
  EXPECT_EQ(busy, 3);
}

TEST(AssignChunksTest, OneWorkerTakesEverything) {
  const std::vector<ChunkSpan> spans = PlanChunks(1646, 300);
  EXPECT_EQ(AssignChunks(spans, 1), (std::vector<std::vector<int>>{{0, 1, 2, 3, 4, 5}}));
  EXPECT_EQ(AssignChunks(PlanChunks(5, 300), 1), (std::vector<std::vector<int>>{{0}}));
}

TEST(AssignChunksTest, NoChunks) {
  EXPECT_EQ(AssignChunks({}, 3), (std::vector<std::vector<int>>{{}, {}, {}}));
}

}  // namespace
}  // namespace sieve
