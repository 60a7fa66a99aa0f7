// Chunk planning: the contract between the coordinator (which plans) and the workers (which
// prefill). Pure functions, shared by both sides, so every rank derives the same spans.
//
//   PlanChunks(n, chunk_tokens): C = ceil(n / chunk_tokens) spans of near-equal size covering
//     [0, n); sizes differ by at most one, earlier spans larger (ParallelComp's rule as
//     tools/oracle.py states it). n = 0 gives no spans.
//   AssignChunks(spans, workers): contiguous runs of chunks per worker, in worker order, whose
//     chunk counts differ by at most one; for PlanChunks' spans the tokens each worker prefills
//     then differ by at most one chunk (a worker gets none when there are more workers than
//     chunks).
//
// Tested by tests/unit/comm/chunk_plan_test.cc.
#pragma once

#include <cstdint>
#include <vector>

namespace sieve {

struct ChunkSpan {
  int64_t begin = 0;  // first document token
  int64_t end = 0;    // one past the last
  int64_t size() const { return end - begin; }
  friend bool operator==(const ChunkSpan&, const ChunkSpan&) = default;
};

std::vector<ChunkSpan> PlanChunks(int64_t num_tokens, int64_t chunk_tokens);

// result[w] lists the chunk indices worker w prefills, in increasing order.
std::vector<std::vector<int>> AssignChunks(const std::vector<ChunkSpan>& spans, int num_workers);

}  // namespace sieve
