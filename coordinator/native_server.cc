// NativeConnection: one native-protocol client connection (see native_server.h).
#include "coordinator/native_server.h"

#include <chrono>
#include <deque>
#include <map>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "comm/log.h"
#include "coordinator/api_key.h"
#include "coordinator/native_protocol.h"
#include "coordinator/proto_request.h"
#include "coordinator/queued_writes.h"
#include "coordinator/service_core.h"

namespace sieve::coordinator {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr size_t kReadChunk = 64 * 1024;
// A frame holds one request: the body limit plus room for the envelope.
size_t MaxFrameBytes(const RequestLimits& limits) {
  return static_cast<size_t>(limits.max_body_bytes) + 4096;
}

std::chrono::steady_clock::duration Seconds(double s) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(s));
}

}  // namespace

std::string NativeOverloadReply(int max_connections) {
  return EncodeFrame(
      ErrorEvent(Status::ResourceExhausted(
                     StrFormat("too many connections (limit %d); retry later", max_connections)),
                 0, ""));
}

class NativeConnection : public std::enable_shared_from_this<NativeConnection>,
                         private QueuedWrites<NativeConnection> {
  friend class QueuedWrites<NativeConnection>;

 public:
  NativeConnection(tcp::socket socket, ServiceCore& core)
      : socket_(std::move(socket)),
        core_(core),
        read_timer_(socket_.get_executor()),
        write_timer_(socket_.get_executor()),
        decoder_(MaxFrameBytes(core.options().limits)) {
    peer_ = PeerAddress(socket_);
  }

  ~NativeConnection() {
    SettleReplies();
    core_.CloseConnection(Protocol::kNative);
  }

  void Start() {
    SIEVE_LOG_DEBUG("native connection", "peer=%s", peer_.c_str());
    UpdateReadTimer();
    DoRead();
  }

  // ---- Engine events (on the strand) ----

  void OnEngineAccepted(const std::string& id) {
    auto it = requests_.find(id);
    if (closed_ || it == requests_.end()) return;
    proto::ServerEvent e = Event(id, it->second.tag);
    e.mutable_accepted()->set_model(core_.router().model_name);
    Send(e, false);
  }

  void OnEngineProgress(const std::string& id, int done, int total) {
    auto it = requests_.find(id);
    if (closed_ || it == requests_.end()) return;
    proto::ServerEvent e = Event(id, it->second.tag);
    e.mutable_progress()->set_chunks_done(done);
    e.mutable_progress()->set_chunks_total(total);
    Send(e, false);
  }

  void OnEngineText(const std::string& id, const std::string& piece) {
    auto it = requests_.find(id);
    if (closed_ || it == requests_.end() || !it->second.stream) return;
    proto::ServerEvent e = Event(id, it->second.tag);
    e.mutable_token()->set_text(piece);
    Send(e, false);
  }

  void OnEngineResponse(const std::string& id, const proto::GenerateResponse& response) {
    auto it = requests_.find(id);
    if (closed_ || it == requests_.end()) return;
    proto::ServerEvent e = Event(id, it->second.tag);
    *e.mutable_response() = response;
    Finish(it, "ok");
    Send(e, true);
  }

  void OnEngineError(const std::string& id, const Status& status) {
    auto it = requests_.find(id);
    if (closed_ || it == requests_.end()) return;
    const uint64_t tag = it->second.tag;
    Finish(it, std::string(StatusCodeName(status.code())).c_str());
    Send(ErrorEvent(status, tag, id), true);
  }

 private:
  struct Running {
    uint64_t tag = 0;
    bool stream = false;
    std::chrono::steady_clock::time_point start;
  };
  enum class TimerMode { kNone, kIdle, kFrame };

  static proto::ServerEvent Event(const std::string& id, uint64_t tag) {
    proto::ServerEvent e;
    e.set_tag(tag);
    e.set_request_id(id);
    return e;
  }

  void Finish(std::map<std::string, Running>::iterator it, const char* outcome) {
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - it->second.start).count();
    SIEVE_LOG_INFO("native request", "peer=%s id=%s outcome=%s seconds=%.3f", peer_.c_str(),
                   it->first.c_str(), outcome, s);
    requests_.erase(it);
    UpdateReadTimer();
  }

  // ---- Reading ----

  void DoRead() {
    if (closed_ || reading_ || close_after_write_) return;
    reading_ = true;
    socket_.async_read_some(
        asio::buffer(readbuf_),
        [self = shared_from_this()](error_code ec, size_t n) { self->OnRead(ec, n); });
  }

  void OnRead(error_code ec, size_t n) {
    reading_ = false;
    if (closed_ || close_after_write_) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      if (Status s = decoder_.Finish(); !s.ok()) {
        SIEVE_LOG_INFO("native stream ended inside a frame", "peer=%s error=\"%s\"", peer_.c_str(),
                       s.ToString().c_str());
        core_.metrics().RecordError(s);
      }
      return Close(requests_.empty() ? "client closed" : "client disconnected while requests ran");
    }
    decoder_.Feed(std::string_view(readbuf_.data(), n));
    while (!closed_ && !close_after_write_) {
      auto frame = decoder_.Next();
      if (!frame.ok()) {
        // An oversized length: the stream cannot be resynchronized.
        core_.metrics().RecordError(frame.status());
        SIEVE_LOG_INFO("native frame refused", "peer=%s error=\"%s\"", peer_.c_str(),
                       frame.status().ToString().c_str());
        Send(ErrorEvent(frame.status(), 0, ""), false);
        return CloseAfterWrite();
      }
      if (!frame->has_value()) break;
      HandleFrame(**frame);
    }
    UpdateReadTimer();
    DoRead();
  }

  void HandleFrame(const std::string& payload) {
    auto message = ParseClientMessage(payload);
    if (!message.ok()) {
      // The framing is intact: report and go on with the next frame.
      core_.metrics().RecordError(message.status());
      Send(ErrorEvent(message.status(), 0, ""), false);
      return;
    }
    const uint64_t tag = message->tag();
    const std::string& key = core_.options().api_key;
    if (!key.empty() &&
        (!ConstantTimeEquals(key, message->api_key()) || message->api_key().empty())) {
      const Status s = Status::Unauthenticated(message->api_key().empty()
                                                   ? "missing API key (ClientMessage.api_key)"
                                                   : "invalid API key");
      core_.metrics().RecordError(s);
      SIEVE_LOG_INFO("native request refused", "peer=%s error=\"%s\"", peer_.c_str(),
                     s.ToString().c_str());
      Send(ErrorEvent(s, tag, ""), false);
      return CloseAfterWrite();
    }
    if (message->has_cancel()) return HandleCancel(message->cancel(), tag);
    HandleSubmit(std::move(*message->mutable_submit()), tag);
  }

  void HandleSubmit(proto::GenerateRequest request, uint64_t tag) {
    auto reject = [&](const Status& s) {
      core_.metrics().RecordError(s);
      SIEVE_LOG_INFO("native request refused", "peer=%s error=\"%s\"", peer_.c_str(),
                     s.ToString().c_str());
      Send(ErrorEvent(s, tag, request.request_id()), false);
    };
    if (Status s = ValidateGenerateRequest(&request, core_.options().limits); !s.ok()) {
      return reject(s);
    }
    if (!request.model().empty() && request.model() != core_.router().model_name) {
      return reject(
          Status::NotFound(StrFormat("model: '%s' is not served here (this service runs '%s')",
                                     request.model().c_str(), core_.router().model_name.c_str())));
    }
    if (static_cast<int>(requests_.size()) >= core_.options().max_requests_per_connection) {
      return reject(Status::ResourceExhausted(
          StrFormat("this connection already has %zu requests in flight (limit %d)",
                    requests_.size(), core_.options().max_requests_per_connection)));
    }
    if (request.request_id().empty()) request.set_request_id(core_.NewRequestId("req"));
    const std::string id = request.request_id();
    if (requests_.count(id)) {
      return reject(
          Status::InvalidArgument(StrFormat("request_id: '%s' is already in flight", id.c_str())));
    }
    requests_[id] =
        Running{.tag = tag, .stream = request.stream(), .start = std::chrono::steady_clock::now()};
    OweReply();
    auto sink = std::make_shared<PostingSink<NativeConnection>>(weak_from_this(),
                                                                socket_.get_executor(), id);
    core_.Submit(std::move(request), std::move(sink), this);
  }

  void HandleCancel(const proto::CancelRequest& cancel, uint64_t tag) {
    std::string id = cancel.request_id();
    if (id.empty()) {
      for (const auto& [rid, r] : requests_) {
        if (r.tag == tag) id = rid;
      }
    }
    if (!id.empty() && requests_.count(id)) core_.Cancel(id, this);
  }

  // ---- Writing ----

  void Send(const proto::ServerEvent& event, bool final) { QueueBytes(EncodeFrame(event), final); }

  // QueuedWrites: everything queued is on the wire.
  void OnWritesDrained() {
    if (close_after_write_) Close("closed after the last event");
  }

  void CloseAfterWrite() {
    close_after_write_ = true;
    if (writes_idle()) Close("closed after the last event");
  }

  // ---- Timers and closing ----

  void UpdateReadTimer() {
    if (closed_) return;
    TimerMode want = decoder_.has_partial() ? TimerMode::kFrame
                     : requests_.empty()    ? TimerMode::kIdle
                                            : TimerMode::kNone;
    if (want == timer_mode_) return;  // a frame's deadline runs from its first byte
    timer_mode_ = want;
    if (want == TimerMode::kNone) {
      read_timer_.cancel();
      return;
    }
    read_timer_.expires_after(Seconds(core_.options().read_timeout_s));
    read_timer_.async_wait([self = shared_from_this(), want](error_code ec) {
      if (!ec && self->timer_mode_ == want) self->OnReadTimeout();
    });
  }

  void OnReadTimeout() {
    if (closed_) return;
    if (timer_mode_ == TimerMode::kIdle) return Close("idle timeout");
    const Status s = Status::DeadlineExceeded(
        StrFormat("read timeout: a frame did not complete within %g s (%zu bytes arrived)",
                  core_.options().read_timeout_s, decoder_.buffered_bytes()));
    core_.metrics().RecordError(s);
    SIEVE_LOG_INFO("native read timeout", "peer=%s", peer_.c_str());
    Send(ErrorEvent(s, 0, ""), false);
    CloseAfterWrite();
  }

  void Close(const std::string& why) {
    if (closed_) return;
    closed_ = true;
    SIEVE_LOG_DEBUG("native connection closed", "peer=%s why=\"%s\"", peer_.c_str(), why.c_str());
    for (const auto& [id, r] : requests_) {
      SIEVE_LOG_INFO("client gone: cancelling its request", "peer=%s id=%s why=\"%s\"",
                     peer_.c_str(), id.c_str(), why.c_str());
      core_.Cancel(id, this);
    }
    requests_.clear();
    read_timer_.cancel();
    write_timer_.cancel();
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    DropWrites();
  }

  tcp::socket socket_;
  ServiceCore& core_;
  asio::steady_timer read_timer_;
  asio::steady_timer write_timer_;
  FrameDecoder decoder_;
  std::string peer_;
  std::array<char, kReadChunk> readbuf_;
  std::map<std::string, Running> requests_;
  TimerMode timer_mode_ = TimerMode::kNone;
  bool reading_ = false;
  bool closed_ = false;
  bool close_after_write_ = false;
};

void StartNativeConnection(tcp::socket socket, ServiceCore& core) {
  std::make_shared<NativeConnection>(std::move(socket), core)->Start();
}

}  // namespace sieve::coordinator
