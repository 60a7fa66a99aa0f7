// Helpers shared by the unit tests: fixture paths and tensor comparison.
#pragma once

#include <string>
#include <vector>

namespace sieve::testing {

// Directory of the Hugging Face fixtures (env SIEVE_FIXTURES, else the configured default).
std::string FixturesDir();

// Path of a file inside the fixtures directory.
std::string FixturePath(const std::string& relative);

// max|a - b| / max|b|, the fixtures' relative error measure. Returns +inf on size mismatch or NaN.
double MaxAbsRelError(const float* a, const float* b, size_t n);

// Reads a whole file; fails the current test if it cannot.
std::string ReadFileOrDie(const std::string& path);

}  // namespace sieve::testing
