// SCOPE's schedule against tables derived by hand from the definitions in
// worker/scope_schedule.h (and tools/oracle.py): for each step s, whether the strategy fires and
// the decode entries left after the step. The simulation below is the cache's bookkeeping:
// n_d = entries after adding step s's token; a firing step keeps W(s) - b2 older entries plus b2.
#include <gtest/gtest.h>

#include "worker/scope_schedule.h"

namespace sieve::worker {
namespace {

struct Trace {
  std::vector<int> fired;
  std::vector<int> entries_after;  // per step
};

Trace Simulate(ScopeOptions o, int steps) {
  ScopeSchedule schedule(o);
  Trace t;
  int entries = 0;
  for (int s = 0; s < steps; ++s) {
    ++entries;
    if (auto keep = schedule.Fire(s, entries)) {
      t.fired.push_back(s);
      entries = std::min(entries, *keep + o.b2);
    }
    t.entries_after.push_back(entries);
  }
  return t;
}

TEST(ScopeScheduleTest, SlideTable) {
  // W = b1 + b2 = 4: nothing until 4 entries, then one eviction per step.
  const Trace t = Simulate({.strategy = ScopeStrategy::kSlide, .b1 = 2, .b2 = 2, .T = 10}, 8);
  EXPECT_EQ(t.fired, (std::vector<int>{3, 4, 5, 6, 7}));
  EXPECT_EQ(t.entries_after, (std::vector<int>{1, 2, 3, 4, 4, 4, 4, 4}));
}

TEST(ScopeScheduleTest, AdaptiveTable) {
  // W(s) = 2 + floor(4 * max(0, s - 2) / 8): 2 2 2 2 3 3 4 4 5 5.
  const ScopeOptions o{.strategy = ScopeStrategy::kAdaptive, .b1 = 4, .b2 = 2, .T = 10};
  const std::vector<int> windows = {2, 2, 2, 2, 3, 3, 4, 4, 5, 5};
  ScopeSchedule schedule(o);
  for (int s = 0; s < 10; ++s) EXPECT_EQ(schedule.Window(s), windows[s]) << "step " << s;
  const Trace t = Simulate(o, 10);
  EXPECT_EQ(t.fired, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(t.entries_after, (std::vector<int>{1, 2, 2, 2, 3, 3, 4, 4, 5, 5}));
}

TEST(ScopeScheduleTest, DiscontinuousTable) {
  // Same W(s); z = max(1, (10 - 2) / 4) = 2: fires at s_first = 1, then every second step.
  const Trace t =
      Simulate({.strategy = ScopeStrategy::kDiscontinuous, .b1 = 4, .b2 = 2, .T = 10}, 10);
  EXPECT_EQ(t.fired, (std::vector<int>{1, 3, 5, 7, 9}));
  EXPECT_EQ(t.entries_after, (std::vector<int>{1, 2, 3, 2, 3, 3, 4, 4, 5, 5}));
}

TEST(ScopeScheduleTest, OracleScenarios) {
  // oracle_dev.json: b1 = b2 = 8, T = 40, 39 decode steps.
  EXPECT_EQ(
      Simulate({.strategy = ScopeStrategy::kSlide, .b1 = 8, .b2 = 8, .T = 40}, 39).fired.front(),
      15);
  const Trace adaptive =
      Simulate({.strategy = ScopeStrategy::kAdaptive, .b1 = 8, .b2 = 8, .T = 40}, 39);
  EXPECT_EQ(adaptive.fired.front(), 7);
  EXPECT_EQ(adaptive.entries_after.back(), 15);  // final_cache 575 = 560 + 15
  const Trace disc =
      Simulate({.strategy = ScopeStrategy::kDiscontinuous, .b1 = 8, .b2 = 8, .T = 40}, 39);
  EXPECT_EQ(disc.fired, (std::vector<int>{7, 11, 15, 19, 23, 27, 31, 35}));
  EXPECT_EQ(disc.entries_after.back(), 17);  // final_cache 577
}

TEST(ScopeScheduleTest, OffNeverFiresAndHistoryCoversEverything) {
  const ScopeOptions o{.strategy = ScopeStrategy::kOff, .b1 = 1, .b2 = 1, .T = 4};
  EXPECT_TRUE(Simulate(o, 50).fired.empty());
  EXPECT_EQ(ScopeSchedule(o).ring(), 0);
  EXPECT_EQ(ScopeSchedule(o).MaxHistory(50), 50);
}

TEST(ScopeScheduleTest, HistoryCapacityIsNeverExceeded) {
  for (ScopeStrategy s :
       {ScopeStrategy::kSlide, ScopeStrategy::kAdaptive, ScopeStrategy::kDiscontinuous}) {
    for (int b1 : {1, 3, 8, 20}) {
      for (int b2 : {0, 2, 8}) {
        const int T = b2 + 1 + b1 * 3;
        const ScopeOptions o{.strategy = s, .b1 = b1, .b2 = b2, .T = T};
        if (b1 + b2 == 0) continue;
        const int steps = T + 5;
        const int cap = ScopeSchedule(o).MaxHistory(steps);
        ScopeSchedule schedule(o);
        int entries = 0;
        for (int step = 0; step < steps; ++step) {
          ++entries;
          EXPECT_LE(entries - b2, cap) << ScopeStrategyName(s) << " b1=" << b1 << " b2=" << b2;
          if (auto keep = schedule.Fire(step, entries)) entries = std::min(entries, *keep + b2);
        }
      }
    }
  }
}

}  // namespace
}  // namespace sieve::worker
