#include "worker/scope_schedule.h"

#include <algorithm>

namespace sieve::worker {

int ScopeSchedule::Window(int step) const {
  const ScopeOptions& o = options_;
  switch (o.strategy) {
    case ScopeStrategy::kOff:
      return 0;
    case ScopeStrategy::kSlide:
      return o.b1 + o.b2;
    case ScopeStrategy::kAdaptive:
    case ScopeStrategy::kDiscontinuous: {
      const int64_t grown = int64_t{o.b1} * std::max(0, step - o.b2) / (o.T - o.b2);
      return o.b2 + static_cast<int>(grown);
    }
  }
  return 0;
}

std::optional<int> ScopeSchedule::Fire(int step, int decode_entries) {
  if (options_.strategy == ScopeStrategy::kOff) return std::nullopt;
  const int w = Window(step);
  if (decode_entries < w) return std::nullopt;
  if (options_.strategy == ScopeStrategy::kDiscontinuous) {
    const int z = std::max(1, (options_.T - options_.b2) / std::max(1, options_.b1));
    if (!first_fire_step_) first_fire_step_ = step;
    if ((step - *first_fire_step_) % z != 0) return std::nullopt;
  }
  return w - options_.b2;
}

int ScopeSchedule::MaxHistory(int max_steps) const {
  if (options_.strategy == ScopeStrategy::kOff) return max_steps;
  // Older entries peak just before an eviction: W(s) - b2 kept plus the entries that arrived
  // since (one per step; up to z for the discontinuous strategy).
  const int last = std::max(0, max_steps - 1);
  int peak = Window(last) - options_.b2 + 1;
  if (options_.strategy == ScopeStrategy::kDiscontinuous) {
    peak += std::max(1, (options_.T - options_.b2) / std::max(1, options_.b1));
  }
  return std::clamp(peak, 1, std::max(1, max_steps));
}

}  // namespace sieve::worker
