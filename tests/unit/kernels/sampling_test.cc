// Sample (kernels/sampling.h): the CPU reference against a naive sampler (a full sort, explicit
// top-k / top-p / inverse CDF in double), and LaunchSample against the reference: greedy exactly
// (ties to the lower id), and sampled ids for temperature {0.7, 1, 1.5} x top_k {0, 1, 40} x
// top_p {1, 0.9, 0.5} over vocab {37, 1000, 128256} with continuous and tie-heavy logits, 32
// uniforms each (8 for the 128K vocabulary). The GPU works with fp32 probabilities and 2^-40
// fixed-point masses, so an id may differ only where the naive sampler itself flips under a 1e-5
// perturbation of the uniform or of top_p; such draws must stay rare (< 5%).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <vector>

#include "kernels/sampling.h"
#include "tests/unit/kernels/gpu_test_util.h"

namespace sieve::kernels {
namespace {

using sieve::testing::AllEqual;

// The contract of kernels/sampling.h written out plainly.
int32_t NaiveSample(const float* row, int64_t vocab, float temperature, int top_k, double top_p,
                    double u) {
  if (temperature <= 0.f) {
    int32_t best = 0;
    for (int64_t v = 1; v < vocab; ++v) {
      if (row[v] > row[best]) best = static_cast<int32_t>(v);
    }
    return best;
  }
  double m = row[0];
  for (int64_t v = 1; v < vocab; ++v) m = std::max(m, double(row[v]));
  std::vector<double> p(vocab);
  double total = 0;
  for (int64_t v = 0; v < vocab; ++v) total += p[v] = std::exp((double(row[v]) - m) / temperature);
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a] > p[b]; });
  int64_t keep = top_k > 0 ? std::min<int64_t>(top_k, vocab) : vocab;
  if (top_p < 1.0) {
    double mass = 0;
    int64_t n = 0;
    while (n < keep) {
      mass += p[order[n++]] / total;
      if (mass >= top_p) break;
    }
    keep = std::max<int64_t>(1, n);
  }
  double kept = 0;
  for (int64_t i = 0; i < keep; ++i) kept += p[order[i]];
  double cum = 0;
  for (int64_t i = 0; i < keep; ++i) {
    cum += p[order[i]];
    if (cum > u * kept) return order[i];
  }
  return order[keep - 1];
}

std::vector<float> Logits(int64_t n, bool ties, uint64_t seed) {
  auto v = sieve::testing::RandomNormal(n, seed, 3.f);
  if (ties) {
    for (float& x : v) x = std::round(x);  // ~20 distinct values
  }
  return v;
}

TEST(SamplingKernelTest, RefMatchesNaive) {
  for (int64_t vocab : {37, 1000}) {
    for (bool ties : {false, true}) {
      const auto logits = Logits(vocab, ties, vocab);
      const auto uniforms = sieve::testing::RandomUniform(16, 3, 0.f, 1.f);
      for (float temperature : {0.f, 0.7f, 1.5f}) {
        for (int top_k : {0, 1, 5}) {
          for (float top_p : {1.f, 0.9f, 0.3f}) {
            for (float u : uniforms) {
              int32_t got = -1;
              SampleRef({.logits = logits.data(),
                         .uniforms = &u,
                         .out_ids = &got,
                         .rows = 1,
                         .vocab = vocab,
                         .stride = vocab,
                         .temperature = temperature,
                         .top_k = top_k,
                         .top_p = top_p});
              EXPECT_EQ(got, NaiveSample(logits.data(), vocab, temperature, top_k, top_p, u))
                  << "vocab=" << vocab << " T=" << temperature << " k=" << top_k << " p=" << top_p
                  << " u=" << u;
            }
          }
        }
      }
    }
  }
}

TEST(SamplingKernelTest, GpuMatchesRef) {
  SIEVE_SKIP_WITHOUT_GPU();
#if SIEVE_WITH_CUDA
  using sieve::testing::DeviceMemory;
  constexpr int64_t kRows = 32;
  for (int64_t vocab : {37, 1000, 128256}) {
    const int64_t rows = vocab > 10000 ? 8 : kRows;
    for (bool ties : {false, true}) {
      // Row r holds its own logits; row 0 has its maximum repeated (greedy tie-break).
      std::vector<float> logits;
      for (int64_t r = 0; r < rows; ++r) {
        const auto row = Logits(vocab, ties, 100 * vocab + r);
        logits.insert(logits.end(), row.begin(), row.end());
      }
      {
        const auto it = std::max_element(logits.begin(), logits.begin() + vocab);
        const float top = *it;
        logits[vocab - 1] = top;
        logits[vocab / 2] = top;
      }
      const auto uniforms = sieve::testing::RandomUniform(rows, vocab + 7, 0.f, 1.f);
      DeviceMemory d_logits = DeviceMemory::From(logits), d_u = DeviceMemory::From(uniforms),
                   d_out(kRows * sizeof(int32_t));
      int ambiguous = 0, draws = 0;
      for (float temperature : {0.f, 0.7f, 1.f, 1.5f}) {
        for (int top_k : {0, 1, 40}) {
          for (float top_p : {1.f, 0.9f, 0.5f}) {
            if (temperature == 0.f && (top_k != 0 || top_p != 1.f)) continue;
            std::vector<int32_t> want(rows);
            SampleArgs args{.logits = logits.data(),
                            .uniforms = uniforms.data(),
                            .out_ids = want.data(),
                            .rows = rows,
                            .vocab = vocab,
                            .stride = vocab,
                            .temperature = temperature,
                            .top_k = top_k,
                            .top_p = top_p};
            SampleRef(args);
            args.logits = d_logits.as<float>();
            args.uniforms = d_u.as<float>();
            args.out_ids = d_out.as<int32_t>();
            ASSERT_EQ(SampleWorkspaceBytes(args), 0u);
            ASSERT_EQ(LaunchSample(args, nullptr, 0, nullptr), cudaSuccess);
            ASSERT_TRUE(sieve::testing::DeviceSync());
            const auto got = d_out.ToVector<int32_t>(rows);
            const std::string what = "vocab=" + std::to_string(vocab) + (ties ? " ties" : "") +
                                     " T=" + std::to_string(temperature) +
                                     " k=" + std::to_string(top_k) + " p=" + std::to_string(top_p);
            if (temperature == 0.f) {
              EXPECT_TRUE(AllEqual(got, want, "greedy " + what));
              EXPECT_EQ(got[0], std::min<int32_t>(
                                    static_cast<int32_t>(
                                        std::max_element(logits.begin(), logits.begin() + vocab) -
                                        logits.begin()),
                                    static_cast<int32_t>(vocab / 2)));
              continue;
            }
            for (int64_t r = 0; r < rows; ++r) {
              ++draws;
              if (got[r] == want[r]) continue;
              // A different id is acceptable only if the naive sampler itself flips under a
              // 1e-5 perturbation of the uniform or of top_p.
              const float* row = logits.data() + r * vocab;
              std::set<int32_t> acceptable;
              for (double du : {0.0, -1e-5, 1e-5}) {
                for (double dp : {0.0, -1e-5, 1e-5}) {
                  const double u = std::clamp(double(uniforms[r]) + du, 0.0, 1.0 - 1e-12);
                  acceptable.insert(NaiveSample(row, vocab, temperature, top_k,
                                                top_p < 1.f ? top_p + dp : 1.0, u));
                }
              }
              ++ambiguous;
              EXPECT_TRUE(acceptable.size() > 1 && acceptable.count(got[r]) == 1)
                  << what << " row " << r << ": gpu " << got[r] << " ref " << want[r];
            }
          }
        }
      }
      EXPECT_LT(ambiguous * 20, draws) << "too many draws near a CDF boundary";
    }
  }
#endif
}

}  // namespace
}  // namespace sieve::kernels
