// NodeRole: the event loop of a GPU rank (ranks 1..N of sieve-node), playing the worker role,
// the decode role, or both (the default decode node is the last worker).
//
// Worker role, per request (messages from rank 0, comm/mpi_tags.h):
//   kPlan (WorkOrder)        prefill its chunks in packed batches, keep the local top-k KV,
//                            answer kChunkScores (WorkerScores)
//   kKeepDecision            send each kept chunk it owns to the decode node: a KvManifest over
//                            MPI, then the payload through the KvTransport (NCCL on GPUs); a chunk
//                            it owns as the decode node itself is handed over in memory
// Decode role, per request:
//   kDecodeRequest           the query, options and generation settings (full-attention mode:
//                            the whole prompt, prefilled here)
//   kKvManifest + payload    kept chunks arriving from workers
//   once every kept chunk is here: assemble Phi_p, query prefill, first token; then one batched
//   decode step per loop turn for every request it holds (up to max_decode_batch), streaming
//   kTokens to rank 0 and ending with kResponse (DecodeUpdate with the decode-side accounting).
//   A loop turn runs at most one WorkOrder's prefill, so on a rank that both prefills and
//   decodes, the requests it decodes advance between the prefills of later ones.
// Scheduling: control messages (kDecodeRequest, kKeepDecision, kKvManifest, kCancel) are taken
// before queued work orders, and again between the forwards of a prefill, which are capped at
// NodeOptions::interleave_rows while other requests are in flight on the rank (one decode step
// and any ready request's start run there too): a request's KV moves, and its tokens stream,
// while later requests are prefilled. An abort that passes its queued work order (e.g. a deadline)
// makes the rank skip that prefill.
// Any rank:
//   kCancel (StopRequest)    drop the request (stop string, deadline, client gone); an abort
//                            (KeepDecision.abort) frees every buffer the request holds here,
//                            including KV chunks still in transit when it arrives
//   kShutdown                leave the loop
//
// A failed request is answered with an error (WorkerScores.error or DecodeUpdate.error); the
// rank keeps serving. --debug-fail-rank makes a rank exit mid-request, for the failure test.
//
// Tested by tests/cli/sieve_node_test.sh (1-3 workers, every oracle scenario, a failing rank)
// and tests/cli/service_test.py (concurrent requests, cancels, an abort passing its work order).
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "comm/mpi_comm.h"
#include "comm/world_layout.h"
#include "proto/sieve.pb.h"
#include "worker/decoder.h"
#include "worker/generation.h"
#include "worker/kv_transport.h"
#include "worker/transformer.h"

namespace sieve::worker {

struct NodeOptions {
  int max_decode_batch = 16;
  int64_t max_batch_rows = 0;  // prefill rows per forward (0: from free memory)
  // While other requests are in flight on this rank, prefill forwards are at most this many
  // rows, and the rank serves those requests after each one (keep decisions, KV, decode steps):
  // they move on while a long prefill runs.
  int64_t interleave_rows = 32768;
  int debug_fail_rank = -1;  // this rank exits (code 3) on receiving a work order
};

class NodeRole {
 public:
  NodeRole(const Transformer& model, const comm::MpiComm& world, const comm::WorldLayout& layout,
           KvTransport& transport, const NodeOptions& options);
  ~NodeRole();

  // Announces `info` to rank 0, then serves until kShutdown. An error return means this rank can
  // no longer serve (the caller aborts the job with it).
  Status Serve(const proto::ModelInfo& info);

 private:
  struct DecodeRequest;
  using Clock = std::chrono::steady_clock;

  // Receives and handles the frame `probe` found; *prefilled: it was a work order (a prefill
  // ran), *shutdown: it was kShutdown.
  Status HandleMessage(const comm::ProbeResult& probe, bool* prefilled, bool* shutdown);
  // Handles every pending control message (decode orders, keep decisions, KV manifests,
  // cancels), which may pass work orders queued before them.
  Status HandleControlMessages();
  // What a rank does between the forwards of a long prefill: control messages, requests ready
  // to start, one decode step.
  Status ServeOthers();
  // Whether `id` was aborted before its work order ran here (forgetting it if so).
  bool TakeAborted(const std::string& id);
  Status HandleWorkOrder(const proto::WorkOrder& order);
  Status HandleKeepDecision(const proto::KeepDecision& decision);
  Status HandleDecodeOrder(const proto::DecodeOrder& order);
  Status HandleManifest(const proto::KvManifest& manifest, int source);
  void HandleCancel(const std::string& request_id);
  // Starts every request whose KV is complete (query prefill + first token).
  Status StartReadyRequests();
  // One batched decode step over the started requests.
  Status DecodeStep();
  // Sends the tokens generated since the last update; with done, the final accounting.
  Status SendUpdate(DecodeRequest& r);
  void FailDecode(const std::string& request_id, const Status& status);
  // Waits for posted KV sends and the backend before leaving the loop.
  Status DrainAndSync();
  DecodeRequest& DecodeEntry(const std::string& request_id);

  const Transformer& model_;
  const comm::MpiComm& world_;
  comm::WorldLayout layout_;
  KvTransport& transport_;
  NodeOptions options_;
  std::unique_ptr<Decoder> decoder_;
  // Worker side: local top-k KV per request until the keep decision.
  std::map<std::string, std::vector<ChunkKv>> candidates_;
  // Requests aborted before this rank took their work order (which then is skipped). Bounded:
  // a rank that was never sent an order for one keeps its id until kAbortedKept newer ones.
  static constexpr size_t kAbortedKept = 4096;
  std::deque<std::string> aborted_;
  // Decode side.
  std::map<std::string, std::unique_ptr<DecodeRequest>> decode_;
  std::deque<std::string> decode_order_;  // arrival order, for fair batching
  // Requests dropped (cancelled, failed elsewhere) after their keep decision but before every
  // kept chunk arrived: how many KV manifests are still on their way. Their payloads are received
  // (the point-to-point streams stay in order) and freed at once.
  std::map<std::string, int> late_manifests_;
};

}  // namespace sieve::worker
