// HttpConnection: one HTTP/1.1 client connection (see http_server.h).
#include "coordinator/http_server.h"

#include <chrono>
#include <ctime>
#include <deque>
#include <optional>
#include <sstream>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http.hpp>

#include "comm/log.h"
#include "coordinator/beast_head.h"
#include "coordinator/openai_api.h"
#include "coordinator/queued_writes.h"
#include "coordinator/service_core.h"

namespace sieve::coordinator {
namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kHeaderLimit = 16 * 1024;
constexpr size_t kMaxBufferedWhileRunning = 1 << 20;  // pipelined bytes held while a request runs
constexpr auto kLingerTime = std::chrono::seconds(2);

std::chrono::steady_clock::duration Seconds(double s) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(s));
}

std::string Chunk(std::string_view data) {
  std::string out = StrFormat("%zx\r\n", data.size());
  out.append(data.data(), data.size());
  out += "\r\n";
  return out;
}

const char* EndpointName(Endpoint e) {
  switch (e) {
    case Endpoint::kHealth:
      return "/health";
    case Endpoint::kMetrics:
      return "/metrics";
    case Endpoint::kModels:
      return "/v1/models";
    case Endpoint::kCompletions:
      return "/v1/completions";
    case Endpoint::kChat:
      return "/v1/chat/completions";
  }
  return "?";
}

}  // namespace

std::string HttpOverloadReply(int max_connections) {
  const std::string body = ApiErrorBody(Status::ResourceExhausted(
      StrFormat("too many connections (limit %d); retry later", max_connections)));
  return StrFormat(
             "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nRetry-After: 1\r\nConnection: close\r\n\r\n",
             body.size()) +
         body;
}

class HttpConnection : public std::enable_shared_from_this<HttpConnection>,
                       private QueuedWrites<HttpConnection> {
  friend class QueuedWrites<HttpConnection>;

 public:
  HttpConnection(tcp::socket socket, ServiceCore& core)
      : socket_(std::move(socket)),
        core_(core),
        read_timer_(socket_.get_executor()),
        write_timer_(socket_.get_executor()) {
    peer_ = PeerAddress(socket_);
  }

  ~HttpConnection() {
    SettleReplies();
    core_.CloseConnection(Protocol::kHttp);
  }

  void Start() {
    SIEVE_LOG_DEBUG("http connection", "peer=%s", peer_.c_str());
    BeginExchange();
    DoRead();
  }

  // ---- Engine events (on the strand) ----

  void OnEngineAccepted(const std::string& id) {
    if (!Current(id) || !api_.stream) return;
    SendStreamHead();
    if (api_.kind == ApiKind::kChat) {
      QueueStream(SseData(StreamRoleChunk(id, core_.router().model_name, created_)));
    }
  }

  void OnEngineProgress(const std::string& id, int done, int total) {
    if (!Current(id) || !api_.stream || !stream_head_sent_) return;
    QueueStream(SseComment(StrFormat("progress %d/%d chunks prefilled", done, total)));
  }

  void OnEngineText(const std::string& id, const std::string& piece) {
    if (!Current(id) || !api_.stream || !stream_head_sent_) return;
    QueueStream(
        SseData(StreamTextChunk(api_.kind, id, core_.router().model_name, created_, piece)));
  }

  void OnEngineResponse(const std::string& id, const proto::GenerateResponse& response) {
    if (!Current(id)) return;
    LogDone(200);
    if (api_.stream && stream_head_sent_) {
      QueueStream(SseData(StreamFinalChunk(api_.kind, response, created_)));
      if (api_.include_usage) QueueStream(SseData(StreamUsageChunk(api_.kind, response, created_)));
      EndStream();
      return;
    }
    HttpReply reply;
    reply.body = CompletionBody(api_.kind, response, created_);
    Reply(std::move(reply), !keep_alive_);
  }

  void OnEngineError(const std::string& id, const Status& status) {
    if (!Current(id)) return;
    LogDone(HttpStatusFor(status.code()));
    if (api_.stream && stream_head_sent_) {
      QueueStream(SseData(ApiErrorBody(status, id)));
      EndStream();
      return;
    }
    Reply(ErrorReply(status, id), !keep_alive_);
  }

 private:
  enum class Phase { kHead, kBody, kRunning, kReplying, kClosed };

  bool Current(const std::string& id) const {
    return !closed_ && phase_ == Phase::kRunning && id == request_id_;
  }

  // ---- Reading ----

  void BeginExchange() {
    phase_ = Phase::kHead;
    request_id_.clear();
    api_ = ApiRequest{};
    stream_head_sent_ = false;
    exchange_bytes_ = inbuf_.size();
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(static_cast<uint64_t>(core_.options().limits.max_body_bytes));
    parser_->eager(true);
    ArmReadTimer(Seconds(core_.options().read_timeout_s));
  }

  void DoRead() {
    if (closed_ || reading_) return;
    if (phase_ == Phase::kRunning && inbuf_.size() > kMaxBufferedWhileRunning) return;
    reading_ = true;
    socket_.async_read_some(
        asio::buffer(readbuf_),
        [self = shared_from_this()](error_code ec, size_t n) { self->OnRead(ec, n); });
  }

  void OnRead(error_code ec, size_t n) {
    reading_ = false;
    if (closed_) return;
    if (ec) {
      if (lingering_) return Close("closed after reply");
      if (phase_ == Phase::kRunning) return Close("client disconnected while its request ran");
      if (ec == asio::error::operation_aborted) return;
      return Close(exchange_bytes_ > 0 ? "client closed mid-request" : "client closed");
    }
    if (lingering_) return DoRead();  // discard what a refused client still sends
    inbuf_.append(readbuf_.data(), n);
    exchange_bytes_ += n;
    if (phase_ == Phase::kHead || phase_ == Phase::kBody) Parse();
    DoRead();
  }

  void Parse() {
    while ((phase_ == Phase::kHead || phase_ == Phase::kBody) && !closed_) {
      error_code ec;
      const size_t used = inbuf_.empty() ? 0 : parser_->put(asio::buffer(inbuf_), ec);
      inbuf_.erase(0, used);
      if (ec == http::error::need_more) ec = {};
      if (ec) return BadRequest(ec);
      if (phase_ == Phase::kHead && parser_->is_header_done()) {
        OnHead();
        if (phase_ != Phase::kBody) return;
      }
      if (parser_->is_done()) return OnRequest();
      if (used == 0) return;  // need more bytes
    }
  }

  void BadRequest(error_code ec) {
    Status status = Status::InvalidArgument("malformed HTTP request: " + ec.message());
    int code = 400;
    if (ec == http::error::body_limit) {
      status = Status::PayloadTooLarge(
          StrFormat("request body exceeds the limit of %lld bytes",
                    static_cast<long long>(core_.options().limits.max_body_bytes)));
      code = 413;
    } else if (ec == http::error::header_limit) {
      status = Status::InvalidArgument(
          StrFormat("request header fields exceed %zu bytes", kHeaderLimit));
      code = 431;
    }
    core_.metrics().RecordError(status);
    HttpReply reply = ErrorReply(status);
    reply.status = code;
    phase_ = Phase::kRunning;  // so Reply() knows an exchange is being answered
    Reply(std::move(reply), /*close=*/true);
  }

  void OnHead() {
    const auto& req = parser_->get();
    const HttpHead head = HeadOf(*parser_);
    head_method_ = req.method() == http::verb::head;
    version_ = req.version();
    target_ = std::string(head.target.substr(0, std::min<size_t>(head.target.size(), 200)));
    auto routed = RouteHead(head, core_.router());
    if (auto* reply = std::get_if<HttpReply>(&routed)) {
      if (reply->status == 401) {
        core_.metrics().RecordOutcome(Outcome::kUnauthenticated);
      } else if (reply->status == 413) {
        core_.metrics().RecordOutcome(Outcome::kTooLarge);
      }
      phase_ = Phase::kRunning;
      SIEVE_LOG_INFO("http request", "peer=%s target=%s status=%d", peer_.c_str(), target_.c_str(),
                     reply->status);
      // The body was not read: the connection cannot carry another request.
      return Reply(std::move(*reply), /*close=*/true);
    }
    endpoint_ = std::get<Endpoint>(routed);
    phase_ = Phase::kBody;
    if (auto it = req.find(http::field::expect); it != req.end() && version_ >= 11) {
      const std::string_view v(it->value().data(), it->value().size());
      if (v.size() == 12 && (v[0] == '1') && v.substr(1) == "00-continue") {
        QueueWrite("HTTP/1.1 100 Continue\r\n\r\n");
      }
    }
  }

  void OnRequest() {
    read_timer_.cancel();
    phase_ = Phase::kRunning;
    start_ = std::chrono::steady_clock::now();
    keep_alive_ = parser_->get().keep_alive();
    std::string body = std::move(parser_->get().body());
    auto routed = RouteBody(endpoint_, body, core_.router());
    if (auto* reply = std::get_if<HttpReply>(&routed)) {
      if (endpoint_ == Endpoint::kCompletions || endpoint_ == Endpoint::kChat) {
        // A bad request: counted here, it never reaches the engine.
        core_.metrics().RecordOutcome(reply->status == 413 ? Outcome::kTooLarge
                                                           : Outcome::kInvalid);
        SIEVE_LOG_INFO("http request", "peer=%s target=%s status=%d", peer_.c_str(),
                       target_.c_str(), reply->status);
      }
      return Reply(std::move(*reply), !keep_alive_);
    }
    api_ = std::move(std::get<ApiRequest>(routed));
    if (api_.request.request_id().empty()) {
      api_.request.set_request_id(
          core_.NewRequestId(api_.kind == ApiKind::kChat ? "chatcmpl" : "cmpl"));
    }
    request_id_ = api_.request.request_id();
    created_ = static_cast<int64_t>(std::time(nullptr));
    owes_reply_ = true;
    OweReply();
    SIEVE_LOG_DEBUG("http request submitted", "peer=%s id=%s endpoint=%s stream=%d", peer_.c_str(),
                    request_id_.c_str(), EndpointName(endpoint_), api_.stream);
    auto sink = std::make_shared<PostingSink<HttpConnection>>(weak_from_this(),
                                                              socket_.get_executor(), request_id_);
    core_.Submit(api_.request, std::move(sink), this);
  }

  void LogDone(int status) {
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    SIEVE_LOG_INFO("http request", "peer=%s target=%s id=%s status=%d stream=%d seconds=%.3f",
                   peer_.c_str(), target_.c_str(), request_id_.c_str(), status, api_.stream, s);
  }

  // ---- Replying ----

  void Reply(HttpReply reply, bool close) {
    http::response<http::string_body> res{static_cast<http::status>(reply.status),
                                          version_ >= 11 ? 11u : 10u};
    res.set(http::field::server, "sieve");
    res.set(http::field::content_type, reply.content_type);
    for (auto& [name, value] : reply.headers) res.set(name, value);
    if (!request_id_.empty()) res.set("X-Request-Id", request_id_);
    if (version_ < 11 && !close) res.set(http::field::connection, "keep-alive");
    res.keep_alive(!close);
    res.body() = std::move(reply.body);
    res.prepare_payload();
    if (head_method_) res.body().clear();  // HEAD: the headers of the GET reply
    std::ostringstream os;
    if (head_method_) {
      os << res.base();
    } else {
      os << res;
    }
    QueueWrite(os.str());
    FinishExchange(close);
  }

  void SendStreamHead() {
    http::response<http::empty_body> res{http::status::ok, version_ >= 11 ? 11u : 10u};
    res.set(http::field::server, "sieve");
    res.set(http::field::content_type, "text/event-stream");
    res.set(http::field::cache_control, "no-cache");
    res.set("X-Request-Id", request_id_);
    chunked_ = version_ >= 11;
    if (chunked_) {
      res.chunked(true);
      res.keep_alive(keep_alive_);
    } else {
      res.keep_alive(false);  // HTTP/1.0: the stream ends when the connection does
      keep_alive_ = false;
    }
    std::ostringstream os;
    os << res.base();
    QueueWrite(os.str());
    stream_head_sent_ = true;
  }

  void QueueStream(std::string event) { QueueWrite(chunked_ ? Chunk(event) : std::move(event)); }

  void EndStream() {
    QueueStream(std::string(kSseDone));
    if (chunked_) QueueWrite("0\r\n\r\n");
    FinishExchange(!keep_alive_);
  }

  // The exchange's reply is queued: the next request, or close once it is written.
  void FinishExchange(bool close) {
    request_id_.clear();
    // The engine's reply is owed until its last bytes are written (counted down in OnWrite, or
    // by the destructor when the connection goes first).
    if (owes_reply_) MarkLastFinal();
    owes_reply_ = false;
    if (close) {
      close_after_write_ = true;
      phase_ = Phase::kReplying;
      if (!writing()) LingeringClose();
      return;
    }
    BeginExchange();
    Parse();  // pipelined bytes
    DoRead();
  }

  void QueueWrite(std::string bytes) { QueueBytes(std::move(bytes)); }

  // QueuedWrites: everything queued is on the wire.
  void OnWritesDrained() {
    if (close_after_write_) LingeringClose();
  }

  // Half-close, then read what the client still sends for a moment, so it sees our reply
  // instead of a reset.
  void LingeringClose() {
    if (closed_ || lingering_) return;
    lingering_ = true;
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    ArmReadTimer(kLingerTime);
    DoRead();
  }

  // ---- Timers and closing ----

  void ArmReadTimer(std::chrono::steady_clock::duration d) {
    read_timer_.expires_after(d);
    read_timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) self->OnReadTimeout();
    });
  }

  void OnReadTimeout() {
    if (closed_) return;
    if (lingering_) return Close("linger over");
    if (phase_ != Phase::kHead && phase_ != Phase::kBody) return;
    if (exchange_bytes_ == 0) return Close("idle timeout");
    const Status status = Status::DeadlineExceeded(StrFormat(
        "read timeout: the request did not arrive within %g s", core_.options().read_timeout_s));
    core_.metrics().RecordError(status);
    SIEVE_LOG_INFO("http read timeout", "peer=%s bytes=%zu", peer_.c_str(), exchange_bytes_);
    HttpReply reply = ErrorReply(status);
    reply.status = 408;
    phase_ = Phase::kRunning;
    Reply(std::move(reply), /*close=*/true);
  }

  void Close(const std::string& why) {
    if (closed_) return;
    closed_ = true;
    SIEVE_LOG_DEBUG("http connection closed", "peer=%s why=\"%s\"", peer_.c_str(), why.c_str());
    if (phase_ == Phase::kRunning && !request_id_.empty()) {
      SIEVE_LOG_INFO("client gone: cancelling its request", "peer=%s id=%s why=\"%s\"",
                     peer_.c_str(), request_id_.c_str(), why.c_str());
      core_.Cancel(request_id_, this);
    }
    phase_ = Phase::kClosed;
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
  std::string peer_;
  std::array<char, kReadChunk> readbuf_;
  std::string inbuf_;  // received, not yet given to the parser
  std::optional<http::request_parser<http::string_body>> parser_;
  Phase phase_ = Phase::kHead;
  Endpoint endpoint_ = Endpoint::kHealth;
  unsigned version_ = 11;
  bool head_method_ = false;
  bool keep_alive_ = true;
  std::string target_;
  size_t exchange_bytes_ = 0;
  bool reading_ = false;
  bool closed_ = false;
  bool lingering_ = false;
  // The request running on this connection.
  ApiRequest api_;
  std::string request_id_;
  int64_t created_ = 0;
  std::chrono::steady_clock::time_point start_;
  bool stream_head_sent_ = false;
  bool chunked_ = false;
  bool owes_reply_ = false;  // this exchange went to the engine
  bool close_after_write_ = false;
};

void StartHttpConnection(tcp::socket socket, ServiceCore& core) {
  std::make_shared<HttpConnection>(std::move(socket), core)->Start();
}

}  // namespace sieve::coordinator
