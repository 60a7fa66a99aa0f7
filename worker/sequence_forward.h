// One sequence through the model, with every intermediate a user may want to compare against a
// Hugging Face reference: per-layer K (after RoPE) and V, the final-normed hidden states, the
// log-probability of each next token, and the last position's logits.
//
// This is what `sieve-inspect forward` prints and what the fixture parity test checks; the
// pipeline stages (worker/pipeline.h) use the same Transformer steps on packed batches.
//
// Tested by tests/unit/worker/transformer_test.cc.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "comm/status.h"
#include "worker/transformer.h"

namespace sieve::worker {

struct SequenceForwardOptions {
  bool want_kv = false;       // fill k/v
  bool want_hidden = false;   // fill hidden (all rows)
  bool want_logprobs = true;  // fill logprobs
  bool want_last_logits = true;
};

struct SequenceForwardResult {
  std::vector<std::vector<float>> k, v;  // [layers][n_kv_heads * T * head_dim], head-major
  std::vector<float> hidden;             // [T, hidden] after the final norm
  std::vector<float> logprobs;           // [T - 1]: log p(ids[t + 1] | ids[<= t])
  std::vector<float> last_logits;        // [vocab]
};

// ids and positions have the same length T >= 1; positions are free (chunk-local or far).
StatusOr<SequenceForwardResult> ForwardSequence(const Transformer& model,
                                                std::span<const int32_t> ids,
                                                std::span<const int32_t> positions,
                                                const SequenceForwardOptions& options);

// Copies n elements of `dtype` from backend memory into host floats.
std::vector<float> DownloadAsFloat(Backend& backend, const void* src, DType dtype, size_t n);

}  // namespace sieve::worker
