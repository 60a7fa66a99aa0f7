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
// generates A (and the decode node batches the steps of every request it holds). Admission,
// in order: a document over max_prompt_tokens is PAYLOAD_TOO_LARGE; a request that could not run
// even alone (over max_in_flight_tokens, or an estimated KV footprint over a rank's budget) is
// RESOURCE_EXHAUSTED with the reason; otherwise it is dispatched when max_in_flight, the token
// budget and every rank's KV budget allow, first come first served, waiting in a queue of at most
// max_queued (beyond that: RESOURCE_EXHAUSTED, naming what it waits for). Deadlines apply to
// waiting requests too. All MPI traffic happens on the thread that calls Run(); Submit, Cancel and
// Shutdown are thread-safe. Orders go out without blocking (Post): a rank busy in a prefill
// takes its next order late, and the loop keeps streaming other requests' tokens meanwhile.
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
  int max_in_flight = 8;                // requests dispatched at once
  int max_queued = 64;                  // accepted and waiting; more are refused (429)
  double default_deadline_s = 0;        // 0: none unless the request sets one
  int64_t max_prompt_tokens = 4 << 20;  // longer documents: PAYLOAD_TOO_LARGE (413)
  // Document tokens dispatched at once (0: no limit). A request waits until it fits; one that
  // cannot fit even alone is refused (429).
  int64_t max_in_flight_tokens = 0;
  // KV cache each GPU rank may hold for requests in flight, estimated per request
  // (coordinator/admission.h). 0: kv_memory_fraction of the free memory the ranks reported after
  // loading the model. A request waits until its estimate fits on every rank it touches; one
  // that cannot fit even alone is refused (429).
  int64_t kv_budget_bytes = 0;
  double kv_memory_fraction = 0.8;
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
  Status Run() override;
  void Shutdown(bool drain) override;

 private:
  struct Active;
  using Clock = std::chrono::steady_clock;

  void Admit(proto::GenerateRequest request, std::shared_ptr<RequestSink> sink);
  // KV bytes `a` needs per rank when `decode_rank` decodes it.
  std::map<int, int64_t> Need(const Active& a, int decode_rank) const;
  // Whether `need` fits every rank's budget (with what is reserved now when `now`); else why not.
  bool Fits(const std::map<int, int64_t>& need, bool now, std::string* why) const;
  // Picks a decode rank and reserves tokens and KV for `a` if it can run now; else why not.
  bool TryStart(Active& a, std::string* why);
  void Release(Active& a);
  void StartQueued();
  Status Dispatch(Active& a);
  Status HandleScores(const proto::WorkerScores& scores);
  Status HandleDecodeUpdate(const proto::DecodeUpdate& update);
  void Finish(const std::string& id, const proto::DecodeUpdate& final_update);
  void Fail(const std::string& id, const Status& status);
  void CheckDeadlines();
  // Sends `message` without blocking the loop: a rank busy in a long prefill receives its next
  // order only when that prefill ends, and a blocking send of a large order (a rendezvous)
  // would stall every other request's tokens until then. The frame is kept in sends_.
  Status Post(const google::protobuf::Message& message, int rank, comm::MpiTag tag);
  // Drops the posted frames that have been sent; true if any was.
  bool ReapSends();

  const comm::MpiComm& world_;
  comm::WorldLayout layout_;
  const Tokenizer& tokenizer_;
  proto::ModelInfo model_;
  CoordinatorOptions options_;
  int next_decode_ = 0;
  uint64_t next_id_ = 1;
  int64_t kv_budget_bytes_ = 0;      // per rank
  int64_t in_flight_tokens_ = 0;     // document tokens of dispatched requests
  std::map<int, int64_t> reserved_;  // rank -> KV bytes reserved by dispatched requests

  mutable std::mutex mu_;  // guards inbox_, cancels_, stats_, shutdown flags
  std::deque<std::pair<proto::GenerateRequest, std::shared_ptr<RequestSink>>> inbox_;
  std::vector<std::string> cancels_;
  EngineStats stats_;
  bool shutdown_ = false;
  bool drain_ = true;

  // Loop-thread state.
  std::deque<std::unique_ptr<Active>> queued_;
  std::map<std::string, std::unique_ptr<Active>> active_;
  std::vector<comm::MpiSendRequest> sends_;  // posted frames not yet sent (Post)
};

}  // namespace sieve::coordinator
