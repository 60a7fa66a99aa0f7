// The pure half of sieve-launch: from a host list (an Open MPI hostfile or a Slurm allocation)
// and the GPUs per node, the mpirun command that starts one sieve-node job.
//
// The job is 1 coordinator + G workers per node. Rank order follows host order: the first host
// runs rank 0 (the coordinator) and ranks 1..G, the next host the next G ranks, and so on, so
// every node's GPU ranks are consecutive and WorldLayout (comm/world_layout.h) gives them devices
// 0..G-1. The command says so explicitly, in a form Open MPI 4.1 accepts with and without a
// Slurm allocation (checked with `mpirun --display-map --do-not-launch`):
//
//   mpirun -np 1+G*N --host A:G+1,B:G,... --map-by slot --bind-to none ...
//
// `--host h:n` gives each host exactly its share of slots and `--map-by slot` fills hosts in
// order. (`--map-by ppr:G:node` cannot place the one extra coordinator rank, and a rankfile
// would bind every rank to named cores.) Inside Slurm the --host list filters the allocation,
// whose slot count per node must be at least G+1 (slurm_example.sbatch asks for
// --ntasks-per-node=G+1). `--bind-to none` because the coordinator runs a thread pool and the
// CPU backend runs OpenMP: Open MPI's default core binding would squeeze each rank onto one core.
//
// Environment: NCCL_*, CUDA_*, UCX_* and SIEVE_* variables present in the launcher's environment
// are forwarded with `-x NAME` (plus PATH and LD_LIBRARY_PATH, so remote ranks resolve the same
// binaries and libraries), and NCCL_NVLS_ENABLE=0 unless set (NVLink multicast stays off).
// Under Slurm CUDA_VISIBLE_DEVICES is not forwarded: Slurm sets it per node. --iface IF adds
// `--mca btl_tcp_if_include IF --mca oob_tcp_if_include IF`; --mca KEY VALUE passes any other
// Open MPI parameter through.
//
// Everything here is a pure function of its arguments (no I/O, no environment reads).
// Tested by tests/unit/launch/launch_plan_test.cc; the whole tool by tests/mpi/two_host_test.sh.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "comm/status.h"

namespace sieve::launch {

// One line of a host list. `slots` is the number of workers (GPUs) to run there; 0 = not given.
struct HostEntry {
  std::string name;
  int slots = 0;
  friend bool operator==(const HostEntry&, const HostEntry&) = default;
};

// Parses an Open MPI hostfile: one host per line, optionally `slots=N` (synonyms `count=N`,
// `cpu=N`) and `max_slots=M` (checked, not used); `#` starts a comment; blank lines are skipped.
// A host listed twice has its slots added (as Open MPI does) and keeps its first position.
// InvalidArgument names the line number and what was expected.
StatusOr<std::vector<HostEntry>> ParseHostfile(std::string_view text);

// Expands a Slurm hostlist expression: "gpu[01-03,07],cpu5" -> gpu01 gpu02 gpu03 gpu07 cpu5.
// Ranges keep the zero padding of their lower bound; several bracket groups in one name expand
// as a product ("r[1-2]n[1-2]" -> r1n1 r1n2 r2n1 r2n2). InvalidArgument on unbalanced brackets,
// empty items, reversed ranges or more than 65536 hosts.
StatusOr<std::vector<std::string>> ExpandSlurmNodelist(std::string_view nodelist);

// The GPU count of SLURM_GPUS_PER_NODE ("4", "h100:4", "gpu:h100:4") or SLURM_GPUS_ON_NODE
// ("4"). InvalidArgument for anything else (several GPU types, a non-number).
StatusOr<int> ParseSlurmGpuCount(std::string_view value);

// Environment variables by name (what main() reads from `environ`).
using Environment = std::map<std::string, std::string, std::less<>>;

// The hosts of the Slurm allocation in `env`: SLURM_JOB_NODELIST (or SLURM_NODELIST), checked
// against SLURM_NNODES (or SLURM_JOB_NUM_NODES) when present; slots = SLURM_GPUS_PER_NODE, else
// SLURM_GPUS_ON_NODE, else the length of SLURM_JOB_GPUS, else 0. NotFound when `env` holds no
// Slurm node list.
StatusOr<std::vector<HostEntry>> HostsFromSlurm(const Environment& env);

// What to launch.
struct LaunchRequest {
  std::vector<HostEntry> hosts;   // in order; the first runs the coordinator
  bool from_slurm = false;        // hosts came from a Slurm allocation
  int gpus_per_node = 0;          // workers per node; 0 = each host's slots (or 1 on cpu)
  int nodes = 0;                  // use the first `nodes` hosts; 0 = all of them
  std::vector<int> decode_ranks;  // forwarded as --decode-ranks (validated here)
  std::string device;             // "", "cuda" or "cpu": forwarded as --device
  std::string iface;              // network interface (or CIDR) for MPI's TCP traffic
  std::vector<std::pair<std::string, std::string>> mca;  // extra `--mca KEY VALUE` for mpirun
  std::string mpirun = "mpirun";                         // the mpirun to run
  std::string program = "sieve-node";                    // the program every rank runs
  std::vector<std::string> program_args;  // after `--` on the sieve-launch command line
  Environment env;                        // the launcher's environment (for -x forwarding)
};

// The command and the shape it produces.
struct LaunchPlan {
  std::vector<std::string> hosts;   // hosts used, in rank order
  std::vector<int> ranks_per_host;  // ranks on each host (the first includes the coordinator)
  int num_ranks = 0;                // 1 + num_workers
  int num_workers = 0;
  std::vector<std::string> argv;  // mpirun and its arguments, ready for execvp
};

// Builds the plan. InvalidArgument (naming the option and what was expected) when there are no
// hosts, `nodes` exceeds them, the GPUs per node cannot be told, --device is not cuda/cpu, or a
// decode rank is not a worker of the planned job.
StatusOr<LaunchPlan> PlanLaunch(const LaunchRequest& request);

// POSIX-shell quoting: words made only of safe characters stay bare, others are single-quoted
// ('it'\''s'). ShellJoin quotes each word and joins them with spaces (the --dry-run line).
std::string ShellQuote(std::string_view word);
std::string ShellJoin(const std::vector<std::string>& words);

}  // namespace sieve::launch
