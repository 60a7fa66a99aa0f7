// Service: rank 0's network front ends around an Engine. Owns the Asio io_context and its thread
// pool, the HTTP listener (coordinator/http_server.h), the native-protocol listener
// (coordinator/native_server.h), the metrics and the SIGTERM/SIGINT handling:
//
//   Service service(engine, options);
//   SIEVE_RETURN_IF_ERROR(service.Start());   // binds; I/O threads and signals start
//   engine.Run();                             // this thread: the engine (all MPI traffic)
//   service.Stop();                           // after Run returned: flush, close, join
//
// Shutdown on the first SIGTERM or SIGINT (or BeginShutdown()): the listeners stop accepting,
// /health answers 503, new requests get UNAVAILABLE, the engine drains what it holds; after
// grace_s whatever still runs is failed with UNAVAILABLE (a second signal does that at once).
// Engine::Run then returns and the caller finalizes MPI.
//
// Threading: Start, Stop and the accessors belong to the owning thread; BeginShutdown is
// thread-safe. Connections run on `io_threads` threads, each connection on its own strand; the
// engine's sink callbacks are posted to that strand and never block the engine thread. A
// connection that closes while its request runs cancels it (Engine::Cancel), which frees its KV
// on the workers and the decode node.
//
// Tested by tests/unit/coordinator/service_test.cc (ParseListenAddress) and
// tests/cli/service_test.sh (end to end under mpirun).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "comm/status.h"
#include "coordinator/engine.h"
#include "coordinator/metrics.h"
#include "coordinator/request_parser.h"

namespace sieve::coordinator {

struct ServiceOptions {
  std::string http_listen = "127.0.0.1:8080";    // "" = no HTTP front end
  std::string native_listen = "127.0.0.1:8081";  // "" = no native front end
  std::string api_key;                           // "" = no key needed
  int max_connections = 256;                     // both front ends together
  double read_timeout_s = 30;   // a request (or an idle keep-alive connection) must arrive within
  double write_timeout_s = 30;  // each write must complete within
  double grace_s = 30;          // drain time after SIGTERM before failing what runs
  int io_threads = 2;
  int max_requests_per_connection = 16;  // native protocol: requests in flight per connection
  // SO_SNDBUF of each client socket (0: the kernel's autotuned default). Bounds what a client
  // that stops reading can make the service hold, and how soon write_timeout_s catches it.
  int send_buffer_bytes = 0;
  RequestLimits limits;
};

// "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:0" (port 0: any free port) -> host and port.
StatusOr<std::pair<std::string, uint16_t>> ParseListenAddress(const std::string& text);

class Service {
 public:
  // `engine` must outlive the Service.
  Service(Engine& engine, ServiceOptions options);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Binds the listeners (errors name the address), then starts the I/O threads and the signal
  // handler.
  Status Start();
  // "127.0.0.1:8080" as bound (the real port when 0 was asked); "" when that front end is off.
  std::string HttpAddress() const;
  std::string NativeAddress() const;

  // Stop accepting, drain the engine, fail the rest after grace_s. Thread-safe, idempotent.
  void BeginShutdown(const char* why);
  // After Engine::Run returned: waits up to `flush_s` for the last responses to be written,
  // closes every connection and joins the I/O threads.
  void Stop(double flush_s = 5);

  Metrics& metrics();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sieve::coordinator
