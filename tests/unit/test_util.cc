#include "tests/unit/test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

namespace sieve::testing {

std::string FixturesDir() {
  if (const char* env = std::getenv("SIEVE_FIXTURES")) return env;
  return SIEVE_FIXTURES_DIR;
}

std::string FixturePath(const std::string& relative) { return FixturesDir() + "/" + relative; }

double MaxAbsRelError(const float* a, const float* b, size_t n) {
  double max_diff = 0, max_ref = 0;
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) return std::numeric_limits<double>::infinity();
    max_diff = std::max(max_diff, std::abs(double(a[i]) - double(b[i])));
    max_ref = std::max(max_ref, std::abs(double(b[i])));
  }
  if (max_ref == 0) return max_diff == 0 ? 0 : std::numeric_limits<double>::infinity();
  return max_diff / max_ref;
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace sieve::testing
