// The native client protocol's framing: each message travels as a 4-byte big-endian length
// followed by that many bytes of one protobuf message (proto/sieve.proto): ClientMessage from the
// client (submit or cancel), ServerEvent from the service (accepted, progress, token, response,
// error). Pure: bytes in, messages or Status out, no sockets (STYLE rule 25).
//
//   std::string wire = EncodeFrame(message);          // header + payload
//   FrameDecoder decoder(max_frame_bytes);
//   decoder.Feed(bytes_from_socket);
//   while (true) {
//     SIEVE_ASSIGN_OR_RETURN(std::optional<std::string> frame, decoder.Next());
//     if (!frame) break;                              // need more bytes
//     ... ParseClientMessage(*frame) ...
//   }
//
// Errors: a length over the limit is PAYLOAD_TOO_LARGE and poisons the decoder (the stream cannot
// be resynchronized: the connection closes); a payload that is not a valid message is
// INVALID_ARGUMENT, and the stream goes on with the next frame; a stream that ends inside a frame
// is DATA_LOSS (Finish()).
//
// Tested by tests/unit/coordinator/native_protocol_test.cc and the fuzz target
// tests/fuzz/native_frame_fuzz.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "comm/status.h"
#include "proto/sieve.pb.h"

namespace sieve::coordinator {

constexpr size_t kFrameHeaderBytes = 4;

// The 4-byte big-endian length prefix of a frame of `payload_bytes`.
std::string FrameHeader(uint32_t payload_bytes);

// Header + serialized message. The message must be smaller than 4 GiB (checked).
std::string EncodeFrame(const google::protobuf::MessageLite& message);

// Splits a byte stream into frame payloads. Not thread-safe (one per connection).
class FrameDecoder {
 public:
  explicit FrameDecoder(size_t max_frame_bytes) : max_frame_bytes_(max_frame_bytes) {}

  // Appends received bytes.
  void Feed(std::string_view bytes);

  // The next complete payload; nullopt when more bytes are needed; PAYLOAD_TOO_LARGE when a
  // length prefix exceeds the limit (then every later call returns the same error).
  StatusOr<std::optional<std::string>> Next();

  // Bytes of an incomplete frame are buffered (a header or part of a payload).
  bool has_partial() const { return buffer_.size() > offset_; }
  size_t buffered_bytes() const { return buffer_.size() - offset_; }
  uint64_t frames() const { return frames_; }

  // At the end of the stream: OK, or DATA_LOSS naming how much of the last frame arrived.
  Status Finish() const;

 private:
  size_t max_frame_bytes_;
  std::string buffer_;
  size_t offset_ = 0;  // consumed prefix of buffer_
  uint64_t frames_ = 0;
  std::optional<Status> poisoned_;
};

// A payload as a ClientMessage: INVALID_ARGUMENT when it does not parse (malformed protobuf,
// invalid UTF-8 in a string field) or carries neither submit nor cancel.
StatusOr<proto::ClientMessage> ParseClientMessage(std::string_view payload);

// A payload as a ServerEvent (the client side): INVALID_ARGUMENT when it does not parse or
// carries no event.
StatusOr<proto::ServerEvent> ParseServerEvent(std::string_view payload);

// The error event for `status` (code numerically equal to its StatusCode).
proto::ServerEvent ErrorEvent(const Status& status, uint64_t tag, const std::string& request_id);

// The Status an error event carries.
Status StatusFromError(const proto::Error& error);

}  // namespace sieve::coordinator
