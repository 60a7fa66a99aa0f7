// The whole Sieve algorithm in one process: ParallelComp prefill and SCOPE decode.
//
//   1. plan       C = ceil(n / chunk_tokens) near-equal chunks (comm/chunk_plan.h)
//   2. prefill    every chunk as [BOS] ctx [BOS] query, packed batches (worker/chunk_prefill.h)
//   3. select     the keep_chunks lowest query NLLs (ties: lower index), document order
//   4. compress   SnapKV-style per chunk, layer and KV head (optional, inside 2)
//   5. assemble   Phi_p = BOS + kept context entries (worker/decoder.h)
//   6. query      [BOS] query at P0.. against Phi_p, with calibration (optional)
//   7. generate   greedy / sampled / forced, SCOPE slide|adaptive|discontinuous|off
//
// The distributed job (sieve-node) runs the same stage functions on different ranks; this file
// composes them for sieve-run, the tests and the benchmarks. A request's numbers come back in
// PipelineResult, in the form the response JSON and tools/oracle.py use.
//
// Tested by tests/unit/worker/pipeline_test.cc (every scenario of oracle_dev.json, invariants).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "comm/status.h"
#include "worker/chunk_prefill.h"
#include "worker/decoder.h"
#include "worker/pipeline_options.h"
#include "worker/transformer.h"

namespace sieve::worker {

struct PipelineInput {
  std::vector<int32_t> document_ids;
  std::vector<int32_t> query_ids;
  SieveOptions sieve;
  GenerationOptions generation;
  bool explain = false;        // fill the layout / eviction fields of the result
  int64_t max_batch_rows = 0;  // rows per prefill forward; 0 = sized from free memory
};

// Receives each generated token as it is chosen; returns false to stop (a stop string matched).
using TokenSink = std::function<bool(int32_t token)>;

struct StageTimes {
  double prefill = 0;        // local prefill of every chunk (scores + KV)
  double select = 0;         // chunk selection
  double assemble = 0;       // Phi_p assembly
  double query_prefill = 0;  // query encoding (+ calibration) and the first token
  double decode = 0;         // the remaining tokens
  double kv_transfer = 0;    // kept KV to the decode node (distributed runs)
  double ttft = 0;           // start to first token
  double total = 0;
};

struct ChunkReport {
  int index = 0;
  int tokens = 0;
  double score = 0;
  bool kept = false;
  int rank = 1;  // the worker that prefilled it
};

struct PipelineResult {
  std::vector<int32_t> generated_ids;
  std::vector<float> forced_logprobs;  // with force_continuation_ids
  std::string finish_reason;           // "eos", "stop", "length"
  std::vector<ChunkReport> chunks;     // empty in full mode
  std::vector<int> kept_chunks;
  int p0 = 0;
  std::vector<std::vector<int>> prefill_cache;  // [layer][kv head] entries, query included
  std::vector<std::vector<int>> final_cache;    // [layer][kv head] entries at the end
  std::vector<int> scope_fired_steps;
  std::vector<std::pair<int32_t, float>> first_top5;
  int64_t kv_entries_kept = 0;  // prefill cache entries over layers and KV heads
  int64_t kv_entries_full = 0;  // what full attention over the same prompt would cache
  int64_t kv_bytes_kept = 0;
  int64_t kv_bytes_full = 0;
  int64_t kv_bytes_moved = 0;  // KV sent to the decode node (distributed runs)
  int prefill_forwards = 0;
  int workers = 1;
  StageTimes times;
  // explain: [layer][kv head] entries as (chunk, position) pairs, query (-1, position).
  std::vector<std::vector<std::vector<CacheEntryId>>> layout_prefill;
  std::vector<std::vector<std::vector<CacheEntryId>>> calibration_evicted;
  std::vector<std::vector<std::vector<int32_t>>> final_decode_positions;
};

// Validates the input against the model (ids in the vocabulary, options via ResolveOptions)
// and runs the seven stages. `sink` and `progress` may be null.
StatusOr<PipelineResult> RunPipeline(const Transformer& model, const PipelineInput& input,
                                     const TokenSink& sink = nullptr,
                                     const ChunkProgressFn& progress = nullptr);

}  // namespace sieve::worker
