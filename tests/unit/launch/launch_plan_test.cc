// sieve-launch's pure planner: Open MPI hostfile parsing, Slurm node list expansion and GPU
// counts, rank counts and the exact mpirun command, shell quoting, and every error path.
// The whole tool runs for real in tests/mpi/two_host_test.sh.
#include "launch/launch_plan.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sieve::launch {
namespace {

using Strings = std::vector<std::string>;

TEST(LaunchPlanTest, ParseHostfile) {
  const char* text =
      "# two GPU nodes\n"
      "gpu-a slots=4   # trailing comment\n"
      "\n"
      "   gpu-b slots=4 max_slots=8\n"
      "10.0.0.7\n"
      "gpu-a slots=2\n"  // listed again: slots add up, first position kept
      "gpu-c count=1\r\n";
  StatusOr<std::vector<HostEntry>> hosts = ParseHostfile(text);
  ASSERT_TRUE(hosts.ok()) << hosts.status().ToString();
  const std::vector<HostEntry> want = {{"gpu-a", 6}, {"gpu-b", 4}, {"10.0.0.7", 0}, {"gpu-c", 1}};
  EXPECT_EQ(*hosts, want);
  EXPECT_TRUE(ParseHostfile("# nothing\n\n")->empty());
}

TEST(LaunchPlanTest, ParseHostfileErrorsNameTheLine) {
  auto message = [](const char* text) {
    StatusOr<std::vector<HostEntry>> hosts = ParseHostfile(text);
    EXPECT_FALSE(hosts.ok()) << text;
    return hosts.ok() ? std::string() : hosts.status().message();
  };
  EXPECT_NE(message("a slots=1\nb slots=x\n").find("line 2"), std::string::npos);
  EXPECT_NE(message("a slots=-1\n").find("slots=N"), std::string::npos);
  EXPECT_NE(message("a gpus=4\n").find("unknown key 'gpus'"), std::string::npos);
  EXPECT_NE(message("slots=4\n").find("expected a host name first"), std::string::npos);
  EXPECT_NE(message("a slots\n").find("'slots'"), std::string::npos);
}

TEST(LaunchPlanTest, ExpandSlurmNodelist) {
  EXPECT_EQ(*ExpandSlurmNodelist("gpu[01-03,07],cpu5"),
            Strings({"gpu01", "gpu02", "gpu03", "gpu07", "cpu5"}));
  EXPECT_EQ(*ExpandSlurmNodelist("node7"), Strings({"node7"}));
  EXPECT_EQ(*ExpandSlurmNodelist("n[8-11]"), Strings({"n8", "n9", "n10", "n11"}));
  EXPECT_EQ(*ExpandSlurmNodelist("n[098-101]"), Strings({"n098", "n099", "n100", "n101"}));
  EXPECT_EQ(*ExpandSlurmNodelist("r[1-2]n[1,3]-ib"),
            Strings({"r1n1-ib", "r1n3-ib", "r2n1-ib", "r2n3-ib"}));
  EXPECT_EQ(*ExpandSlurmNodelist("a,b[2],c"), Strings({"a", "b2", "c"}));
  for (const char* bad : {"", "gpu[01-03", "gpu]1[", "gpu[3-1]", "gpu[a-b]", "a,,b", "gpu[]",
                          "gpu[1-2[3]]", "x[0-99999]"}) {
    StatusOr<Strings> r = ExpandSlurmNodelist(bad);
    EXPECT_FALSE(r.ok()) << "'" << bad << "'";
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
      EXPECT_NE(r.status().message().find("Slurm node list"), std::string::npos);
    }
  }
}

TEST(LaunchPlanTest, SlurmGpuCountsAndHosts) {
  EXPECT_EQ(*ParseSlurmGpuCount("4"), 4);
  EXPECT_EQ(*ParseSlurmGpuCount("h100:8"), 8);
  EXPECT_EQ(*ParseSlurmGpuCount("gpu:h100:2"), 2);
  EXPECT_EQ(*ParseSlurmGpuCount("4(x2)"), 4);
  EXPECT_FALSE(ParseSlurmGpuCount("a100:2,v100:1").ok());
  EXPECT_FALSE(ParseSlurmGpuCount("h100").ok());

  Environment env = {{"SLURM_JOB_NODELIST", "gpu[01-02]"},
                     {"SLURM_NNODES", "2"},
                     {"SLURM_GPUS_PER_NODE", "h100:4"}};
  StatusOr<std::vector<HostEntry>> hosts = HostsFromSlurm(env);
  ASSERT_TRUE(hosts.ok()) << hosts.status().ToString();
  EXPECT_EQ(*hosts, (std::vector<HostEntry>{{"gpu01", 4}, {"gpu02", 4}}));

  env.erase("SLURM_GPUS_PER_NODE");
  env["SLURM_JOB_GPUS"] = "0,1,2";
  EXPECT_EQ((*HostsFromSlurm(env))[0].slots, 3);
  env["SLURM_GPUS_ON_NODE"] = "8";
  EXPECT_EQ((*HostsFromSlurm(env))[1].slots, 8);

  env["SLURM_NNODES"] = "3";
  StatusOr<std::vector<HostEntry>> mismatch = HostsFromSlurm(env);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("names 2 hosts but SLURM_NNODES='3'"),
            std::string::npos);
  EXPECT_EQ(HostsFromSlurm({}).status().code(), StatusCode::kNotFound);
}

LaunchRequest TwoNodes() {
  LaunchRequest request;
  request.hosts = {{"gpu-a", 4}, {"gpu-b", 4}, {"gpu-c", 4}};
  request.nodes = 2;
  request.program = "/opt/sieve/bin/sieve-node";
  request.program_args = {"--model", "/models/llama 3.1"};
  request.env = {{"HOME", "/root"},
                 {"NCCL_DEBUG", "WARN"},
                 {"CUDA_VISIBLE_DEVICES", "0,1,2,3"},
                 {"UCX_TLS", "rc"},
                 {"SIEVE_LOG_LEVEL", "info"},
                 {"LD_LIBRARY_PATH", "/usr/local/cuda/lib64"},
                 {"OMPI_MCA_btl", "tcp,self"}};
  return request;
}

TEST(LaunchPlanTest, TwoNodesCommand) {
  StatusOr<LaunchPlan> plan = PlanLaunch(TwoNodes());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->num_ranks, 9);
  EXPECT_EQ(plan->num_workers, 8);
  EXPECT_EQ(plan->hosts, Strings({"gpu-a", "gpu-b"}));
  EXPECT_EQ(plan->ranks_per_host, std::vector<int>({5, 4}));
  const Strings want = {"mpirun",
                        "-np",
                        "9",
                        "--host",
                        "gpu-a:5,gpu-b:4",
                        "--map-by",
                        "slot",
                        "--bind-to",
                        "none",
                        "-x",
                        "NCCL_NVLS_ENABLE=0",
                        "-x",
                        "CUDA_VISIBLE_DEVICES",
                        "-x",
                        "LD_LIBRARY_PATH",
                        "-x",
                        "NCCL_DEBUG",
                        "-x",
                        "SIEVE_LOG_LEVEL",
                        "-x",
                        "UCX_TLS",
                        "/opt/sieve/bin/sieve-node",
                        "--model",
                        "/models/llama 3.1"};
  EXPECT_EQ(plan->argv, want);
  EXPECT_EQ(ShellJoin(plan->argv),
            "mpirun -np 9 --host gpu-a:5,gpu-b:4 --map-by slot --bind-to none -x "
            "NCCL_NVLS_ENABLE=0 -x CUDA_VISIBLE_DEVICES -x LD_LIBRARY_PATH -x NCCL_DEBUG -x "
            "SIEVE_LOG_LEVEL -x UCX_TLS /opt/sieve/bin/sieve-node --model '/models/llama 3.1'");
}

TEST(LaunchPlanTest, OptionsReachTheCommand) {
  LaunchRequest request = TwoNodes();
  request.nodes = 0;  // all three hosts
  request.gpus_per_node = 2;
  request.decode_ranks = {6, 5};
  request.device = "cuda";
  request.iface = "eth1";
  request.mca = {{"btl", "tcp,self"}};
  request.env["NCCL_NVLS_ENABLE"] = "1";  // the user's choice wins
  request.from_slurm = true;              // CUDA_VISIBLE_DEVICES is per node under Slurm
  StatusOr<LaunchPlan> plan = PlanLaunch(request);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->num_ranks, 7);
  EXPECT_EQ(ShellJoin(plan->argv),
            "mpirun -np 7 --host gpu-a:3,gpu-b:2,gpu-c:2 --map-by slot --bind-to none --mca "
            "btl_tcp_if_include eth1 --mca oob_tcp_if_include eth1 --mca btl tcp,self -x "
            "LD_LIBRARY_PATH -x "
            "NCCL_DEBUG -x NCCL_NVLS_ENABLE -x SIEVE_LOG_LEVEL -x UCX_TLS "
            "/opt/sieve/bin/sieve-node --device cuda --decode-ranks 6,5 --model "
            "'/models/llama 3.1'");
}

TEST(LaunchPlanTest, SlotsPerHostAndCpuDefault) {
  LaunchRequest request;
  request.hosts = {{"big", 8}, {"small", 2}};
  StatusOr<LaunchPlan> plan = PlanLaunch(request);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->ranks_per_host, std::vector<int>({9, 2}));
  EXPECT_EQ(plan->num_ranks, 11);

  request.hosts = {{"localhost", 0}};
  request.device = "cpu";
  plan = PlanLaunch(request);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->num_ranks, 2) << "one CPU worker per node by default";
  EXPECT_EQ(plan->argv[4], "localhost:2");
}

TEST(LaunchPlanTest, Errors) {
  auto message = [](const LaunchRequest& request) {
    StatusOr<LaunchPlan> plan = PlanLaunch(request);
    EXPECT_FALSE(plan.ok());
    if (plan.ok()) return std::string();
    EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument);
    return plan.status().message();
  };
  LaunchRequest none;
  EXPECT_NE(message(none).find("no hosts"), std::string::npos);

  LaunchRequest too_many = TwoNodes();
  too_many.nodes = 4;
  EXPECT_NE(message(too_many).find("--nodes 4, but only 3 hosts"), std::string::npos);

  LaunchRequest no_gpus;
  no_gpus.hosts = {{"a", 0}};
  EXPECT_NE(message(no_gpus).find("cannot tell how many GPUs host 'a' has"), std::string::npos);

  LaunchRequest bad_device = TwoNodes();
  bad_device.device = "tpu";
  EXPECT_NE(message(bad_device).find("--device 'tpu'"), std::string::npos);

  LaunchRequest coordinator_decodes = TwoNodes();
  coordinator_decodes.decode_ranks = {0};
  EXPECT_NE(message(coordinator_decodes).find("--decode-ranks"), std::string::npos);

  LaunchRequest past_end = TwoNodes();
  past_end.decode_ranks = {9};
  EXPECT_NE(message(past_end).find("decode rank 9 outside the workers [1, 8]"), std::string::npos);
}

TEST(LaunchPlanTest, ShellQuote) {
  EXPECT_EQ(ShellQuote("plain-word_1.2/x:y,z=3"), "plain-word_1.2/x:y,z=3");
  EXPECT_EQ(ShellQuote(""), "''");
  EXPECT_EQ(ShellQuote("two words"), "'two words'");
  EXPECT_EQ(ShellQuote("it's"), "'it'\\''s'");
  EXPECT_EQ(ShellQuote("$HOME"), "'$HOME'");
  EXPECT_EQ(ShellJoin({"a", "b c"}), "a 'b c'");
}

}  // namespace
}  // namespace sieve::launch
