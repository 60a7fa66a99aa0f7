// API key loading and constant-time comparison (see api_key.h).
#include "coordinator/api_key.h"

#include <fstream>
#include <sstream>

namespace sieve::coordinator {

bool ConstantTimeEquals(std::string_view expected, std::string_view given) {
  // Every byte of `expected` is visited whatever `given` holds; the length difference is folded
  // in instead of returning early.
  volatile unsigned char diff = expected.size() == given.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff = diff | (static_cast<unsigned char>(expected[i]) ^ g);
  }
  return diff == 0;
}

StatusOr<std::string> LoadApiKeyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(StrFormat("--api-key-file %s: cannot be read", path.c_str()));
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string key = ss.str();
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!key.empty() && is_space(key.back())) key.pop_back();
  size_t start = 0;
  while (start < key.size() && is_space(key[start])) ++start;
  key.erase(0, start);
  if (key.empty()) {
    return Status::InvalidArgument(StrFormat("--api-key-file %s: the file is empty", path.c_str()));
  }
  for (char c : key) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) {
      return Status::InvalidArgument(StrFormat(
          "--api-key-file %s: the key contains whitespace or control characters", path.c_str()));
    }
  }
  return key;
}

std::optional<std::string_view> BearerToken(std::string_view value) {
  constexpr std::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size()) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    char c = value[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kScheme[i]) return std::nullopt;
  }
  std::string_view token = value.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  if (token.empty()) return std::nullopt;
  return token;
}

}  // namespace sieve::coordinator
