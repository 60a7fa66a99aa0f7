// Tests of coordinator/native_protocol.{h,cc}: the native protocol's length-prefixed framing.
//
// Round trips of ClientMessage and ServerEvent frames fed whole, byte by byte and in odd splits;
// several frames in one read; a zero-length frame; the length limit (PAYLOAD_TOO_LARGE, and the
// decoder stays failed); a stream that ends inside a header or a payload (DATA_LOSS naming how
// much arrived); a payload that is not a ClientMessage or carries neither submit nor cancel
// (INVALID_ARGUMENT, and the next frame still decodes); error events and their Status.
//
//   ./build/tests/sieve_unit_tests --gtest_filter='NativeProtocol*'
#include "coordinator/native_protocol.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sieve::coordinator {
namespace {

proto::ClientMessage Submit(uint64_t tag, const std::string& document) {
  proto::ClientMessage m;
  m.set_tag(tag);
  m.mutable_submit()->set_document_text(document);
  m.mutable_submit()->set_query_text("q?");
  return m;
}

// Decodes every complete frame currently buffered.
std::vector<std::string> Drain(FrameDecoder& d) {
  std::vector<std::string> out;
  while (true) {
    auto f = d.Next();
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    if (!f.ok() || !f->has_value()) break;
    out.push_back(**f);
  }
  return out;
}

TEST(NativeProtocolTest, HeaderIsBigEndianLength) {
  const std::string h = FrameHeader(0x01020304u);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h, std::string("\x01\x02\x03\x04", 4));
  const std::string frame = EncodeFrame(Submit(7, "doc"));
  const size_t n = frame.size() - kFrameHeaderBytes;
  EXPECT_EQ(frame.substr(0, 4), FrameHeader(static_cast<uint32_t>(n)));
}

TEST(NativeProtocolTest, RoundTripWholeByteByByteAndSplit) {
  const proto::ClientMessage a = Submit(1, "first document");
  const proto::ClientMessage b = Submit(2, std::string(5000, 'x'));
  const std::string wire = EncodeFrame(a) + EncodeFrame(b);
  for (size_t step : {wire.size(), size_t{1}, size_t{3}, size_t{4}, size_t{7}, size_t{1000}}) {
    FrameDecoder d(1 << 20);
    std::vector<std::string> frames;
    for (size_t i = 0; i < wire.size(); i += step) {
      d.Feed(std::string_view(wire).substr(i, step));
      for (std::string& f : Drain(d)) frames.push_back(std::move(f));
    }
    ASSERT_EQ(frames.size(), 2u) << "step " << step;
    auto pa = ParseClientMessage(frames[0]);
    auto pb = ParseClientMessage(frames[1]);
    ASSERT_TRUE(pa.ok() && pb.ok());
    EXPECT_EQ(pa->SerializeAsString(), a.SerializeAsString());
    EXPECT_EQ(pb->tag(), 2u);
    EXPECT_EQ(pb->submit().document_text().size(), 5000u);
    EXPECT_FALSE(d.has_partial());
    EXPECT_TRUE(d.Finish().ok());
    EXPECT_EQ(d.frames(), 2u);
  }
}

TEST(NativeProtocolTest, ZeroLengthFrameIsAnEmptyMessage) {
  FrameDecoder d(16);
  d.Feed(FrameHeader(0));
  auto frames = Drain(d);
  ASSERT_EQ(frames.size(), 1u);
  auto m = ParseClientMessage(frames[0]);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("neither submit nor cancel"), std::string::npos);
}

TEST(NativeProtocolTest, OversizedLengthPoisonsTheDecoder) {
  FrameDecoder d(100);
  d.Feed(FrameHeader(101));
  auto f = d.Next();
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kPayloadTooLarge);
  EXPECT_NE(f.status().message().find("101 bytes exceed the limit of 100"), std::string::npos);
  d.Feed(EncodeFrame(Submit(1, "x")));  // nothing after it is trusted
  EXPECT_EQ(d.Next().status().code(), StatusCode::kPayloadTooLarge);
  EXPECT_EQ(d.Finish().code(), StatusCode::kPayloadTooLarge);
  // The largest lengths a 4-byte prefix can carry are refused without allocating.
  FrameDecoder big(1 << 20);
  big.Feed(std::string("\xff\xff\xff\xff", 4));
  EXPECT_EQ(big.Next().status().code(), StatusCode::kPayloadTooLarge);
}

TEST(NativeProtocolTest, TruncatedStreamsAreDataLoss) {
  {
    FrameDecoder d(1 << 20);
    d.Feed(std::string("\x00\x00", 2));
    EXPECT_TRUE(d.has_partial());
    const Status s = d.Finish();
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_NE(s.message().find("2 of the 4 header bytes"), std::string::npos) << s.message();
  }
  {
    const std::string frame = EncodeFrame(Submit(3, "a document"));
    FrameDecoder d(1 << 20);
    d.Feed(std::string_view(frame).substr(0, frame.size() - 3));
    EXPECT_TRUE(Drain(d).empty());
    const Status s = d.Finish();
    EXPECT_EQ(s.code(), StatusCode::kDataLoss);
    EXPECT_NE(
        s.message().find(StrFormat("%zu of %zu payload bytes", frame.size() - 7, frame.size() - 4)),
        std::string::npos)
        << s.message();
  }
}

TEST(NativeProtocolTest, MalformedPayloadIsReportedAndTheStreamGoesOn) {
  const std::string garbage = "\xff\xff\xff\xff\x0f garbage";
  const std::string wire =
      FrameHeader(static_cast<uint32_t>(garbage.size())) + garbage + EncodeFrame(Submit(9, "next"));
  FrameDecoder d(1 << 20);
  d.Feed(wire);
  auto frames = Drain(d);
  ASSERT_EQ(frames.size(), 2u);
  auto bad = ParseClientMessage(frames[0]);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("not a valid ClientMessage"), std::string::npos);
  auto good = ParseClientMessage(frames[1]);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good->tag(), 9u);
}

TEST(NativeProtocolTest, InvalidUtf8InAStringFieldDoesNotParse) {
  // Field 3 (submit), containing field 3 (document_text) with bytes that are not UTF-8.
  std::string inner = std::string("\x1a\x02\xc3\x28", 4);
  std::string payload = "\x1a" + std::string(1, static_cast<char>(inner.size())) + inner;
  EXPECT_EQ(ParseClientMessage(payload).status().code(), StatusCode::kInvalidArgument);
}

TEST(NativeProtocolTest, ErrorEventsCarryTheStatus) {
  const proto::ServerEvent e = ErrorEvent(Status::ResourceExhausted("queue full"), 42, "req-1");
  EXPECT_EQ(e.tag(), 42u);
  EXPECT_EQ(e.request_id(), "req-1");
  ASSERT_TRUE(e.has_error());
  EXPECT_EQ(e.error().code(), proto::RESOURCE_EXHAUSTED);
  const Status s = StatusFromError(e.error());
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "queue full");
  auto parsed = ParseServerEvent(EncodeFrame(e).substr(4));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->error().message(), "queue full");
  proto::Error unknown;
  unknown.set_code(static_cast<proto::ErrorCode>(77));
  EXPECT_EQ(StatusFromError(unknown).code(), StatusCode::kInternal);
  EXPECT_EQ(StatusFromError(proto::Error()).code(), StatusCode::kInternal);
  EXPECT_FALSE(ParseServerEvent("").ok());
}

}  // namespace
}  // namespace sieve::coordinator
