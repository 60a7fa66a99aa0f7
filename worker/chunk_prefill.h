// Local prefill of document chunks (ParallelComp stages 2-4, on one worker).
//
// Each chunk's input is [BOS] ctx [BOS] query at positions 0..L-1, attending only to itself. The
// chunks run as packed variable-length batches, as many per forward as the row budget allows.
// From each forward the worker keeps, per chunk:
//   - its score: the mean negative log-likelihood of the query tokens given the chunk, from
//     LM-head rows at the query positions only;
//   - its KV (BOS + context entries, every layer), compressed SnapKV-style when kv_capacity is
//     set: per layer and KV head, context position t scores the attention it receives from the
//     chunk's last kv_window rows (fp32 softmax, summed over the head's query group), max-pooled
//     with kernel kv_pool clipped to the context; the top min(kv_capacity, len(ctx)) are kept
//     (ties: lower position), in position order; BOS always stays. A chunk's own attention always
//     uses its full KV: compression only shapes what is kept.
// Only the best `keep_local` chunks (lowest score, ties: lower index) keep their KV; the others
// are freed as soon as a better set is known. The global top-k is a subset of the union of the
// workers' local top-k lists.
//
// Tested by tests/unit/worker/pipeline_test.cc (oracle scenarios) and chunk_prefill_test.cc.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "comm/status.h"
#include "worker/kv_cache.h"
#include "worker/transformer.h"

namespace sieve::worker {

struct ChunkInput {
  int index = 0;                     // position of the chunk in the document plan
  std::span<const int32_t> context;  // its document tokens
};

struct ChunkPrefillOptions {
  std::optional<int> kv_capacity;
  int kv_window = 8;
  int kv_pool = 7;
  int keep_local = 1 << 30;  // chunks whose KV is kept (the local top-k)
  // Full-attention mode: the one "chunk" keeps every row (query included), is not scored, and
  // its last row's logits are returned.
  bool full_sequence = false;
  int64_t max_batch_rows = 0;  // rows per forward; 0 = sized from the backend's free memory
};

struct ChunkScore {
  int index = 0;
  int tokens = 0;  // context tokens
  double score = 0;
};

struct ChunkPrefillResult {
  std::vector<ChunkScore> scores;  // every chunk, in input order
  std::vector<ChunkKv> kept;       // the local top-k, in chunk-index order
  std::vector<float> last_logits;  // [vocab], full_sequence only
  int forwards = 0;
  int64_t rows = 0;
  double seconds = 0;
};

// Called after each forward with (chunks done, chunks total).
using ChunkProgressFn = std::function<void(int, int)>;

StatusOr<ChunkPrefillResult> PrefillChunks(const Transformer& model, std::span<const int32_t> query,
                                           std::span<const ChunkInput> chunks,
                                           const ChunkPrefillOptions& options,
                                           const ChunkProgressFn& progress = nullptr);

// Rows per forward that fit the backend's memory (activations plus the batch's KV), at least
// `min_rows`.
int64_t DefaultBatchRows(const Transformer& model, int64_t min_rows);

}  // namespace sieve::worker
