// Minimal command-line handling shared by the tools: `--name value` / `--flag` options, positional
// words, typed getters that report a clear error, and the exit codes every tool uses.
//
//   exit 0  success
//   exit 1  internal error (a bug, a device failure)
//   exit 2  bad usage or bad request (the message says which flag or field)
//   exit 3  the model could not be loaded (missing file, bad checkpoint, unsupported config)
//
// Tested through the CLI tests in tests/cli/.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "comm/status.h"

namespace sieve::tools {

constexpr int kExitOk = 0;
constexpr int kExitInternal = 1;
constexpr int kExitUsage = 2;
constexpr int kExitModel = 3;

class Args {
 public:
  // `flags` are options without a value; everything else starting with -- takes one.
  static StatusOr<Args> Parse(int argc, char** argv, const std::set<std::string>& flags);

  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  std::optional<std::string> Get(const std::string& name) const;
  std::string GetOr(const std::string& name, const std::string& fallback) const;
  StatusOr<std::optional<int64_t>> GetInt(const std::string& name) const;
  StatusOr<std::optional<uint64_t>> GetUint(const std::string& name) const;
  // "1,2,3" -> ids.
  StatusOr<std::optional<std::vector<int32_t>>> GetIntList(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }
  // INVALID_ARGUMENT naming an option not in `known`.
  Status CheckKnown(const std::set<std::string>& known) const;

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

// Reads a whole file, or stdin for "-".
StatusOr<std::string> ReadInput(const std::string& path);

// The exit code for a status from a given phase.
int ExitCodeFor(const Status& status);

// Sets the log level from --log-level (if given); returns an error for an unknown level.
Status ApplyLogLevel(const Args& args);

}  // namespace sieve::tools
