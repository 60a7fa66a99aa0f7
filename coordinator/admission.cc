// KV footprint estimate of a request (see admission.h).
#include "coordinator/admission.h"

#include <algorithm>
#include <functional>

namespace sieve::coordinator {
namespace {

// Entries one chunk contributes to a cache: its context tokens, or kv_capacity + 1 (BOS) when
// compression keeps fewer.
int64_t ChunkEntries(const SieveOptions& s, int64_t tokens) {
  const int64_t with_bos = tokens + 1;
  return s.kv_capacity ? std::min<int64_t>(with_bos, int64_t{*s.kv_capacity} + 1) : with_bos;
}

// Sum of the `k` largest values.
int64_t LargestSum(std::vector<int64_t> v, int64_t k) {
  k = std::min<int64_t>(k, static_cast<int64_t>(v.size()));
  std::partial_sort(v.begin(), v.begin() + k, v.end(), std::greater<int64_t>());
  int64_t sum = 0;
  for (int64_t i = 0; i < k; ++i) sum += v[i];
  return sum;
}

}  // namespace

KvFootprint EstimateKvFootprint(const SieveOptions& s, const GenerationOptions& g,
                                int64_t document_tokens, int64_t query_tokens,
                                const std::vector<ChunkSpan>& spans,
                                const std::vector<std::vector<int>>& assignment) {
  KvFootprint f;
  const int64_t max_new = std::max(1, g.max_new_tokens);
  const int64_t history =
      s.scope.strategy == ScopeStrategy::kOff
          ? max_new
          : std::min<int64_t>(max_new, int64_t{s.scope.b1} + int64_t{s.scope.b2} + 1);
  if (s.mode == PrefillMode::kFull) {
    f.decode_tokens = 2 * (document_tokens + query_tokens + 2) + history;
    return f;
  }
  std::vector<int64_t> entries;
  entries.reserve(spans.size());
  for (const ChunkSpan& span : spans) entries.push_back(ChunkEntries(s, span.size()));
  const int64_t keep = s.mode == PrefillMode::kParallel ? static_cast<int64_t>(spans.size())
                                                        : int64_t{s.keep_chunks};
  f.decode_tokens = 2 * LargestSum(entries, keep) + 1 + query_tokens + history;
  f.worker_tokens.reserve(assignment.size());
  for (const std::vector<int>& own : assignment) {
    std::vector<int64_t> mine;
    mine.reserve(own.size());
    for (int index : own) mine.push_back(entries[index]);
    f.worker_tokens.push_back(LargestSum(std::move(mine), keep));
  }
  return f;
}

}  // namespace sieve::coordinator
