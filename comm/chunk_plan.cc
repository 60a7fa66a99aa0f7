#include "comm/chunk_plan.h"

#include <algorithm>

namespace sieve {

std::vector<ChunkSpan> PlanChunks(int64_t num_tokens, int64_t chunk_tokens) {
  std::vector<ChunkSpan> spans;
  if (num_tokens <= 0 || chunk_tokens <= 0) return spans;
  const int64_t count = (num_tokens + chunk_tokens - 1) / chunk_tokens;
  const int64_t base = num_tokens / count;
  const int64_t extra = num_tokens % count;
  int64_t begin = 0;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t size = base + (i < extra ? 1 : 0);
    spans.push_back({begin, begin + size});
    begin += size;
  }
  return spans;
}

std::vector<std::vector<int>> AssignChunks(const std::vector<ChunkSpan>& spans, int num_workers) {
  std::vector<std::vector<int>> out(std::max(num_workers, 0));
  if (num_workers <= 0) return out;
  // Contiguous runs whose chunk counts differ by at most one. PlanChunks puts the larger spans
  // first, so the extra chunks go to the last workers (which hold the smaller spans): the token
  // totals then differ by at most one chunk. (A greedy split on running token totals cannot
  // promise that: 5 equal chunks on 2 workers came out 4 + 1.) With fewer chunks than workers,
  // the first workers take one chunk each and the rest get none.
  const int num_chunks = static_cast<int>(spans.size());
  const int base = num_chunks / num_workers;
  const int extra = num_chunks % num_workers;
  int next = 0;
  for (int w = 0; w < num_workers; ++w) {
    const bool gets_extra = base == 0 ? w < extra : w >= num_workers - extra;
    const int count = base + (gets_extra ? 1 : 0);
    for (int i = 0; i < count; ++i) out[w].push_back(next++);
  }
  return out;
}

}  // namespace sieve
