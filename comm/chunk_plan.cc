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
  int64_t total = 0;
  for (const ChunkSpan& s : spans) total += s.size();
  // Greedy contiguous split: worker w takes chunks while its running total stays closest to its
  // fair share of what is left.
  size_t next = 0;
  int64_t remaining = total;
  for (int w = 0; w < num_workers; ++w) {
    const int workers_left = num_workers - w;
    const int64_t share = (remaining + workers_left - 1) / workers_left;
    int64_t taken = 0;
    // Leave at least one chunk for each later worker when there are enough chunks.
    while (next < spans.size()) {
      const size_t still_needed = static_cast<size_t>(workers_left - 1);
      if (!out[w].empty() && spans.size() - next <= still_needed) break;
      const int64_t size = spans[next].size();
      if (!out[w].empty() && taken + size / 2 > share) break;
      out[w].push_back(static_cast<int>(next));
      taken += size;
      ++next;
    }
    remaining -= taken;
  }
  return out;
}

}  // namespace sieve
