// ServiceCore: what the connections of both front ends share (internal to coordinator/service.cc,
// http_server.cc and native_server.cc): the engine, the metrics, the options, the routing context,
// the connection count, the registry of requests in flight, and the sink adapter that carries
// engine events to a connection's strand.
//
// Request ids are unique across the service: a client-chosen id that is already in flight is
// refused before it reaches the engine, and a connection can cancel only requests it submitted,
// so one client can never cancel another's request.
//
// Tested through tests/cli/service_test.sh.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>

#include "coordinator/engine.h"
#include "coordinator/http_router.h"
#include "coordinator/metrics.h"
#include "coordinator/service.h"

namespace sieve::coordinator {

class ServiceCore {
 public:
  ServiceCore(Engine& engine, const ServiceOptions& options, Metrics& metrics,
              RouterContext router);

  Engine& engine() { return engine_; }
  Metrics& metrics() { return metrics_; }
  const ServiceOptions& options() const { return options_; }
  const RouterContext& router() const { return router_; }

  // Submits for connection `owner` (request_id set). Every outcome reaches `sink`, also a
  // duplicate id (INVALID_ARGUMENT) or a service that is shutting down (UNAVAILABLE); the
  // outcome is counted in the metrics.
  void Submit(proto::GenerateRequest request, std::shared_ptr<RequestSink> sink, const void* owner);
  // Cancels `id` if `owner` submitted it and it is still in flight.
  void Cancel(const std::string& id, const void* owner);
  // "<prefix>-<16 hex>", unique in this process.
  std::string NewRequestId(std::string_view prefix);

  // Connection limit: false when max_connections are open (the caller refuses the connection).
  bool TryOpenConnection(Protocol protocol);
  void CloseConnection(Protocol protocol);

  void SetDraining() { draining_.store(true); }
  bool draining() const { return draining_.load(); }
  // Requests submitted and not yet answered (for the flush at shutdown).
  int64_t requests_in_flight() const { return in_flight_.load(); }
  // Final writes not yet on the wire, counted by the connections.
  std::atomic<int64_t>& pending_replies() { return pending_replies_; }

 private:
  class MeteredSink;
  void Finished(const std::string& id);

  Engine& engine_;
  const ServiceOptions& options_;
  Metrics& metrics_;
  RouterContext router_;
  std::atomic<int> connections_{0};
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> pending_replies_{0};
  std::atomic<uint64_t> next_id_{1};
  uint64_t id_salt_ = 0;
  std::mutex mu_;
  std::map<std::string, const void*> owners_;  // request id -> submitting connection
};

// Carries engine events to `Conn` on its strand: Conn must provide OnEngineAccepted(id),
// OnEngineProgress(id, done, total), OnEngineText(id, piece), OnEngineResponse(id, response) and
// OnEngineError(id, status), all called on the strand. Events for a connection that is gone are
// dropped (it cancelled its request when it closed).
template <typename Conn>
class PostingSink final : public RequestSink {
 public:
  PostingSink(std::weak_ptr<Conn> conn, boost::asio::any_io_executor strand, std::string id)
      : conn_(std::move(conn)), strand_(std::move(strand)), id_(std::move(id)) {}

  void OnAccepted(const std::string&) override {
    Post([id = id_](Conn& c) { c.OnEngineAccepted(id); });
  }
  void OnProgress(int done, int total) override {
    Post([id = id_, done, total](Conn& c) { c.OnEngineProgress(id, done, total); });
  }
  void OnText(const std::string& piece) override {
    Post([id = id_, piece](Conn& c) { c.OnEngineText(id, piece); });
  }
  void OnResponse(const proto::GenerateResponse& response) override {
    auto shared = std::make_shared<proto::GenerateResponse>(response);
    Post([id = id_, shared](Conn& c) { c.OnEngineResponse(id, *shared); });
  }
  void OnError(const Status& status) override {
    Post([id = id_, status](Conn& c) { c.OnEngineError(id, status); });
  }

 private:
  template <typename F>
  void Post(F f) {
    boost::asio::post(strand_, [conn = conn_, f = std::move(f)]() mutable {
      if (auto c = conn.lock()) f(*c);
    });
  }
  std::weak_ptr<Conn> conn_;
  boost::asio::any_io_executor strand_;
  std::string id_;
};

}  // namespace sieve::coordinator
