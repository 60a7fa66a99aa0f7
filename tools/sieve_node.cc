// sieve-node: the one executable of a Sieve job, started by mpirun; the rank decides the role.
//
//   mpirun -np 1+N sieve-node --model DIR --request FILE|- [--device auto|cpu|cuda]
//          [--decode-ranks R[,R...]] [--random-weights SEED] [--max-decode-batch B]
//          [--max-batch-rows ROWS] [--log-level LEVEL] [--debug-fail-rank R]
//
//   rank 0       coordinator (CPU): tokenizer, chunk plan, scheduler (coordinator/cluster_coordinator.h)
//   ranks 1..N   GPU workers; the decode node is the last one, or the --decode-ranks
//                (worker/node_role.h); each takes its GPU from its local rank on the node
//   -np 1        every role in this process (the same code path as sieve-run)
//
// Batch mode: rank 0 reads requests from --request (one JSON request, or one per line; "-" is
// stdin) and prints one response JSON per request on stdout, in order. A rank that dies ends the
// job (mpirun stops every rank and names the one that failed); --debug-fail-rank R makes rank R
// exit in the middle of a request, for the test of exactly that.
#include <mpi.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <sstream>

#include <boost/json.hpp>

#include "comm/log.h"
#include "comm/mpi_comm.h"
#include "comm/world_layout.h"
#include "coordinator/cluster_coordinator.h"
#include "coordinator/request_parser.h"
#include "coordinator/response_json.h"
#include "tools/cli.h"
#include "tools/local_runner.h"
#include "worker/kv_transport.h"
#include "worker/model_loader.h"
#include "worker/node_role.h"
#include "worker/pipeline_options.h"

namespace sieve::tools {
namespace {

constexpr const char* kUsage =
    "usage: mpirun -np 1+N sieve-node --model DIR --request FILE|- [--device auto|cpu|cuda]\n"
    "              [--decode-ranks R,...] [--random-weights SEED] [--max-decode-batch B]\n"
    "              [--max-batch-rows ROWS] [--log-level LEVEL] [--debug-fail-rank R]\n";

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
  auto tokenizer = coordinator::Tokenizer::FromFile(model_dir + "/tokenizer.json");
  if (!tokenizer.ok()) Abort(tokenizer.status(), kExitModel);
  auto info = coordinator::ClusterCoordinator::AwaitWorkers(world, layout, std::chrono::seconds(1800));
  if (!info.ok()) Abort(info.status(), kExitModel);
  coordinator::ClusterCoordinator coord(world, layout, *tokenizer, *info, {});
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
  auto fail = args.GetInt("debug-fail-rank");
  if (!seed.ok() || !batch.ok() || !rows.ok() || !fail.ok()) {
    Abort(Status::InvalidArgument("bad numeric option"), kExitUsage);
  }
  const std::string device = args.GetOr("device", "auto");
  auto model = worker::LoadModel({.model_dir = model_dir,
                                  .device = device,
                                  .device_index = std::max(0, layout.Device()),
                                  .random_seed = *seed});
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
  auto model = worker::LoadModel(
      {.model_dir = model_dir, .device = args.GetOr("device", "auto"), .random_seed = *seed});
  if (!model.ok()) Abort(model.status(), kExitModel);
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
  auto args = Args::Parse(argc, argv, {"help"});
  if (!args.ok()) Abort(args.status(), kExitUsage);
  if (args->Has("help")) {
    if (world.Rank() == 0) std::cerr << kUsage;
    return kExitOk;
  }
  if (Status s = args->CheckKnown({"model", "request", "device", "decode-ranks", "random-weights",
                                   "max-decode-batch", "max-batch-rows", "log-level",
                                   "debug-fail-rank", "help"});
      !s.ok()) {
    if (world.Rank() == 0) std::cerr << kUsage;
    Abort(s, kExitUsage);
  }
  if (Status s = ApplyLogLevel(*args); !s.ok()) Abort(s, kExitUsage);
  if (!args->Get("model") || !args->Get("request")) {
    if (world.Rank() == 0) std::cerr << kUsage;
    Abort(Status::InvalidArgument("--model and --request are required"), kExitUsage);
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
  if (world.Rank() == 0) {
    auto text = ReadInput(*args->Get("request"));
    if (!text.ok()) Abort(text.status().WithContext("--request"), kExitUsage);
    requests = SplitRequests(*text);
  }
  if (world.Size() == 1) return RunSingleProcess(*args, requests);
  // Collective over the world: the GPU ranks' communicator (null on rank 0).
  comm::MpiComm gpu = comm::MakeGpuComm(world, *layout);
  if (layout->IsCoordinator()) return RunCoordinator(*args, world, *layout, requests);
  return RunGpuRank(*args, world, *layout, std::move(gpu));
}

}  // namespace
}  // namespace sieve::tools

int main(int argc, char** argv) { return sieve::tools::Main(argc, argv); }
