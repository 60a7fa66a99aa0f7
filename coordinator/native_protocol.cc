// Length-prefixed protobuf framing of the native protocol (see native_protocol.h).
#include "coordinator/native_protocol.h"

#include <limits>

namespace sieve::coordinator {

std::string FrameHeader(uint32_t n) {
  std::string h(kFrameHeaderBytes, '\0');
  h[0] = static_cast<char>((n >> 24) & 0xff);
  h[1] = static_cast<char>((n >> 16) & 0xff);
  h[2] = static_cast<char>((n >> 8) & 0xff);
  h[3] = static_cast<char>(n & 0xff);
  return h;
}

std::string EncodeFrame(const google::protobuf::MessageLite& message) {
  const size_t size = message.ByteSizeLong();
  SIEVE_CHECK(size <= std::numeric_limits<uint32_t>::max(), "frame of %zu bytes exceeds 4 GiB",
              size);
  std::string out = FrameHeader(static_cast<uint32_t>(size));
  out.reserve(kFrameHeaderBytes + size);
  const bool ok = message.AppendToString(&out);
  SIEVE_CHECK(ok, "cannot serialize a %s", message.GetTypeName().c_str());
  return out;
}

void FrameDecoder::Feed(std::string_view bytes) {
  if (poisoned_) return;
  // Drop the consumed prefix before it dominates the buffer.
  if (offset_ > 0 && offset_ >= buffer_.size() / 2) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  buffer_.append(bytes.data(), bytes.size());
}

StatusOr<std::optional<std::string>> FrameDecoder::Next() {
  if (poisoned_) return *poisoned_;
  const size_t available = buffer_.size() - offset_;
  if (available < kFrameHeaderBytes) return std::optional<std::string>();
  const auto* p = reinterpret_cast<const unsigned char*>(buffer_.data() + offset_);
  const uint32_t length =
      (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
  if (length > max_frame_bytes_) {
    poisoned_ = Status::PayloadTooLarge(StrFormat("frame %llu: %u bytes exceed the limit of %zu",
                                                  static_cast<unsigned long long>(frames_ + 1),
                                                  length, max_frame_bytes_));
    return *poisoned_;
  }
  if (available - kFrameHeaderBytes < length) return std::optional<std::string>();
  std::string payload = buffer_.substr(offset_ + kFrameHeaderBytes, length);
  offset_ += kFrameHeaderBytes + length;
  if (offset_ == buffer_.size()) {
    buffer_.clear();
    offset_ = 0;
  }
  ++frames_;
  return std::optional<std::string>(std::move(payload));
}

Status FrameDecoder::Finish() const {
  if (poisoned_) return *poisoned_;
  const size_t available = buffer_.size() - offset_;
  if (available == 0) return Status::Ok();
  if (available < kFrameHeaderBytes) {
    return Status::DataLoss(
        StrFormat("truncated frame %llu: the stream ended after %zu of the 4 "
                  "header bytes",
                  static_cast<unsigned long long>(frames_ + 1), available));
  }
  const auto* p = reinterpret_cast<const unsigned char*>(buffer_.data() + offset_);
  const uint32_t length =
      (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
  return Status::DataLoss(StrFormat(
      "truncated frame %llu: the stream ended after %zu of %u "
      "payload bytes",
      static_cast<unsigned long long>(frames_ + 1), available - kFrameHeaderBytes, length));
}

StatusOr<proto::ClientMessage> ParseClientMessage(std::string_view payload) {
  proto::ClientMessage message;
  if (!message.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return Status::InvalidArgument(StrFormat(
        "frame of %zu bytes is not a valid ClientMessage (malformed protobuf, or invalid UTF-8 "
        "in a string field)",
        payload.size()));
  }
  if (message.message_case() == proto::ClientMessage::MESSAGE_NOT_SET) {
    return Status::InvalidArgument("ClientMessage: carries neither submit nor cancel");
  }
  return message;
}

StatusOr<proto::ServerEvent> ParseServerEvent(std::string_view payload) {
  proto::ServerEvent event;
  if (!event.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return Status::InvalidArgument(
        StrFormat("frame of %zu bytes is not a valid ServerEvent", payload.size()));
  }
  if (event.event_case() == proto::ServerEvent::EVENT_NOT_SET) {
    return Status::InvalidArgument("ServerEvent: carries no event");
  }
  return event;
}

proto::ServerEvent ErrorEvent(const Status& status, uint64_t tag, const std::string& request_id) {
  proto::ServerEvent event;
  event.set_tag(tag);
  event.set_request_id(request_id);
  proto::Error* error = event.mutable_error();
  error->set_code(static_cast<proto::ErrorCode>(status.code()));
  error->set_message(status.message());
  error->set_request_id(request_id);
  return event;
}

Status StatusFromError(const proto::Error& error) {
  StatusCode code = static_cast<StatusCode>(error.code());
  // An error event is never OK; a code this build does not know is reported as INTERNAL.
  if (code == StatusCode::kOk || StatusCodeName(code) == "UNKNOWN") code = StatusCode::kInternal;
  return Status(code, error.message());
}

}  // namespace sieve::coordinator
