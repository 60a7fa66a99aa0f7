// sieve-launch's planner: hostfile parsing, Slurm nodelist expansion and the mpirun command.
// See launch_plan.h. Tested by tests/unit/launch/launch_plan_test.cc.
#include "launch/launch_plan.h"

#include <algorithm>
#include <charconv>
#include <cstdint>

#include "comm/world_layout.h"

namespace sieve::launch {
namespace {

constexpr size_t kMaxHosts = 65536;

std::string_view Trim(std::string_view s) {
  const size_t begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return {};
  const size_t end = s.find_last_not_of(" \t\r\n");
  return s.substr(begin, end - begin + 1);
}

bool ParseNonNegative(std::string_view text, int* out) {
  if (text.empty()) return false;
  int value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value < 0) return false;
  *out = value;
  return true;
}

std::vector<std::string_view> SplitWhitespace(std::string_view s) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    const size_t begin = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    if (i > begin) words.push_back(s.substr(begin, i - begin));
  }
  return words;
}

// Splits at commas that are not inside brackets.
StatusOr<std::vector<std::string_view>> SplitTopLevel(std::string_view s) {
  std::vector<std::string_view> items;
  int depth = 0;
  size_t begin = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    const char c = i < s.size() ? s[i] : ',';
    if (c == '[') {
      if (++depth > 1) {
        return Status::InvalidArgument("nested '[' at offset " + std::to_string(i));
      }
    } else if (c == ']') {
      if (--depth < 0) {
        return Status::InvalidArgument("unmatched ']' at offset " + std::to_string(i));
      }
    } else if (c == ',' && depth == 0) {
      items.push_back(s.substr(begin, i - begin));
      begin = i + 1;
    }
  }
  if (depth != 0) return Status::InvalidArgument("unclosed '['");
  return items;
}

// Expands one bracket body "01-03,07" into its numbers as padded strings.
StatusOr<std::vector<std::string>> ExpandRanges(std::string_view body) {
  std::vector<std::string> out;
  size_t begin = 0;
  for (size_t i = 0; i <= body.size(); ++i) {
    if (i < body.size() && body[i] != ',') continue;
    const std::string_view item = body.substr(begin, i - begin);
    begin = i + 1;
    const size_t dash = item.find('-');
    const std::string_view lo_text = item.substr(0, dash);
    const std::string_view hi_text =
        dash == std::string_view::npos ? lo_text : item.substr(dash + 1);
    int lo = 0;
    int hi = 0;
    if (!ParseNonNegative(lo_text, &lo) || !ParseNonNegative(hi_text, &hi)) {
      return Status::InvalidArgument("range item '" + std::string(item) +
                                     "' (expected N or N-M with digits only)");
    }
    if (hi < lo) {
      return Status::InvalidArgument("range '" + std::string(item) + "' ends before it starts");
    }
    if (static_cast<size_t>(hi - lo) + out.size() >= kMaxHosts) {
      return Status::InvalidArgument("range '" + std::string(item) + "' has too many hosts");
    }
    const size_t width = lo_text.size();
    for (int n = lo; n <= hi; ++n) {
      std::string digits = std::to_string(n);
      if (digits.size() < width) digits.insert(0, width - digits.size(), '0');
      out.push_back(std::move(digits));
    }
  }
  return out;
}

bool ForwardedVariable(std::string_view name, bool from_slurm) {
  if (name == "PATH" || name == "LD_LIBRARY_PATH") return true;
  if (from_slurm && name == "CUDA_VISIBLE_DEVICES") return false;
  for (std::string_view prefix : {"NCCL_", "CUDA_", "UCX_", "SIEVE_"}) {
    if (name.starts_with(prefix)) return true;
  }
  return false;
}

}  // namespace

StatusOr<std::vector<HostEntry>> ParseHostfile(std::string_view text) {
  std::vector<HostEntry> hosts;
  int line_number = 0;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(begin, end - begin);
    begin = end + 1;
    ++line_number;
    if (const size_t hash = line.find('#'); hash != std::string_view::npos) {
      line = line.substr(0, hash);
    }
    const std::vector<std::string_view> words = SplitWhitespace(Trim(line));
    if (words.empty()) continue;
    HostEntry entry;
    entry.name = std::string(words[0]);
    if (entry.name.find('=') != std::string::npos) {
      return Status::InvalidArgument("hostfile line " + std::to_string(line_number) +
                                     ": expected a host name first, got '" + entry.name + "'");
    }
    for (size_t w = 1; w < words.size(); ++w) {
      const size_t eq = words[w].find('=');
      const std::string_view key = words[w].substr(0, eq);
      int value = 0;
      if (eq == std::string_view::npos || !ParseNonNegative(words[w].substr(eq + 1), &value)) {
        return Status::InvalidArgument("hostfile line " + std::to_string(line_number) + ": '" +
                                       std::string(words[w]) +
                                       "' (expected slots=N or max_slots=N)");
      }
      if (key == "slots" || key == "count" || key == "cpu") {
        entry.slots = value;
      } else if (key != "max_slots" && key != "max-slots") {
        return Status::InvalidArgument("hostfile line " + std::to_string(line_number) +
                                       ": unknown key '" + std::string(key) +
                                       "' (expected slots= or max_slots=)");
      }
    }
    auto same = std::find_if(hosts.begin(), hosts.end(),
                             [&](const HostEntry& h) { return h.name == entry.name; });
    if (same != hosts.end()) {
      same->slots += entry.slots;
    } else {
      hosts.push_back(std::move(entry));
    }
  }
  return hosts;
}

StatusOr<std::vector<std::string>> ExpandSlurmNodelist(std::string_view nodelist) {
  const std::string_view trimmed = Trim(nodelist);
  auto fail = [&](const Status& why) {
    return Status::InvalidArgument("Slurm node list '" + std::string(nodelist) +
                                   "': " + why.message());
  };
  if (trimmed.empty()) return fail(Status::InvalidArgument("empty"));
  StatusOr<std::vector<std::string_view>> items = SplitTopLevel(trimmed);
  if (!items.ok()) return fail(items.status());
  std::vector<std::string> hosts;
  for (std::string_view item : *items) {
    if (item.empty()) return fail(Status::InvalidArgument("empty item between commas"));
    // Product over bracket groups, left to right.
    std::vector<std::string> names = {""};
    size_t i = 0;
    while (i < item.size()) {
      const size_t open = item.find('[', i);
      const std::string_view literal =
          item.substr(i, open == std::string_view::npos ? std::string_view::npos : open - i);
      for (std::string& n : names) n += literal;
      if (open == std::string_view::npos) break;
      const size_t close = item.find(']', open);  // balanced: SplitTopLevel checked
      StatusOr<std::vector<std::string>> numbers =
          ExpandRanges(item.substr(open + 1, close - open - 1));
      if (!numbers.ok()) return fail(numbers.status());
      if (names.size() * numbers->size() + hosts.size() > kMaxHosts) {
        return fail(Status::InvalidArgument("more than 65536 hosts"));
      }
      std::vector<std::string> next;
      next.reserve(names.size() * numbers->size());
      for (const std::string& n : names) {
        for (const std::string& num : *numbers) next.push_back(n + num);
      }
      names = std::move(next);
      i = close + 1;
    }
    for (std::string& n : names) hosts.push_back(std::move(n));
  }
  return hosts;
}

StatusOr<int> ParseSlurmGpuCount(std::string_view value) {
  const std::string_view trimmed = Trim(value);
  if (trimmed.find(',') != std::string_view::npos) {
    return Status::InvalidArgument("GPU count '" + std::string(value) +
                                   "': several GPU types (pass --gpus-per-node)");
  }
  const size_t colon = trimmed.rfind(':');
  std::string_view count = colon == std::string_view::npos ? trimmed : trimmed.substr(colon + 1);
  // "4(x2)" repeats per node: the count is the same.
  if (const size_t paren = count.find('('); paren != std::string_view::npos) {
    count = count.substr(0, paren);
  }
  int n = 0;
  if (!ParseNonNegative(count, &n)) {
    return Status::InvalidArgument("GPU count '" + std::string(value) +
                                   "' (expected N, TYPE:N or gpu:TYPE:N)");
  }
  return n;
}

StatusOr<std::vector<HostEntry>> HostsFromSlurm(const Environment& env) {
  auto get = [&](std::string_view name) -> const std::string* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : &it->second;
  };
  const std::string* nodelist = get("SLURM_JOB_NODELIST");
  if (nodelist == nullptr) nodelist = get("SLURM_NODELIST");
  if (nodelist == nullptr) {
    return Status::NotFound("no Slurm allocation (SLURM_JOB_NODELIST is not set)");
  }
  SIEVE_ASSIGN_OR_RETURN(std::vector<std::string> names, ExpandSlurmNodelist(*nodelist));
  const std::string* nnodes = get("SLURM_NNODES");
  if (nnodes == nullptr) nnodes = get("SLURM_JOB_NUM_NODES");
  if (nnodes != nullptr) {
    int n = 0;
    if (!ParseNonNegative(Trim(*nnodes), &n) || n != static_cast<int>(names.size())) {
      return Status::InvalidArgument("SLURM_JOB_NODELIST='" + *nodelist + "' names " +
                                     std::to_string(names.size()) + " hosts but SLURM_NNODES='" +
                                     *nnodes + "'");
    }
  }
  int gpus = 0;
  if (const std::string* v = get("SLURM_GPUS_PER_NODE")) {
    SIEVE_ASSIGN_OR_RETURN(gpus, ParseSlurmGpuCount(*v));
  } else if (const std::string* v = get("SLURM_GPUS_ON_NODE")) {
    SIEVE_ASSIGN_OR_RETURN(gpus, ParseSlurmGpuCount(*v));
  } else if (const std::string* v = get("SLURM_JOB_GPUS"); v != nullptr && !v->empty()) {
    gpus = static_cast<int>(std::count(v->begin(), v->end(), ',')) + 1;
  }
  std::vector<HostEntry> hosts;
  hosts.reserve(names.size());
  for (std::string& n : names) hosts.push_back(HostEntry{std::move(n), gpus});
  return hosts;
}

StatusOr<LaunchPlan> PlanLaunch(const LaunchRequest& request) {
  if (request.hosts.empty()) {
    return Status::InvalidArgument(
        "no hosts: pass --hostfile FILE or run inside a Slurm allocation");
  }
  if (request.nodes < 0 || request.nodes > static_cast<int>(request.hosts.size())) {
    return Status::InvalidArgument("--nodes " + std::to_string(request.nodes) + ", but only " +
                                   std::to_string(request.hosts.size()) + " hosts are available");
  }
  if (!request.device.empty() && request.device != "cuda" && request.device != "cpu") {
    return Status::InvalidArgument("--device '" + request.device + "' (expected cuda or cpu)");
  }
  if (request.gpus_per_node < 0) {
    return Status::InvalidArgument("--gpus-per-node " + std::to_string(request.gpus_per_node) +
                                   " (expected a positive count)");
  }
  const int nodes = request.nodes > 0 ? request.nodes : static_cast<int>(request.hosts.size());

  LaunchPlan plan;
  std::vector<int> node_of_rank = {0};  // the coordinator
  for (int n = 0; n < nodes; ++n) {
    const HostEntry& host = request.hosts[n];
    int workers = request.gpus_per_node > 0 ? request.gpus_per_node : host.slots;
    if (workers == 0 && request.device == "cpu") workers = 1;
    if (workers <= 0) {
      return Status::InvalidArgument(
          "cannot tell how many GPUs host '" + host.name +
          "' has: pass --gpus-per-node G, or slots=G in the hostfile (or SLURM_GPUS_PER_NODE)");
    }
    plan.hosts.push_back(host.name);
    plan.ranks_per_host.push_back(workers + (n == 0 ? 1 : 0));
    plan.num_workers += workers;
    node_of_rank.insert(node_of_rank.end(), workers, n);
  }
  plan.num_ranks = 1 + plan.num_workers;

  // The same validation sieve-node applies at startup, so a bad --decode-ranks fails here.
  StatusOr<comm::WorldLayout> layout =
      comm::WorldLayout::Create(0, node_of_rank, request.decode_ranks, /*devices_per_node=*/0);
  if (!layout.ok()) {
    return Status::InvalidArgument("--decode-ranks: " + layout.status().message());
  }

  std::vector<std::string>& argv = plan.argv;
  argv = {request.mpirun, "-np", std::to_string(plan.num_ranks)};
  std::string host_list;
  for (size_t i = 0; i < plan.hosts.size(); ++i) {
    if (i > 0) host_list += ',';
    host_list += plan.hosts[i] + ":" + std::to_string(plan.ranks_per_host[i]);
  }
  argv.insert(argv.end(), {"--host", host_list, "--map-by", "slot", "--bind-to", "none"});
  if (!request.iface.empty()) {
    argv.insert(argv.end(), {"--mca", "btl_tcp_if_include", request.iface, "--mca",
                             "oob_tcp_if_include", request.iface});
  }
  for (const auto& [key, value] : request.mca) argv.insert(argv.end(), {"--mca", key, value});
  if (!request.env.contains("NCCL_NVLS_ENABLE")) {
    argv.insert(argv.end(), {"-x", "NCCL_NVLS_ENABLE=0"});
  }
  for (const auto& [name, value] : request.env) {  // std::map: sorted, deterministic
    if (ForwardedVariable(name, request.from_slurm)) argv.insert(argv.end(), {"-x", name});
  }
  argv.push_back(request.program);
  if (!request.device.empty()) argv.insert(argv.end(), {"--device", request.device});
  if (!request.decode_ranks.empty()) {
    std::string ranks;
    for (size_t i = 0; i < request.decode_ranks.size(); ++i) {
      if (i > 0) ranks += ',';
      ranks += std::to_string(request.decode_ranks[i]);
    }
    argv.insert(argv.end(), {"--decode-ranks", ranks});
  }
  argv.insert(argv.end(), request.program_args.begin(), request.program_args.end());
  return plan;
}

std::string ShellQuote(std::string_view word) {
  const bool safe = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("@%+=:,./_-").find(c) != std::string_view::npos;
  });
  if (safe) return std::string(word);
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

std::string ShellJoin(const std::vector<std::string>& words) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += ' ';
    out += ShellQuote(words[i]);
  }
  return out;
}

}  // namespace sieve::launch
