// Admission by memory: an upper estimate of the KV cache one request holds on each rank it
// touches, so the coordinator can refuse (429, RESOURCE_EXHAUSTED, with the reason) or hold back
// a request instead of letting a rank run out of memory. Pure: no MPI, no model.
//
// Decode node: the kept chunks arrive (ChunkKv) and are copied into the prefill cache Phi_p, so
// both exist for a moment: 2 x kept tokens, plus BOS + query, plus the decode history (SCOPE
// bounds it by b1 + b2; strategy off keeps every generated token). Kept tokens are the largest
// keep_chunks chunks (every chunk in parallel mode), each cut to kv_capacity + 1 entries when
// compression is on. Full mode prefills [BOS] document [BOS] query on the decode node itself:
// 2 x (document + query + 2) plus the history.
// Worker: the local top-k candidates it holds until the keep decision: its largest
// min(keep, own chunks) chunks, cut to kv_capacity + 1 entries.
//
// Tokens convert to bytes with ModelInfo.kv_bytes_per_token (all layers, K and V).
//
// Tested by tests/unit/coordinator/admission_test.cc.
#pragma once

#include <cstdint>
#include <vector>

#include "comm/chunk_plan.h"
#include "comm/sieve_options.h"

namespace sieve::coordinator {

struct KvFootprint {
  int64_t decode_tokens = 0;
  std::vector<int64_t> worker_tokens;  // per worker index, parallel to `assignment`
};

// `sieve` and `gen` resolved (ResolveOptions); `spans` and `assignment` from PlanChunks /
// AssignChunks (empty in full mode).
KvFootprint EstimateKvFootprint(const SieveOptions& sieve, const GenerationOptions& gen,
                                int64_t document_tokens, int64_t query_tokens,
                                const std::vector<ChunkSpan>& spans,
                                const std::vector<std::vector<int>>& assignment);

}  // namespace sieve::coordinator
