// The HTTP/1.1 front end's connections (Boost.Beast's parser over a plain Asio socket). One
// HttpConnection owns one socket and its buffers (STYLE rule 25); routing and the OpenAI mapping
// are pure (coordinator/http_router.h, coordinator/openai_api.h).
//
// Per connection: keep-alive, one request at a time (pipelined bytes wait in the buffer); the
// head is checked before the body is read (404/405/401/413, "Expect: 100-continue" answered);
// a request must arrive within read_timeout_s of the connection becoming idle (else 408 if part
// of it came, a silent close if nothing did); every write must finish within write_timeout_s
// (else the connection closes); the socket keeps being read while a request runs, so a client
// that disconnects is noticed at once and its request cancelled. Streams use chunked encoding
// (HTTP/1.0 clients: close-delimited). Request bodies are never logged.
//
// Threading: everything runs on the connection's strand; engine events arrive through
// PostingSink (coordinator/service_core.h).
//
// Tested by tests/cli/service_test.sh.
#pragma once

#include <boost/asio/ip/tcp.hpp>

namespace sieve::coordinator {

class ServiceCore;

// Takes an accepted socket (on its own strand) and serves it until it closes.
void StartHttpConnection(boost::asio::ip::tcp::socket socket, ServiceCore& core);

// The reply to a connection over the connection limit (429 JSON, Connection: close).
std::string HttpOverloadReply(int max_connections);

}  // namespace sieve::coordinator
