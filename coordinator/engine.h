// Engine: what runs requests, as the front ends see it. A request goes in with a sink; the sink
// receives, in order: OnAccepted, any number of OnProgress / OnText, then exactly one of
// OnResponse or OnError. Implementations:
//   ClusterCoordinator (coordinator/cluster_coordinator.h) rank 0 of an MPI job, dispatching to
//                                                          GPU workers and a decode node
//   LocalEngine (tools/local_engine.h)                     every role in this process
//
// Threading: Submit, Cancel, Stats and Shutdown may be called from any thread; the sink's callbacks
// come from the engine's own thread (the one in Run()), one request's in order, and must not
// block (front ends post them to the connection's strand).
//
// Tested through the implementations' tests and the service tests.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "comm/status.h"
#include "proto/sieve.pb.h"

namespace sieve::coordinator {

class RequestSink {
 public:
  virtual ~RequestSink() = default;
  virtual void OnAccepted(const std::string& request_id) {}
  // Chunks prefilled so far of the request's document.
  virtual void OnProgress(int chunks_done, int chunks_total) {}
  // A piece of final text (never retracted) and the token that completed it.
  virtual void OnText(const std::string& piece) {}
  virtual void OnResponse(const proto::GenerateResponse& response) = 0;
  virtual void OnError(const Status& status) = 0;
};

struct EngineStats {
  int64_t queued = 0;     // accepted, not yet dispatched
  int64_t in_flight = 0;  // dispatched, not yet answered
  int64_t completed = 0;
  int64_t failed = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;
  // Takes the request; every outcome, admission errors included, reaches `sink`. Thread-safe.
  virtual void Submit(proto::GenerateRequest request, std::shared_ptr<RequestSink> sink) = 0;
  // Abandons a request (client gone): its sink gets OnError(CANCELLED) unless already answered.
  virtual void Cancel(const std::string& request_id) = 0;
  virtual EngineStats Stats() const = 0;
  // The name requests may give in their "model" field.
  virtual std::string ModelName() const = 0;
  // The engine's loop, on the calling thread (the one thread that talks to the other ranks);
  // returns once Shutdown() was called and every accepted request has been answered (drain) or
  // failed (no drain). A Submit after Shutdown is answered UNAVAILABLE at once.
  virtual Status Run() = 0;
  // Thread-safe; may be called again with drain=false to fail what is still running.
  virtual void Shutdown(bool drain) = 0;
};

}  // namespace sieve::coordinator
