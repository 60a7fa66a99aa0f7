// sieve-launch: writes (and runs) the mpirun command for one sieve-node job on a hostfile's
// hosts, a Slurm allocation, or this machine alone.
//
//   sieve-launch --hostfile hosts.txt --gpus-per-node 8 -- --model /models/llama-3.1-8b
//   sieve-launch --dry-run --gpus-per-node 4 -- --model DIR       # one node: localhost
//   sieve-launch -- --model DIR           # inside an sbatch script: hosts and GPUs from Slurm
//
// Options (also --opt=value):
//   --hostfile FILE      Open MPI hostfile (`host slots=G`); default: the Slurm allocation if
//                        SLURM_JOB_NODELIST is set, else localhost
//   --gpus-per-node G    workers per node (default: hostfile slots, SLURM_GPUS_PER_NODE, or 1
//                        with --device cpu)
//   --nodes N            use the first N hosts (default: all)
//   --decode-ranks LIST  forwarded to sieve-node (validated against the planned job)
//   --device cuda|cpu    forwarded to sieve-node
//   --iface IF           restrict MPI's TCP traffic (BTL and out-of-band) to IF (a name or CIDR)
//   --mca KEY VALUE      pass an Open MPI parameter to mpirun (repeatable)
//   --program PATH       what every rank runs (default: sieve-node beside this binary)
//   --mpirun PATH        the mpirun to run (default: mpirun)
//   --dry-run            print the command as one shell-quoted line and exit
// Everything after `--` goes to sieve-node unchanged. Exit codes: 2 bad usage or plan; otherwise
// mpirun's (this process becomes mpirun through execvp).
//
// The planning is launch/launch_plan.h (unit-tested in tests/unit/launch/launch_plan_test.cc);
// tests/mpi/two_host_test.sh runs a planned command across two network namespaces.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "comm/world_layout.h"
#include "launch/launch_plan.h"

extern char** environ;

namespace sieve::launch {
namespace {

constexpr const char* kUsage =
    "usage: sieve-launch [--hostfile FILE] [--gpus-per-node G] [--nodes N] [--decode-ranks LIST]\n"
    "                    [--device cuda|cpu] [--iface IF] [--mca KEY VALUE]... [--program PATH]\n"
    "                    [--mpirun PATH] [--dry-run] -- [sieve-node arguments...]\n";

int Fail(const std::string& message) {
  std::fprintf(stderr, "sieve-launch: %s\n%s", message.c_str(), kUsage);
  return 2;
}

bool ParseCount(const std::string& text, int* out) {
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str() || *end != '\0' || value <= 0 || value > 1 << 20) {
    return false;
  }
  *out = static_cast<int>(value);
  return true;
}

// sieve-node next to this executable, if it is there.
std::string DefaultProgram() {
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    std::string path(self, static_cast<size_t>(n));
    const size_t slash = path.rfind('/');
    if (slash != std::string::npos) {
      for (const char* relative : {"/sieve-node", "/../worker/sieve-node", "/../sieve-node"}) {
        const std::string candidate = path.substr(0, slash) + relative;
        if (access(candidate.c_str(), X_OK) == 0) return candidate;
      }
    }
  }
  return "sieve-node";
}

int Main(int argc, char** argv) {
  LaunchRequest request;
  std::string hostfile;
  std::string program;
  bool dry_run = false;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    request.env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }

  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      request.program_args.assign(argv + i + 1, argv + argc);
      break;
    }
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--dry-run") {
      dry_run = true;
      continue;
    }
    if (arg == "--mca") {
      if (i + 2 >= argc) return Fail("--mca needs KEY VALUE");
      request.mca.emplace_back(argv[i + 1], argv[i + 2]);
      i += 2;
      continue;
    }
    std::string value;
    const std::string name = arg.substr(0, arg.find('='));
    constexpr std::string_view kValueOptions[] = {"--hostfile",     "--gpus-per-node", "--nodes",
                                                  "--decode-ranks", "--device",        "--iface",
                                                  "--program",      "--mpirun"};
    if (std::find(std::begin(kValueOptions), std::end(kValueOptions), name) ==
        std::end(kValueOptions)) {
      if (!arg.starts_with("-")) {
        return Fail("unexpected argument '" + arg + "' (sieve-node arguments go after --)");
      }
      return Fail("unknown option '" + arg + "'");
    }
    if (const size_t eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else {
      if (i + 1 >= argc) return Fail(arg + " needs a value");
      value = argv[++i];
    }
    if (arg == "--hostfile") {
      hostfile = value;
    } else if (arg == "--gpus-per-node") {
      if (!ParseCount(value, &request.gpus_per_node)) {
        return Fail("--gpus-per-node '" + value + "' (expected a positive integer)");
      }
    } else if (arg == "--nodes") {
      if (!ParseCount(value, &request.nodes)) {
        return Fail("--nodes '" + value + "' (expected a positive integer)");
      }
    } else if (arg == "--decode-ranks") {
      StatusOr<std::vector<int>> ranks = comm::ParseRankList(value);
      if (!ranks.ok()) return Fail("--decode-ranks: " + ranks.status().message());
      request.decode_ranks = *ranks;
    } else if (arg == "--device") {
      request.device = value;
    } else if (arg == "--iface") {
      request.iface = value;
    } else if (arg == "--program") {
      program = value;
    } else {  // --mpirun
      request.mpirun = value;
    }
  }
  request.program = program.empty() ? DefaultProgram() : program;

  if (!hostfile.empty()) {
    std::ifstream in(hostfile);
    if (!in) return Fail("cannot read --hostfile '" + hostfile + "': " + std::strerror(errno));
    std::stringstream text;
    text << in.rdbuf();
    StatusOr<std::vector<HostEntry>> hosts = ParseHostfile(text.str());
    if (!hosts.ok()) return Fail(hostfile + ": " + hosts.status().message());
    request.hosts = std::move(*hosts);
  } else if (request.env.contains("SLURM_JOB_NODELIST") || request.env.contains("SLURM_NODELIST")) {
    StatusOr<std::vector<HostEntry>> hosts = HostsFromSlurm(request.env);
    if (!hosts.ok()) return Fail(hosts.status().message());
    request.hosts = std::move(*hosts);
    request.from_slurm = true;
  } else {
    request.hosts = {HostEntry{"localhost", 0}};
  }

  StatusOr<LaunchPlan> plan = PlanLaunch(request);
  if (!plan.ok()) return Fail(plan.status().message());
  if (dry_run) {
    std::printf("%s\n", ShellJoin(plan->argv).c_str());
    return 0;
  }
  std::vector<char*> exec_argv;
  for (std::string& word : plan->argv) exec_argv.push_back(word.data());
  exec_argv.push_back(nullptr);
  std::fflush(stdout);
  execvp(exec_argv[0], exec_argv.data());
  std::fprintf(stderr, "sieve-launch: cannot run '%s': %s\n", exec_argv[0], std::strerror(errno));
  return 127;
}

}  // namespace
}  // namespace sieve::launch

int main(int argc, char** argv) { return sieve::launch::Main(argc, argv); }
