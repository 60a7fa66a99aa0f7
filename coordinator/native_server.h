// The native protocol's connections: length-prefixed protobuf frames over TCP
// (coordinator/native_protocol.h, proto/sieve.proto ClientMessage / ServerEvent). One
// NativeConnection owns one socket and its buffers (STYLE rule 25).
//
// A connection may carry up to max_requests_per_connection requests at once. Each submit is
// checked (API key, ValidateGenerateRequest, model) and answered with an error event or an
// accepted event, then progress events, token events when GenerateRequest.stream is set, and
// one final response or error event. Bad frames: a malformed protobuf gets an error event and
// the stream goes on; an oversized length prefix gets PAYLOAD_TOO_LARGE and the connection
// closes; a stream that ends inside a frame is logged as truncated. Timeouts: an idle
// connection (no request in flight) or a frame that does not complete within read_timeout_s is
// closed (with a DEADLINE_EXCEEDED event for the incomplete frame); a write that does not finish
// within write_timeout_s closes it. A connection that closes cancels its requests.
//
// Threading: everything runs on the connection's strand; engine events arrive through
// PostingSink (coordinator/service_core.h).
//
// Tested by tests/cli/service_test.sh.
#pragma once

#include <string>

#include <boost/asio/ip/tcp.hpp>

namespace sieve::coordinator {

class ServiceCore;

void StartNativeConnection(boost::asio::ip::tcp::socket socket, ServiceCore& core);

// The error event frame sent to a connection over the connection limit.
std::string NativeOverloadReply(int max_connections);

}  // namespace sieve::coordinator
