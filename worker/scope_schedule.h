// SCOPE's decode-phase schedule (reference/scope.md; the rules exactly as tools/oracle.py states
// them). Pure: it decides, step by step, whether the decode cache is compressed and to what size;
// SequenceCache (worker/kv_cache.h) carries it out.
//
//   s = 0-based decode step (the forward that consumes generated token s); n_d = decode entries
//   after step s's token is added. When the strategy fires, each layer and KV head keeps the top
//   W - b2 of its older decode entries (scored by step s's attention) plus the last b2.
//     slide:         W = b1 + b2, fires when n_d >= W.
//     adaptive:      W(s) = b2 + floor(b1 * max(0, s - b2) / (T - b2)), fires when n_d >= W(s).
//     discontinuous: W(s) as adaptive; z = max(1, (T - b2) / b1); fires when n_d >= W(s) and
//                    (s - s_first) % z == 0, s_first the first step with n_d >= W(s).
//     off:           never fires.
//
// Tested by tests/unit/worker/scope_schedule_test.cc (a derived table of fired steps and cache
// sizes per strategy).
#pragma once

#include <optional>

#include "worker/pipeline_options.h"

namespace sieve::worker {

class ScopeSchedule {
 public:
  explicit ScopeSchedule(const ScopeOptions& options) : options_(options) {}

  // W(s): the decode-cache budget at step s.
  int Window(int step) const;

  // Step s with n_d decode entries: nullopt when nothing is evicted this step, else the number
  // of older (non-ring) entries each head keeps (W(s) - b2). Call once per step, in order.
  std::optional<int> Fire(int step, int decode_entries);

  // The most older entries any step can hold before its eviction, over steps [0, max_steps):
  // the history capacity a cache needs.
  int MaxHistory(int max_steps) const;

  int ring() const { return options_.strategy == ScopeStrategy::kOff ? 0 : options_.b2; }
  const ScopeOptions& options() const { return options_; }

 private:
  ScopeOptions options_;
  std::optional<int> first_fire_step_;
};

}  // namespace sieve::worker
