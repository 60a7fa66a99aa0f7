// libFuzzer target: the native protocol's framing and messages, everything a native client's
// bytes reach before the engine (coordinator/native_protocol.h, coordinator/proto_request.h).
// The input is the byte stream of one connection, delivered in pieces whose sizes the first
// byte chooses; every complete frame is parsed as a ClientMessage and a submit is validated.
// Invariants: a frame decodes to exactly the bytes that were framed (re-encoding a parsed
// message and decoding it again gives the same message); validation is idempotent (a request it
// accepted, validated again, is accepted unchanged); an oversized length poisons the decoder for
// good; Finish() reports a partial frame exactly when one is buffered.
//
//   build/fuzz/sieve-fuzz-native -max_total_time=60 build/fuzz/corpus-native
//   tests/fuzz/corpus/native
// Run by tests/fuzz/run_fuzz.sh (CTest label fuzz).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "coordinator/native_protocol.h"
#include "coordinator/proto_request.h"

namespace {

using namespace sieve;
using namespace sieve::coordinator;

void Require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

void HandlePayload(const std::string& payload, const RequestLimits& limits) {
  auto message = ParseClientMessage(payload);
  if (!message.ok()) {
    Require(message.status().code() == StatusCode::kInvalidArgument, "parse errors are 400s");
    (void)EncodeFrame(ErrorEvent(message.status(), 0, ""));
    return;
  }
  // Round trip through the framing.
  const std::string frame = EncodeFrame(*message);
  FrameDecoder again(frame.size());
  again.Feed(frame);
  auto decoded = again.Next();
  Require(decoded.ok() && decoded->has_value(), "a framed message decodes");
  auto reparsed = ParseClientMessage(**decoded);
  Require(reparsed.ok(), "a re-encoded message parses");
  Require(reparsed->SerializeAsString() == message->SerializeAsString(),
          "a re-encoded message is the same message");
  if (message->has_submit()) {
    proto::GenerateRequest request = message->submit();
    const Status s = ValidateGenerateRequest(&request, limits);
    if (s.ok()) {
      proto::GenerateRequest twice = request;
      Require(ValidateGenerateRequest(&twice, limits).ok(), "validation accepts its own output");
      Require(twice.SerializeAsString() == request.SerializeAsString(), "validation is idempotent");
    } else {
      Require(!s.message().empty(), "every rejection says why");
      (void)EncodeFrame(ErrorEvent(s, message->tag(), request.request_id()));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  RequestLimits limits;
  limits.max_body_bytes = 1 << 16;
  limits.max_document_bytes = 1 << 14;
  limits.max_document_ids = 1 << 12;
  limits.max_new_tokens = 4096;
  const size_t piece = (data[0] % 32) + 1;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  FrameDecoder decoder(1 << 16);
  bool poisoned = false;
  for (size_t pos = 0; pos < stream.size() && !poisoned; pos += piece) {
    decoder.Feed(stream.substr(pos, piece));
    while (true) {
      auto frame = decoder.Next();
      if (!frame.ok()) {
        Require(frame.status().code() == StatusCode::kPayloadTooLarge, "only lengths poison");
        poisoned = true;
        break;
      }
      if (!frame->has_value()) break;
      Require((*frame)->size() <= (1u << 16), "frames respect the limit");
      HandlePayload(**frame, limits);
    }
  }
  const Status end = decoder.Finish();
  if (poisoned) {
    Require(end.code() == StatusCode::kPayloadTooLarge, "a poisoned decoder stays poisoned");
  } else {
    Require(end.ok() == !decoder.has_partial(), "Finish reports exactly the partial frames");
  }
  return 0;
}
