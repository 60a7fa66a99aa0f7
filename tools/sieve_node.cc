// sieve-node: the one executable of a Sieve job, started by mpirun; the rank decides the role.
//
//   mpirun -np 1+N sieve-node --model DIR (--request FILE|- | --serve [service options])
//          [--device auto|cpu|cuda] [--decode-ranks R[,R...]] [--random-weights SEED]
//          [--max-decode-batch B] [--max-batch-rows ROWS] [--log-level LEVEL]
//          [--debug-fail-rank R]
//
// clang-format off
//   rank 0       coordinator (CPU): tokenizer, chunk plan, scheduler
//                (coordinator/cluster_coordinator.h)
//   ranks 1..N   GPU workers; the decode node is the last one, or the --decode-ranks
//                (worker/node_role.h); each takes its GPU from its local rank on the node
//   -np 1        every role in this process (the same code path as sieve-run)
// clang-format on
//
// Batch mode: rank 0 reads requests from --request (one JSON request, or one per line; "-" is
// stdin) and prints one response JSON per request on stdout, in order. A rank that dies ends the
// job (mpirun stops every rank and names the one that failed); --debug-fail-rank R makes rank R
// exit in the middle of a request, for the test of exactly that.
//
// Service mode (--serve): rank 0 serves HTTP (--listen, default 127.0.0.1:8080; "off" disables)
// and the native protocol (--native-listen, default 127.0.0.1:8081; "off" disables) through
// coordinator/service.h, with the engine (ClusterCoordinator, or LocalEngine with -np 1) on the
// main thread. Options: --api-key-file F, --max-in-flight N (8), --max-queued N (64),
// --max-in-flight-tokens N (0: no limit), --kv-budget-mb MB (0: 80% of free memory),
// --max-prompt-tokens N (4Mi), --max-body-mb MB (64), --max-decode-batch B (16),
// --deadline-s S (0: none), --grace-s S (30), --max-connections N (256), --read-timeout-s S (30),
// --write-timeout-s S (30), --send-buffer-kb KB (0: kernel default), --io-threads N (2),
// --ready-file F (JSON with the bound addresses and rank 0's pid, written once serving).
// SIGTERM or SIGINT to rank 0: stop accepting, drain for --grace-s, fail the rest, shut every
// rank down, exit 0; the GPU ranks ignore those signals and wait for rank 0. (SIGTERM to mpirun
// reaches every rank and Open MPI kills them after odls_base_sigkill_timeout, 1 s by default:
// signal rank 0, whose pid the ready file and the "serving" line give.)
#include <mpi.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include <boost/json.hpp>

#include "comm/log.h"
#include "comm/mpi_comm.h"
#include "comm/world_layout.h"
#include "coordinator/api_key.h"
#include "coordinator/cluster_coordinator.h"
#include "coordinator/request_parser.h"
#include "coordinator/response_json.h"
#include "coordinator/service.h"
#include "tools/cli.h"
#include "tools/local_engine.h"
#include "tools/local_runner.h"
#include "worker/kv_transport.h"
#include "worker/model_loader.h"
#include "worker/node_role.h"
#include "worker/pipeline_options.h"

namespace sieve::tools {
namespace {

constexpr const char* kUsage =
    "usage: mpirun -np 1+N sieve-node --model DIR (--request FILE|- | --serve)\n"
    "              [--device auto|cpu|cuda] [--decode-ranks R,...] [--random-weights SEED]\n"
    "              [--max-decode-batch B] [--max-batch-rows ROWS] [--interleave-rows ROWS]\n"
    "              [--log-level LEVEL] [--debug-fail-rank R]\n"
    "  service:    [--listen ADDR:PORT|off] [--native-listen ADDR:PORT|off] [--api-key-file F]\n"
    "              [--max-in-flight N] [--max-queued N] [--max-in-flight-tokens N]\n"
    "              [--kv-budget-mb MB] [--max-prompt-tokens N] [--max-body-mb MB]\n"
    "              [--deadline-s S] [--grace-s S] [--max-connections N] [--read-timeout-s S]\n"
    "              [--write-timeout-s S] [--send-buffer-kb KB] [--io-threads N]\n"
    "              [--ready-file FILE]\n";

// Every option sieve-node knows (all ranks parse the same command line).
const std::set<std::string> kKnownOptions = {"model",
                                             "request",
                                             "serve",
                                             "device",
                                             "decode-ranks",
                                             "random-weights",
                                             "max-decode-batch",
                                             "max-batch-rows",
                                             "interleave-rows",
                                             "log-level",
                                             "debug-fail-rank",
                                             "help",
                                             "listen",
                                             "native-listen",
                                             "api-key-file",
                                             "max-in-flight",
                                             "max-queued",
                                             "max-in-flight-tokens",
                                             "kv-budget-mb",
                                             "max-prompt-tokens",
                                             "max-body-mb",
                                             "deadline-s",
                                             "grace-s",
                                             "max-connections",
                                             "read-timeout-s",
                                             "write-timeout-s",
                                             "io-threads",
                                             "ready-file",
                                             "send-buffer-kb"};

// Ends the whole job with an error message naming this rank.
[[noreturn]] void Abort(const Status& status, int code) {
  std::fprintf(stderr, "[sieve] FATAL [%s]: %s\n", ProcessContextString(), status.ToString().c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

std::string ModelName(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir.substr(dir.find_last_of('/') + 1);
}

// --name as a number >= lo (nullopt when absent).
StatusOr<std::optional<double>> GetNumber(const Args& args, const std::string& name, double lo) {
  auto v = args.Get(name);
  if (!v) return std::optional<double>();
  char* end = nullptr;
  const double x = std::strtod(v->c_str(), &end);
  if (v->empty() || *end != '\0' || !(x >= lo) || x > 1e12) {
    return Status::InvalidArgument(
        StrFormat("--%s: expected a number >= %g, got '%s'", name.c_str(), lo, v->c_str()));
  }
  return std::optional<double>(x);
}

// The engine-side limits of both engines, from the flags.
struct EngineFlags {
  int max_in_flight = 8;
  int max_queued = 64;
  double deadline_s = 0;
  int64_t max_prompt_tokens = 4 << 20;
  int64_t max_in_flight_tokens = 0;
  int64_t kv_budget_bytes = 0;
};

StatusOr<EngineFlags> ReadEngineFlags(const Args& args) {
  EngineFlags f;
  SIEVE_ASSIGN_OR_RETURN(auto in_flight, args.GetInt("max-in-flight"));
  SIEVE_ASSIGN_OR_RETURN(auto queued, args.GetInt("max-queued"));
  SIEVE_ASSIGN_OR_RETURN(auto deadline, GetNumber(args, "deadline-s", 0));
  SIEVE_ASSIGN_OR_RETURN(auto prompt, args.GetInt("max-prompt-tokens"));
  SIEVE_ASSIGN_OR_RETURN(auto tokens, args.GetInt("max-in-flight-tokens"));
  SIEVE_ASSIGN_OR_RETURN(auto kv_mb, GetNumber(args, "kv-budget-mb", 0));
  if (in_flight && (*in_flight < 1 || *in_flight > 1 << 20)) {
    return Status::InvalidArgument("--max-in-flight: must be in [1, 2^20]");
  }
  if (queued && (*queued < 0 || *queued > 1 << 20)) {
    return Status::InvalidArgument("--max-queued: must be in [0, 2^20]");
  }
  if (prompt && *prompt < 1) return Status::InvalidArgument("--max-prompt-tokens: must be >= 1");
  if (tokens && *tokens < 0) return Status::InvalidArgument("--max-in-flight-tokens: must be >= 0");
  f.max_in_flight = static_cast<int>(in_flight.value_or(f.max_in_flight));
  f.max_queued = static_cast<int>(queued.value_or(f.max_queued));
  f.deadline_s = deadline.value_or(0);
  f.max_prompt_tokens = prompt.value_or(f.max_prompt_tokens);
  f.max_in_flight_tokens = tokens.value_or(0);
  f.kv_budget_bytes = static_cast<int64_t>(kv_mb.value_or(0) * 1048576.0);
  return f;
}

StatusOr<coordinator::ServiceOptions> ReadServiceOptions(const Args& args) {
  coordinator::ServiceOptions o;
  o.http_listen = args.GetOr("listen", o.http_listen);
  if (o.http_listen == "off") o.http_listen.clear();
  o.native_listen = args.GetOr("native-listen", o.native_listen);
  if (o.native_listen == "off") o.native_listen.clear();
  if (auto file = args.Get("api-key-file")) {
    SIEVE_ASSIGN_OR_RETURN(o.api_key, coordinator::LoadApiKeyFile(*file));
  }
  SIEVE_ASSIGN_OR_RETURN(auto conns, args.GetInt("max-connections"));
  SIEVE_ASSIGN_OR_RETURN(auto threads, args.GetInt("io-threads"));
  SIEVE_ASSIGN_OR_RETURN(auto read_s, GetNumber(args, "read-timeout-s", 0.01));
  SIEVE_ASSIGN_OR_RETURN(auto write_s, GetNumber(args, "write-timeout-s", 0.01));
  SIEVE_ASSIGN_OR_RETURN(auto grace_s, GetNumber(args, "grace-s", 0));
  SIEVE_ASSIGN_OR_RETURN(auto body_mb, GetNumber(args, "max-body-mb", 0.001));
  SIEVE_ASSIGN_OR_RETURN(auto prompt, args.GetInt("max-prompt-tokens"));
  SIEVE_ASSIGN_OR_RETURN(auto send_kb, args.GetInt("send-buffer-kb"));
  if (send_kb && (*send_kb < 0 || *send_kb > 1 << 20)) {
    return Status::InvalidArgument("--send-buffer-kb: must be in [0, 2^20]");
  }
  o.send_buffer_bytes = static_cast<int>(send_kb.value_or(0) * 1024);
  if (conns && (*conns < 1 || *conns > 1 << 20)) {
    return Status::InvalidArgument("--max-connections: must be in [1, 2^20]");
  }
  if (threads && (*threads < 1 || *threads > 64)) {
    return Status::InvalidArgument("--io-threads: must be in [1, 64]");
  }
  o.max_connections = static_cast<int>(conns.value_or(o.max_connections));
  o.io_threads = static_cast<int>(threads.value_or(o.io_threads));
  o.read_timeout_s = read_s.value_or(o.read_timeout_s);
  o.write_timeout_s = write_s.value_or(o.write_timeout_s);
  o.grace_s = grace_s.value_or(o.grace_s);
  if (body_mb) {
    o.limits.max_body_bytes = static_cast<int64_t>(*body_mb * 1048576.0);
    o.limits.max_document_bytes = std::min(o.limits.max_document_bytes, o.limits.max_body_bytes);
  }
  if (prompt) o.limits.max_document_ids = std::min<int64_t>(o.limits.max_document_ids, *prompt);
  return o;
}

// Serves `engine` until SIGTERM/SIGINT (this thread runs the engine). Returns the exit code.
int Serve(const Args& args, coordinator::Engine& engine, int ranks) {
  auto options = ReadServiceOptions(args);
  if (!options.ok()) {
    std::fprintf(stderr, "[sieve] %s\n", options.status().ToString().c_str());
    engine.Shutdown(/*drain=*/false);
    (void)engine.Run();  // tells the other ranks to shut down
    return kExitUsage;
  }
  coordinator::Service service(engine, *options);
  if (Status s = service.Start(); !s.ok()) {
    std::fprintf(stderr, "[sieve] %s\n", s.ToString().c_str());
    engine.Shutdown(/*drain=*/false);
    (void)engine.Run();
    return kExitUsage;
  }
  const std::string http = service.HttpAddress();
  const std::string native = service.NativeAddress();
  std::fprintf(stderr, "[sieve] serving model=%s http=%s native=%s ranks=%d pid=%d auth=%s\n",
               engine.ModelName().c_str(), http.empty() ? "off" : http.c_str(),
               native.empty() ? "off" : native.c_str(), ranks, static_cast<int>(getpid()),
               options->api_key.empty() ? "none" : "api-key");
  std::fflush(stderr);
  if (auto ready = args.Get("ready-file")) {
    boost::json::object info{{"http", http},
                             {"native", native},
                             {"pid", getpid()},
                             {"model", engine.ModelName()},
                             {"ranks", ranks}};
    const std::string tmp = *ready + ".tmp";
    {
      std::ofstream out(tmp);
      out << boost::json::serialize(info) << "\n";
    }
    std::rename(tmp.c_str(), ready->c_str());
  }
  const Status run = engine.Run();
  service.Stop(/*flush_s=*/5);
  const coordinator::EngineStats stats = engine.Stats();
  std::fprintf(stderr, "[sieve] stopped: %lld completed, %lld failed\n",
               static_cast<long long>(stats.completed), static_cast<long long>(stats.failed));
  if (!run.ok()) Abort(run, kExitInternal);
  return kExitOk;
}

// One request JSON, or one request per non-empty line.
std::vector<std::string> SplitRequests(const std::string& text) {
  boost::system::error_code ec;
  boost::json::parse(text, ec);
  if (!ec) return {text};
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) out.push_back(line);
  }
  return out;
}

proto::ModelInfo DescribeModel(const worker::LoadedModel& m, const std::string& name, int rank) {
  const worker::ModelConfig& c = m.config;
  proto::ModelInfo info;
  info.set_name(name);
  info.set_vocab_size(c.vocab_size);
  info.set_num_layers(static_cast<int32_t>(c.num_layers));
  info.set_num_kv_heads(static_cast<int32_t>(c.num_kv_heads));
  info.set_default_chunk_tokens(worker::DefaultChunkTokens(c));
  for (int64_t id : c.eos_token_ids) info.add_eos_ids(static_cast<int32_t>(id));
  info.set_bos_id(static_cast<int32_t>(c.bos_token_id.value_or(-1)));
  info.set_device(m.backend->Describe());
  info.set_rank(rank);
  info.set_kv_bytes_per_token(2 * c.num_layers * c.kv_dim() *
                              static_cast<int64_t>(DTypeSize(m.backend->compute_dtype())));
  info.set_free_memory_bytes(static_cast<int64_t>(m.backend->FreeMemoryBytes()));
  info.set_max_position_embeddings(c.max_position_embeddings);
  return info;
}

// Collects responses in request order and stops the coordinator when all are in.
class BatchSink final : public coordinator::RequestSink {
 public:
  BatchSink(std::vector<std::string>* slot, std::atomic<int>* remaining, std::atomic<bool>* failed,
            coordinator::ClusterCoordinator* coordinator)
      : slot_(slot), remaining_(remaining), failed_(failed), coordinator_(coordinator) {}
  void OnResponse(const proto::GenerateResponse& r) override { Done(coordinator::ResponseToJson(r)); }
  void OnError(const Status& s) override {
    failed_->store(true);
    Done(coordinator::ErrorToJson(s));
  }

 private:
  void Done(std::string json) {
    slot_->push_back(std::move(json));
    if (--*remaining_ == 0) coordinator_->Shutdown(/*drain=*/true);
  }
  std::vector<std::string>* slot_;
  std::atomic<int>* remaining_;
  std::atomic<bool>* failed_;
  coordinator::ClusterCoordinator* coordinator_;
};

int RunCoordinator(const Args& args, const comm::MpiComm& world, const comm::WorldLayout& layout,
                   const std::vector<std::string>& requests) {
  const std::string model_dir = *args.Get("model");
  auto flags = ReadEngineFlags(args);
  if (!flags.ok()) Abort(flags.status(), kExitUsage);
  auto tokenizer = coordinator::Tokenizer::FromFile(model_dir + "/tokenizer.json");
  if (!tokenizer.ok()) Abort(tokenizer.status(), kExitModel);
  auto info = coordinator::ClusterCoordinator::AwaitWorkers(world, layout, std::chrono::seconds(1800));
  if (!info.ok()) Abort(info.status(), kExitModel);
  const coordinator::CoordinatorOptions options{.max_in_flight = flags->max_in_flight,
                                                .max_queued = flags->max_queued,
                                                .default_deadline_s = flags->deadline_s,
                                                .max_prompt_tokens = flags->max_prompt_tokens,
                                                .max_in_flight_tokens = flags->max_in_flight_tokens,
                                                .kv_budget_bytes = flags->kv_budget_bytes};
  coordinator::ClusterCoordinator coord(world, layout, *tokenizer, *info, options);
  if (args.Has("serve")) return Serve(args, coord, world.Size());
  std::vector<std::vector<std::string>> outputs(requests.size());
  std::atomic<int> remaining(static_cast<int>(requests.size()));
  std::atomic<bool> failed(false);
  for (size_t i = 0; i < requests.size(); ++i) {
    auto sink = std::make_shared<BatchSink>(&outputs[i], &remaining, &failed, &coord);
    auto request = coordinator::ParseGenerateRequest(requests[i]);
    if (!request.ok()) {
      sink->OnError(request.status());
      continue;
    }
    coord.Submit(std::move(request).value(), sink);
  }
  if (requests.empty() || remaining.load() == 0) coord.Shutdown(true);
  if (Status s = coord.Run(); !s.ok()) Abort(s, kExitInternal);
  for (const auto& out : outputs) {
    for (const std::string& line : out) std::cout << line << "\n";
  }
  std::cout.flush();
  return failed.load() ? kExitUsage : kExitOk;
}

int RunGpuRank(const Args& args, const comm::MpiComm& world, const comm::WorldLayout& layout,
               comm::MpiComm gpu_comm) {
  const std::string model_dir = *args.Get("model");
  auto seed = args.GetUint("random-weights");
  auto batch = args.GetInt("max-decode-batch");
  auto rows = args.GetInt("max-batch-rows");
  auto interleave = args.GetInt("interleave-rows");
  auto fail = args.GetInt("debug-fail-rank");
  if (!seed.ok() || !batch.ok() || !rows.ok() || !interleave.ok() || !fail.ok()) {
    Abort(Status::InvalidArgument("bad numeric option"), kExitUsage);
  }
  const std::string device = args.GetOr("device", "auto");
  worker::LoadModelOptions load;
  load.model_dir = model_dir;
  load.device = device;
  load.device_index = std::max(0, layout.Device());
  load.random_seed = *seed;
  auto model = worker::LoadModel(load);
  if (!model.ok()) Abort(model.status().WithContext(StrFormat("rank %d", world.Rank())), kExitModel);
  SetProcessContext(world.Rank(), layout.Device());
  std::unique_ptr<worker::KvTransport> transport;
  if (model->backend->kind() == worker::DeviceKind::kCuda) {
    auto nccl = worker::MakeNcclKvTransport(std::move(gpu_comm), layout, *model->backend);
    if (!nccl.ok()) Abort(nccl.status(), kExitInternal);
    transport = std::move(nccl).value();
  } else {
    transport = worker::MakeMpiKvTransport(world, *model->backend);
  }
  worker::NodeOptions options{.max_decode_batch = static_cast<int>(batch->value_or(16)),
                              .max_batch_rows = rows->value_or(0),
                              .interleave_rows = interleave->value_or(32768),
                              .debug_fail_rank = static_cast<int>(fail->value_or(-1))};
  worker::NodeRole node(*model->model, world, layout, *transport, options);
  if (Status s = node.Serve(DescribeModel(*model, ModelName(model_dir), world.Rank())); !s.ok()) {
    Abort(s, kExitInternal);
  }
  return kExitOk;
}

int RunSingleProcess(const Args& args, const std::vector<std::string>& requests) {
  const std::string model_dir = *args.Get("model");
  auto seed = args.GetUint("random-weights");
  if (!seed.ok()) Abort(seed.status(), kExitUsage);
  auto tokenizer = coordinator::Tokenizer::FromFile(model_dir + "/tokenizer.json");
  if (!tokenizer.ok()) Abort(tokenizer.status(), kExitModel);
  worker::LoadModelOptions load;
  load.model_dir = model_dir;
  load.device = args.GetOr("device", "auto");
  load.random_seed = *seed;
  auto model = worker::LoadModel(load);
  if (!model.ok()) Abort(model.status(), kExitModel);
  if (args.Has("serve")) {
    auto flags = ReadEngineFlags(args);
    if (!flags.ok()) Abort(flags.status(), kExitUsage);
    LocalEngine engine(*model, *tokenizer, ModelName(model_dir),
                       {.max_queued = flags->max_queued,
                        .default_deadline_s = flags->deadline_s,
                        .max_prompt_tokens = flags->max_prompt_tokens,
                        .max_in_flight_tokens = flags->max_in_flight_tokens,
                        .kv_budget_bytes = flags->kv_budget_bytes});
    return Serve(args, engine, 1);
  }
  LocalRunner runner(*model, *tokenizer, ModelName(model_dir));
  bool failed = false;
  for (const std::string& text : requests) {
    auto request = coordinator::ParseGenerateRequest(text);
    StatusOr<proto::GenerateResponse> response =
        request.ok() ? runner.Run(*request) : StatusOr<proto::GenerateResponse>(request.status());
    if (response.ok()) {
      std::cout << coordinator::ResponseToJson(*response) << "\n";
    } else {
      failed = true;
      std::cout << coordinator::ErrorToJson(response.status()) << "\n";
    }
  }
  std::cout.flush();
  return failed ? kExitUsage : kExitOk;
}

int Main(int argc, char** argv) {
  comm::MpiRuntime mpi(&argc, &argv);
  const comm::MpiComm world = comm::MpiComm::World();
  auto args = Args::Parse(argc, argv, {"help", "serve"});
  if (!args.ok()) Abort(args.status(), kExitUsage);
  if (args->Has("help")) {
    if (world.Rank() == 0) std::cerr << kUsage;
    return kExitOk;
  }
  if (Status s = args->CheckKnown(kKnownOptions); !s.ok()) {
    if (world.Rank() == 0) std::cerr << kUsage;
    Abort(s, kExitUsage);
  }
  if (Status s = ApplyLogLevel(*args); !s.ok()) Abort(s, kExitUsage);
  const bool serve = args->Has("serve");
  if (!args->Get("model") || (args->Get("request").has_value() == serve)) {
    if (world.Rank() == 0) std::cerr << kUsage;
    Abort(Status::InvalidArgument("--model and one of --request or --serve are required"),
          kExitUsage);
  }
  auto decode_ranks = comm::ParseRankList(args->GetOr("decode-ranks", ""));
  if (!decode_ranks.ok()) Abort(decode_ranks.status(), kExitUsage);
  const std::string device = args->GetOr("device", "auto");
  const int devices = device == "cpu" ? 0 : worker::CudaDeviceCount();
  if (device == "cuda" && devices == 0) {
    Abort(Status::Unavailable("--device cuda: no GPU is visible on this node"), kExitModel);
  }
  auto layout = comm::WorldLayout::FromMpi(world.Handle(), *decode_ranks, devices);
  if (!layout.ok()) Abort(layout.status(), kExitUsage);
  SetProcessContext(world.Rank(), layout->Device());
  SIEVE_LOG_INFO("rank started", "%s", layout->ToString().c_str());

  // Requests are read by the rank that runs the coordinator.
  std::vector<std::string> requests;
  if (world.Rank() == 0 && !serve) {
    auto text = ReadInput(*args->Get("request"));
    if (!text.ok()) Abort(text.status().WithContext("--request"), kExitUsage);
    requests = SplitRequests(*text);
  }
  if (world.Size() == 1) return RunSingleProcess(*args, requests);
  // Collective over the world: the GPU ranks' communicator (null on rank 0).
  comm::MpiComm gpu = comm::MakeGpuComm(world, *layout);
  if (layout->IsCoordinator()) return RunCoordinator(*args, world, *layout, requests);
  if (serve) {
    // Terminal signals reach every process of the job; only rank 0 acts on them and shuts the
    // GPU ranks down once its requests are answered.
    std::signal(SIGINT, SIG_IGN);
    std::signal(SIGTERM, SIG_IGN);
  }
  return RunGpuRank(*args, world, *layout, std::move(gpu));
}

}  // namespace
}  // namespace sieve::tools

int main(int argc, char** argv) { return sieve::tools::Main(argc, argv); }
