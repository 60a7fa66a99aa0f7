#include "tools/cli.h"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "comm/log.h"

namespace sieve::tools {

StatusOr<Args> Args::Parse(int argc, char** argv, const std::set<std::string>& flags) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0 || a.size() == 2) {
      args.positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    const size_t eq = name.find('=');
    if (eq != std::string::npos) {
      args.values_[name.substr(0, eq)] = name.substr(eq + 1);
      continue;
    }
    if (flags.count(name)) {
      args.values_[name] = "1";
      continue;
    }
    if (i + 1 >= argc) return Status::InvalidArgument("--" + name + ": missing value");
    args.values_[name] = argv[++i];
  }
  return args;
}

std::optional<std::string> Args::Get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Args::GetOr(const std::string& name, const std::string& fallback) const {
  return Get(name).value_or(fallback);
}

StatusOr<std::optional<int64_t>> Args::GetInt(const std::string& name) const {
  auto v = Get(name);
  if (!v) return std::optional<int64_t>();
  errno = 0;
  char* end = nullptr;
  const long long x = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0' || errno != 0) {
    return Status::InvalidArgument("--" + name + ": expected an integer, got '" + *v + "'");
  }
  return std::optional<int64_t>(x);
}

StatusOr<std::optional<uint64_t>> Args::GetUint(const std::string& name) const {
  auto v = Get(name);
  if (!v) return std::optional<uint64_t>();
  errno = 0;
  char* end = nullptr;
  const unsigned long long x = std::strtoull(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0' || errno != 0 || (*v)[0] == '-') {
    return Status::InvalidArgument("--" + name + ": expected a non-negative integer, got '" + *v +
                                   "'");
  }
  return std::optional<uint64_t>(x);
}

StatusOr<std::optional<std::vector<int32_t>>> Args::GetIntList(const std::string& name) const {
  auto v = Get(name);
  if (!v) return std::optional<std::vector<int32_t>>();
  std::vector<int32_t> out;
  std::stringstream ss(*v);
  std::string item;
  while (std::getline(ss, item, ',')) {
    errno = 0;
    char* end = nullptr;
    const long long x = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || errno != 0 || x < INT32_MIN || x > INT32_MAX) {
      return Status::InvalidArgument("--" + name + ": '" + item + "' is not an integer");
    }
    out.push_back(static_cast<int32_t>(x));
  }
  return std::optional<std::vector<int32_t>>(std::move(out));
}

Status Args::CheckKnown(const std::set<std::string>& known) const {
  for (const auto& [name, value] : values_) {
    if (!known.count(name)) return Status::InvalidArgument("unknown option --" + name);
  }
  return Status::Ok();
}

StatusOr<std::string> ReadInput(const std::string& path) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
    return ss.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read '" + path + "'");
  ss << in.rdbuf();
  return ss.str();
}

int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return kExitOk;
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:  // what the request or a flag named does not exist (a model)
    case StatusCode::kOutOfRange:
    case StatusCode::kPayloadTooLarge:
    case StatusCode::kFailedPrecondition:
      return kExitUsage;
    default:
      return kExitInternal;
  }
}

Status ApplyLogLevel(const Args& args) {
  if (auto level = args.Get("log-level")) {
    LogLevel parsed;
    if (!ParseLogLevel(*level, &parsed)) {
      return Status::InvalidArgument("--log-level: expected debug, info, warn, error or off");
    }
    SetLogLevel(parsed);
  }
  return Status::Ok();
}

}  // namespace sieve::tools
