// ClusterCoordinator: rank 0 of sieve-node. Takes requests (from the front ends or a batch file),
// and drives each through the GPU ranks (worker/node_role.h):
//
//   1. tokenize, check the options against the model, plan the chunks and spread them over the
//      workers (comm/chunk_plan.h); send the decode node its DecodeOrder and every worker with
//      chunks its WorkOrder
//   2. gather the workers' WorkerScores; decide the global top-k (lowest query NLL, ties: lower
//      index; every chunk in parallel mode) and broadcast the KeepDecision
//   3. stream the decode node's tokens to the request's sink through the stop strings; a matched
//      stop string or a passed deadline sends the decode node a StopRequest
//   4. assemble the response: the decode node's accounting plus the coordinator's (chunks, their
//      scores and owners, prefill and exchange times, time to first token)
//
// Several requests are in flight at once: workers prefill request B while the decode node
// generates A. Admission: at most max_in_flight dispatched, max_queued waiting, the rest
// rejected with RESOURCE_EXHAUSTED. All MPI traffic happens on the thread that calls Run();
// Submit, Cancel and Shutdown are thread-safe.
//
// Tested by tests/cli/sieve_node_test.sh (batch mode under mpirun) and the service tests.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "comm/mpi_comm.h"
#include "comm/world_layout.h"
#include "coordinator/engine.h"
#include "coordinator/request_parser.h"
#include "coordinator/tokenizer.h"

namespace sieve::coordinator {

struct CoordinatorOptions {
  int max_in_flight = 8;
  int max_queued = 64;
  double default_deadline_s = 0;     // 0: none unless the request sets one
  int64_t max_prompt_tokens = 4 << 20;
};

class ClusterCoordinator final : public Engine {
 public:
  // Waits for every GPU rank's kReady (ModelInfo) and checks they agree. A rank that reports a
  // startup error, or does not report within `timeout`, fails with a message naming it.
  static StatusOr<proto::ModelInfo> AwaitWorkers(const comm::MpiComm& world,
                                                 const comm::WorldLayout& layout,
                                                 std::chrono::seconds timeout);

  ClusterCoordinator(const comm::MpiComm& world, const comm::WorldLayout& layout,
                     const Tokenizer& tokenizer, proto::ModelInfo model,
                     const CoordinatorOptions& options);
  ~ClusterCoordinator() override;

  void Submit(proto::GenerateRequest request, std::shared_ptr<RequestSink> sink) override;
  void Cancel(const std::string& request_id) override;
  EngineStats Stats() const override;
  std::string ModelName() const override { return model_.name(); }

  // The MPI event loop; returns once Shutdown() was called and every accepted request has been
  // answered (drain) or failed (no drain), after telling every rank to shut down.
  Status Run();
  void Shutdown(bool drain);

 private:
  struct Active;
  using Clock = std::chrono::steady_clock;

  void Admit(proto::GenerateRequest request, std::shared_ptr<RequestSink> sink);
  Status Dispatch(Active& a);
  Status HandleScores(const proto::WorkerScores& scores);
  Status HandleDecodeUpdate(const proto::DecodeUpdate& update);
  void Finish(const std::string& id, const proto::DecodeUpdate& final_update);
  void Fail(const std::string& id, const Status& status);
  void CheckDeadlines();

  const comm::MpiComm& world_;
  comm::WorldLayout layout_;
  const Tokenizer& tokenizer_;
  proto::ModelInfo model_;
  CoordinatorOptions options_;
  int next_decode_ = 0;
  uint64_t next_id_ = 1;

  mutable std::mutex mu_;  // guards inbox_, cancels_, stats_, shutdown flags
  std::deque<std::pair<proto::GenerateRequest, std::shared_ptr<RequestSink>>> inbox_;
  std::vector<std::string> cancels_;
  EngineStats stats_;
  bool shutdown_ = false;
  bool drain_ = true;

  // Loop-thread state.
  std::deque<std::unique_ptr<Active>> queued_;
  std::map<std::string, std::unique_ptr<Active>> active_;
};

}  // namespace sieve::coordinator
