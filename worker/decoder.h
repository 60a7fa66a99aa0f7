// The decode node's engine: prefill-cache assembly, query prefill with attention-bias
// calibration, and batched generation steps with SCOPE decode-cache management.
//
// Phi_p (the prefill cache) per layer and KV head = [BOS of the first kept chunk] + the kept
// chunks' context entries in document order, keys already rotated at their chunk-local positions
// (never re-rotated). P0 = max over kept chunks of (1 + len(ctx)); the query [BOS] q is encoded at
// positions P0, P0 + 1, ... with one softmax over Phi_p plus its own causal prefix.
//
// Calibration (optional, per layer pattern none|sink|recent|middle|all, threshold λ, region R):
// at a calibrated layer, before the query attends, a_g[t] = mean over the query heads of KV head g
// of the last query row's softmax over [Phi_p ; query keys], for t in Phi_p. The candidates of
// head g are the region's t with a_g[t] > λ; with cnt the largest candidate count over heads,
// every head evicts cnt entries: its candidates topped up with its lowest-a entries of Phi_p
// (ties: lower index). The evicted entries leave that layer's cache for the query and for all of
// decoding.
//
// Generation: token i is consumed at position P0 + |query| + 1 + i... (the query's last position
// plus one onwards); Phi_p plus the query is frozen; decode entries follow SCOPE
// (worker/scope_schedule.h) through SequenceCache's ring and history.
//
// Tested by tests/unit/worker/pipeline_test.cc against tools/oracle.py's fixtures.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "comm/status.h"
#include "worker/kv_cache.h"
#include "worker/pipeline_options.h"
#include "worker/scope_schedule.h"
#include "worker/transformer.h"

namespace sieve::worker {

// An entry of the prefill cache as the explain output names it: (chunk, chunk-local position);
// query entries are (-1, position).
struct CacheEntryId {
  int32_t chunk = 0;
  int32_t position = 0;
};

// One request on the decode node.
struct DecodeState {
  SequenceCache cache;
  ScopeSchedule schedule{ScopeOptions{}};
  int p0 = 0;
  int32_t next_position = 0;  // position of the next token consumed
  int step = 0;               // decode steps done
  int32_t last_token = -1;    // the token the next step consumes
  std::vector<int> fired_steps;
  // Explain bookkeeping (only with explain): [layer * n_kv + head].
  bool explain = false;
  std::vector<std::vector<CacheEntryId>> layout;
  std::vector<std::vector<CacheEntryId>> calibration_evicted;
};

// Builds Phi_p from the kept chunks (document order; they may come from several workers) in a
// new cache with room for `query_tokens` query entries and SCOPE's decode entries.
StatusOr<DecodeState> AssemblePrefillCache(const Transformer& model,
                                           std::span<const ChunkKv* const> kept, int query_tokens,
                                           const ScopeOptions& scope, int max_new_tokens,
                                           bool explain);

// Full-attention mode: the whole [BOS] doc [BOS] query sequence is the frozen prefix.
StatusOr<DecodeState> CacheFromFullPrefill(const Transformer& model, const ChunkKv& full,
                                           const ScopeOptions& scope, int max_new_tokens,
                                           bool explain);

struct SamplingParams {
  float temperature = 0.f;
  int top_k = 0;
  float top_p = 1.f;
};

class Decoder {
 public:
  static StatusOr<std::unique_ptr<Decoder>> Create(const Transformer& model, int max_batch);

  int max_batch() const { return max_batch_; }

  // Encodes `query` ([BOS] q) at positions P0.. against the state's Phi_p, with calibration, and
  // leaves the last row's logits in row `row` of the logits buffer.
  Status QueryPrefill(DecodeState& state, std::span<const int32_t> query,
                      const std::optional<CalibrationOptions>& calibration, int row);

  // One decode forward for every state (row i is states[i]): consumes its last_token at its
  // next_position, applies SCOPE, and leaves logits in rows [0, states.size()).
  Status Step(std::span<DecodeState* const> states);

  // Puts host logits [vocab] into row `row` (full mode: the prefill's last row).
  Status SetLogits(int row, std::span<const float> logits);

  // Next tokens for rows [0, n): greedy or sampled per row (uniforms[i] in [0, 1)).
  StatusOr<std::vector<int32_t>> Choose(std::span<const SamplingParams> params,
                                        std::span<const float> uniforms);
  // log p(targets[i]) for rows [0, n).
  StatusOr<std::vector<float>> TargetLogprobs(std::span<const int32_t> targets);
  // The k largest logits of `row`, (id, logit) best first (ties: lower id).
  StatusOr<std::vector<std::pair<int32_t, float>>> TopLogits(int row, int k);

 private:
  Decoder(const Transformer& model) : model_(model) {}

  const Transformer& model_;
  int max_batch_ = 0;
  DeviceBuffer logits_;   // [max_batch, vocab] fp32
  DeviceBuffer scratch_;  // [max_batch, hidden] gathered rows for the LM head
  DeviceBuffer rows_, ids_, out_ids_, uniforms_, logprobs_;  // [max_batch]
};

}  // namespace sieve::worker
