// The service around an Engine: io_context + threads, the two listeners, signals, the shared
// core of the connections (see service.h and service_core.h).
#include "coordinator/service.h"

#include <chrono>
#include <ctime>
#include <random>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include "comm/log.h"
#include "coordinator/http_server.h"
#include "coordinator/native_server.h"
#include "coordinator/service_core.h"

#if __has_include(<google/protobuf/stubs/logging.h>)
#include <google/protobuf/stubs/logging.h>
#define SIEVE_PROTOBUF_LOG_HANDLER 1
#endif

namespace sieve::coordinator {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

#ifdef SIEVE_PROTOBUF_LOG_HANDLER
// Protobuf logs every string field with invalid UTF-8 it is asked to parse; clients decide what
// they send, so those lines go to the debug log instead of stderr (the client gets its error).
void ProtobufLog(google::protobuf::LogLevel level, const char* file, int line,
                 const std::string& message) {
  if (level >= google::protobuf::LOGLEVEL_FATAL) {
    SIEVE_LOG_ERROR("protobuf", "src=%s:%d message=\"%s\"", file, line, message.c_str());
  } else {
    SIEVE_LOG_DEBUG("protobuf", "src=%s:%d message=\"%s\"", file, line, message.c_str());
  }
}
#endif

}  // namespace

StatusOr<std::pair<std::string, uint16_t>> ParseListenAddress(const std::string& text) {
  std::string host;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Status::InvalidArgument(
          StrFormat("listen address '%s': expected [IPv6]:PORT", text.c_str()));
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string::npos) {
      return Status::InvalidArgument(
          StrFormat("listen address '%s': expected ADDR:PORT (e.g. 127.0.0.1:8080)", text.c_str()));
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty()) {
    return Status::InvalidArgument(StrFormat("listen address '%s': empty address", text.c_str()));
  }
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  if (ec) {
    return Status::InvalidArgument(
        StrFormat("listen address '%s': '%s' is not an IP address", text.c_str(), host.c_str()));
  }
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535) {
    return Status::InvalidArgument(
        StrFormat("listen address '%s': port must be a number in [0, 65535]", text.c_str()));
  }
  return std::make_pair(host, static_cast<uint16_t>(std::stoi(port)));
}

// ---- ServiceCore ----

// Counts the outcome, frees the id, then forwards to the connection's sink.
class ServiceCore::MeteredSink final : public RequestSink {
 public:
  MeteredSink(ServiceCore& core, std::string id, std::shared_ptr<RequestSink> inner)
      : core_(core), id_(std::move(id)), inner_(std::move(inner)) {}
  void OnAccepted(const std::string& id) override { inner_->OnAccepted(id); }
  void OnProgress(int done, int total) override { inner_->OnProgress(done, total); }
  void OnText(const std::string& piece) override { inner_->OnText(piece); }
  void OnResponse(const proto::GenerateResponse& response) override {
    if (Final()) core_.metrics().RecordResponse(response);
    inner_->OnResponse(response);
  }
  void OnError(const Status& status) override {
    if (Final()) core_.metrics().RecordError(status);
    inner_->OnError(status);
  }

 private:
  bool Final() {
    if (done_.exchange(true)) return false;
    core_.Finished(id_);
    return true;
  }
  ServiceCore& core_;
  std::string id_;
  std::shared_ptr<RequestSink> inner_;
  std::atomic<bool> done_{false};
};

ServiceCore::ServiceCore(Engine& engine, const ServiceOptions& options, Metrics& metrics,
                         RouterContext router)
    : engine_(engine), options_(options), metrics_(metrics), router_(std::move(router)) {
  std::random_device rd;
  id_salt_ = (uint64_t{rd()} << 32) ^ rd();
}

void ServiceCore::Submit(proto::GenerateRequest request, std::shared_ptr<RequestSink> sink,
                         const void* owner) {
  const std::string id = request.request_id();
  if (draining()) {
    metrics_.RecordError(Status::Unavailable(""));
    sink->OnError(Status::Unavailable("the service is shutting down"));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!owners_.emplace(id, owner).second) {
      metrics_.RecordOutcome(Outcome::kInvalid);
      sink->OnError(
          Status::InvalidArgument(StrFormat("request_id: '%s' is already in flight", id.c_str())));
      return;
    }
  }
  in_flight_.fetch_add(1);
  engine_.Submit(std::move(request), std::make_shared<MeteredSink>(*this, id, std::move(sink)));
}

void ServiceCore::Finished(const std::string& id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    owners_.erase(id);
  }
  in_flight_.fetch_sub(1);
}

void ServiceCore::Cancel(const std::string& id, const void* owner) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = owners_.find(id);
    if (it == owners_.end() || it->second != owner) return;
  }
  SIEVE_LOG_INFO("request cancelled by its client", "id=%s", id.c_str());
  engine_.Cancel(id);
}

std::string ServiceCore::NewRequestId(std::string_view prefix) {
  const uint64_t n = next_id_.fetch_add(1);
  // A per-process salt keeps ids from different runs apart; the counter keeps them unique.
  return StrFormat("%.*s-%08llx%08llx", static_cast<int>(prefix.size()), prefix.data(),
                   static_cast<unsigned long long>(id_salt_ & 0xffffffffu),
                   static_cast<unsigned long long>(n));
}

bool ServiceCore::TryOpenConnection(Protocol protocol) {
  int open = connections_.load();
  do {
    if (open >= options_.max_connections) {
      metrics_.ConnectionRejected(protocol);
      return false;
    }
  } while (!connections_.compare_exchange_weak(open, open + 1));
  metrics_.ConnectionOpened(protocol);
  return true;
}

void ServiceCore::CloseConnection(Protocol protocol) {
  connections_.fetch_sub(1);
  metrics_.ConnectionClosed(protocol);
}

// ---- Listener ----

namespace {

// Writes `bytes` to a refused connection (bounded by a 1 s timer), then closes it.
void Refuse(tcp::socket socket, std::string bytes) {
  struct Refusal {
    explicit Refusal(tcp::socket s, std::string b)
        : socket(std::move(s)), timer(socket.get_executor()), bytes(std::move(b)) {}
    tcp::socket socket;
    asio::steady_timer timer;
    std::string bytes;
  };
  auto r = std::make_shared<Refusal>(std::move(socket), std::move(bytes));
  r->timer.expires_after(std::chrono::seconds(1));
  r->timer.async_wait([r](boost::system::error_code ec) {
    if (!ec) r->socket.close(ec);
  });
  asio::async_write(r->socket, asio::buffer(r->bytes), [r](boost::system::error_code ec, size_t) {
    r->timer.cancel();
    r->socket.shutdown(tcp::socket::shutdown_both, ec);
    r->socket.close(ec);
  });
}

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(asio::io_context& ioc, ServiceCore& core, Protocol protocol)
      : ioc_(ioc),
        core_(core),
        protocol_(protocol),
        acceptor_(asio::make_strand(ioc)),
        retry_(acceptor_.get_executor()) {}

  Status Bind(const std::string& address) {
    SIEVE_ASSIGN_OR_RETURN(auto host_port, ParseListenAddress(address));
    const tcp::endpoint endpoint(asio::ip::make_address(host_port.first), host_port.second);
    boost::system::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::Unavailable(StrFormat("cannot listen on %s (%s): %s", address.c_str(),
                                           std::string(ProtocolName(protocol_)).c_str(),
                                           ec.message().c_str()));
    }
    bound_ = acceptor_.local_endpoint(ec);
    return Status::Ok();
  }

  std::string Address() const {
    const auto a = bound_.address();
    const unsigned port = bound_.port();
    return a.is_v6() ? StrFormat("[%s]:%u", a.to_string().c_str(), port)
                     : StrFormat("%s:%u", a.to_string().c_str(), port);
  }

  void Start() {
    asio::post(acceptor_.get_executor(), [self = shared_from_this()] { self->DoAccept(); });
  }

  void Stop() {
    asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
      boost::system::error_code ec;
      self->stopped_ = true;
      self->retry_.cancel();
      self->acceptor_.close(ec);
    });
  }

 private:
  void DoAccept() {
    if (stopped_) return;
    acceptor_.async_accept(
        asio::make_strand(ioc_),
        [self = shared_from_this()](boost::system::error_code ec, tcp::socket socket) {
          self->OnAccept(ec, std::move(socket));
        });
  }

  void OnAccept(boost::system::error_code ec, tcp::socket socket) {
    if (stopped_ || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of descriptors and the like: say so and try again shortly instead of spinning.
      SIEVE_LOG_WARN("accept failed", "protocol=%s error=\"%s\"",
                     std::string(ProtocolName(protocol_)).c_str(), ec.message().c_str());
      retry_.expires_after(std::chrono::milliseconds(100));
      retry_.async_wait([self = shared_from_this()](boost::system::error_code wait_ec) {
        if (!wait_ec) self->DoAccept();
      });
      return;
    }
    socket.set_option(tcp::no_delay(true), ec);
    if (core_.options().send_buffer_bytes > 0) {
      socket.set_option(asio::socket_base::send_buffer_size(core_.options().send_buffer_bytes), ec);
    }
    if (!core_.TryOpenConnection(protocol_)) {
      SIEVE_LOG_WARN("connection refused: limit reached", "protocol=%s limit=%d",
                     std::string(ProtocolName(protocol_)).c_str(), core_.options().max_connections);
      Refuse(std::move(socket), protocol_ == Protocol::kHttp
                                    ? HttpOverloadReply(core_.options().max_connections)
                                    : NativeOverloadReply(core_.options().max_connections));
    } else if (protocol_ == Protocol::kHttp) {
      StartHttpConnection(std::move(socket), core_);
    } else {
      StartNativeConnection(std::move(socket), core_);
    }
    DoAccept();
  }

  asio::io_context& ioc_;
  ServiceCore& core_;
  Protocol protocol_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
  tcp::endpoint bound_;
  bool stopped_ = false;
};

}  // namespace

// ---- Service ----

struct Service::Impl {
  Impl(Engine& e, ServiceOptions o)
      : engine(e),
        options(std::move(o)),
        core(engine, options, metrics, MakeRouter()),
        work(asio::make_work_guard(ioc)),
        signals(ioc),
        grace(ioc) {}

  RouterContext MakeRouter() {
    RouterContext r;
    r.model_name = engine.ModelName();
    r.api_key = options.api_key;
    r.limits = options.limits;
    r.started_unix_s = static_cast<int64_t>(std::time(nullptr));
    r.health = [this] { return HealthInfo{.serving = !core.draining(), .stats = engine.Stats()}; };
    r.metrics_text = [this] { return metrics.Render(engine.Stats()); };
    return r;
  }

  void WaitForSignals() {
    signals.async_wait([this](boost::system::error_code ec, int signo) {
      if (ec) return;
      if (!core.draining()) {
        Shutdown(signo == SIGINT ? "SIGINT" : "SIGTERM");
      } else {
        std::fprintf(stderr, "[sieve] second signal: failing the requests still running\n");
        engine.Shutdown(/*drain=*/false);
      }
      WaitForSignals();
    });
  }

  void Shutdown(const char* why) {
    bool expected = false;
    if (!shutdown_started.compare_exchange_strong(expected, true)) return;
    std::fprintf(stderr,
                 "[sieve] %s: no longer accepting; draining %lld request(s) for up to %.0f s\n",
                 why, static_cast<long long>(core.requests_in_flight()), options.grace_s);
    std::fflush(stderr);
    core.SetDraining();
    for (auto& l : listeners) l->Stop();
    engine.Shutdown(/*drain=*/true);
    asio::post(ioc, [this] {
      grace.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>(options.grace_s)));
      grace.async_wait([this](boost::system::error_code ec) {
        if (ec) return;
        std::fprintf(stderr, "[sieve] grace period over: failing the requests still running\n");
        engine.Shutdown(/*drain=*/false);
      });
    });
  }

  Engine& engine;
  ServiceOptions options;
  Metrics metrics;
  ServiceCore core;
  asio::io_context ioc;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  asio::signal_set signals;
  asio::steady_timer grace;
  std::vector<std::shared_ptr<Listener>> listeners;
  std::shared_ptr<Listener> http, native;
  std::vector<std::thread> threads;
  std::atomic<bool> shutdown_started{false};
};

Service::Service(Engine& engine, ServiceOptions options)
    : impl_(std::make_unique<Impl>(engine, std::move(options))) {}

Service::~Service() { Stop(0); }

Status Service::Start() {
  Impl& m = *impl_;
  if (m.options.http_listen.empty() && m.options.native_listen.empty()) {
    return Status::InvalidArgument("the service needs --listen or --native-listen");
  }
  if (!m.options.http_listen.empty()) {
    m.http = std::make_shared<Listener>(m.ioc, m.core, Protocol::kHttp);
    SIEVE_RETURN_IF_ERROR(m.http->Bind(m.options.http_listen));
    m.listeners.push_back(m.http);
  }
  if (!m.options.native_listen.empty()) {
    m.native = std::make_shared<Listener>(m.ioc, m.core, Protocol::kNative);
    SIEVE_RETURN_IF_ERROR(m.native->Bind(m.options.native_listen));
    m.listeners.push_back(m.native);
  }
#ifdef SIEVE_PROTOBUF_LOG_HANDLER
  google::protobuf::SetLogHandler(&ProtobufLog);
#endif
  boost::system::error_code ec;
  m.signals.add(SIGINT, ec);
  if (!ec) m.signals.add(SIGTERM, ec);
  if (ec) return Status::Internal("cannot install the SIGTERM/SIGINT handler: " + ec.message());
  m.WaitForSignals();
  for (auto& l : m.listeners) l->Start();
  const int threads = std::max(1, m.options.io_threads);
  for (int i = 0; i < threads; ++i) m.threads.emplace_back([&m] { m.ioc.run(); });
  return Status::Ok();
}

std::string Service::HttpAddress() const { return impl_->http ? impl_->http->Address() : ""; }
std::string Service::NativeAddress() const { return impl_->native ? impl_->native->Address() : ""; }

void Service::BeginShutdown(const char* why) { impl_->Shutdown(why); }

void Service::Stop(double flush_s) {
  Impl& m = *impl_;
  if (m.threads.empty()) return;
  m.core.SetDraining();
  for (auto& l : m.listeners) l->Stop();
  // The engine has answered everything; give the connections a moment to put the last bytes on
  // the wire.
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                         std::chrono::duration<double>(flush_s));
  while (std::chrono::steady_clock::now() < until &&
         (m.core.requests_in_flight() > 0 || m.core.pending_replies().load() > 0)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (m.core.requests_in_flight() > 0 || m.core.pending_replies().load() > 0) {
    SIEVE_LOG_WARN("closing with replies unsent", "requests=%lld replies=%lld",
                   static_cast<long long>(m.core.requests_in_flight()),
                   static_cast<long long>(m.core.pending_replies().load()));
  }
  boost::system::error_code ec;
  m.signals.cancel(ec);
  m.grace.cancel();
  m.work.reset();
  m.ioc.stop();
  for (std::thread& t : m.threads) t.join();
  m.threads.clear();
}

Metrics& Service::metrics() { return impl_->metrics; }

}  // namespace sieve::coordinator
