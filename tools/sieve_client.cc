// sieve-client: submits a document and a query to a running Sieve service, streams the answer to
// the terminal, then prints the accounting.
//
//   sieve-client [--host H] [--port P | --url http://H:P] [--native] --document FILE|-
//                --query TEXT [--json] [--quiet] [--max-new-tokens N] [--api-key-file F]
//                [--request-json FILE] [--model NAME] [--request-id ID] [--temperature T]
//                [--top-p P] [--top-k K] [--seed S] [--stop TEXT] [--mode M] [--chunk-tokens N]
//                [--keep-chunks N] [--kv-capacity N] [--deadline-s S] [--explain]
//                [--timeout-s S]
//
// HTTP (default, port 8080): POST /v1/completions with "stream": true, reading the server-sent
// events (coordinator/openai_api.h). --native (port 8081): the length-prefixed protobuf protocol
// (coordinator/native_protocol.h). --request-json gives a whole request object (sieve-run's
// format); --document / --query and the option flags fill or override its fields. The request is
// checked locally first (coordinator/request_parser.h), so a bad field fails before connecting.
//
// Output: the answer on stdout as it is generated, then the accounting table (stdout); progress of
// the prefill on stderr. --json prints only sieve-run's response JSON on stdout. --quiet drops the
// progress and the table.
//
// Exit codes (one per class of error; the message goes to stderr):
//   0 ok
//   2 bad request: a 4xx validation error (400, 404, 405, 431), or bad usage of sieve-client
//   3 authentication: 401 (missing or wrong API key)
//   4 rejected: 429 (overloaded, admission) or 413 (too large)
//   5 server error: 5xx, 504 deadline, 408, cancelled, an error event after the stream began
//   6 connection failure: cannot connect, connection lost, timeout, malformed reply
//
// Tested by tests/cli/service_test.sh.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <optional>
#include <string>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "coordinator/api_key.h"
#include "coordinator/native_protocol.h"
#include "coordinator/request_parser.h"
#include "coordinator/response_json.h"
#include "tools/cli.h"

namespace sieve::tools {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr int kOk = 0;
constexpr int kBadRequest = 2;
constexpr int kAuth = 3;
constexpr int kRejected = 4;
constexpr int kServer = 5;
constexpr int kConnection = 6;

constexpr const char* kUsage =
    "usage: sieve-client [--host H] [--port P | --url http://H:P] [--native]\n"
    "                    --document FILE|- --query TEXT [--json] [--quiet]\n"
    "                    [--max-new-tokens N] [--api-key-file F] [--request-json FILE]\n"
    "                    [--model NAME] [--request-id ID] [--temperature T] [--top-p P]\n"
    "                    [--top-k K] [--seed S] [--stop TEXT] [--mode M] [--chunk-tokens N]\n"
    "                    [--keep-chunks N] [--kv-capacity N] [--deadline-s S] [--explain]\n"
    "                    [--timeout-s S]\n"
    "exit codes: 0 ok, 2 bad request, 3 authentication, 4 rejected (429/413), 5 server error,\n"
    "            6 connection failure\n";

int ExitForHttp(int status) {
  if (status == 401) return kAuth;
  if (status == 429 || status == 413) return kRejected;
  if (status == 408 || status == 499 || status >= 500) return kServer;
  if (status >= 400) return kBadRequest;
  return kServer;
}

int ExitForCode(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return kOk;
    case StatusCode::kUnauthenticated:
      return kAuth;
    case StatusCode::kResourceExhausted:
    case StatusCode::kPayloadTooLarge:
      return kRejected;
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kOutOfRange:
    case StatusCode::kUnimplemented:
      return kBadRequest;
    default:
      return kServer;
  }
}

StatusCode CodeFromName(std::string_view name) {
  for (StatusCode c :
       {StatusCode::kCancelled, StatusCode::kInvalidArgument, StatusCode::kDeadlineExceeded,
        StatusCode::kNotFound, StatusCode::kFailedPrecondition, StatusCode::kOutOfRange,
        StatusCode::kUnimplemented, StatusCode::kInternal, StatusCode::kUnavailable,
        StatusCode::kDataLoss, StatusCode::kUnauthenticated, StatusCode::kResourceExhausted,
        StatusCode::kPayloadTooLarge}) {
    if (StatusCodeName(c) == name) return c;
  }
  return StatusCode::kInternal;
}

struct Outcome {
  int exit = kOk;
  std::string message;                   // for errors
  std::optional<json::object> response;  // sieve-run's response object on success
};

Outcome Fail(int exit, std::string message) { return Outcome{exit, std::move(message), {}}; }

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  bool native = false;
  bool json = false;
  bool quiet = false;
  std::string api_key;
  double timeout_s = 3600;
};

// ---- Progress and output ----

class Terminal {
 public:
  explicit Terminal(const Options& o) : o_(o), tty_(isatty(fileno(stderr))) {}
  void Accepted(const std::string& id) {
    if (!o_.quiet) Status("accepted as " + id);
  }
  void Progress(int done, int total) {
    if (!o_.quiet) Status(StrFormat("prefill: %d/%d chunks", done, total));
  }
  void Text(const std::string& piece) {
    if (o_.json) return;
    EndStatus();
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    wrote_text_ = true;
  }
  void EndStatus() {
    if (status_open_) {
      std::fputc('\n', stderr);
      status_open_ = false;
    }
  }
  bool wrote_text() const { return wrote_text_; }

 private:
  void Status(const std::string& line) {
    if (tty_) {
      std::fprintf(stderr, "\r\033[K[sieve-client] %s", line.c_str());
      status_open_ = true;
    } else {
      std::fprintf(stderr, "[sieve-client] %s\n", line.c_str());
    }
    std::fflush(stderr);
  }
  const Options& o_;
  bool tty_;
  bool status_open_ = false;
  bool wrote_text_ = false;
};

double Num(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_double()) return v->as_double();
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  if (v->is_uint64()) return static_cast<double>(v->as_uint64());
  return 0;
}

std::string Str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

void PrintTable(const json::object& r) {
  const json::object empty;
  const json::value* acc_v = r.if_contains("accounting");
  const json::object& a = acc_v && acc_v->is_object() ? acc_v->as_object() : empty;
  const json::value* kv_v = a.if_contains("kv");
  const json::object& kv = kv_v && kv_v->is_object() ? kv_v->as_object() : empty;
  const json::value* t_v = a.if_contains("timing");
  const json::object& t = t_v && t_v->is_object() ? t_v->as_object() : empty;
  int chunks = 0;
  if (const json::value* c = a.if_contains("chunks"); c && c->is_array()) {
    chunks = static_cast<int>(c->as_array().size());
  }
  std::string kept;
  size_t kept_count = 0;
  if (const json::value* k = a.if_contains("kept_chunks"); k && k->is_array()) {
    kept = json::serialize(*k);
    kept_count = k->as_array().size();
  }
  const double mib = 1048576.0;
  std::printf("\n");
  std::printf("%-12s %s (model %s, %s, %.0f worker(s))\n", "request", Str(r, "request_id").c_str(),
              Str(r, "model").c_str(), Str(a, "device").c_str(), Num(a, "workers"));
  std::printf("%-12s document %.0f, query %.0f, generated %.0f (finish: %s)\n", "tokens",
              Num(a, "document_tokens"), Num(a, "query_tokens"), Num(a, "generated_tokens"),
              Str(r, "finish_reason").c_str());
  std::printf("%-12s kept %zu of %d %s, p0 %.0f\n", "chunks", kept_count, chunks, kept.c_str(),
              Num(a, "p0"));
  std::printf("%-12s %.0f of %.0f entries kept (%.1f%%), %.2f of %.2f MiB; %.2f MiB moved\n",
              "KV cache", Num(kv, "entries_kept"), Num(kv, "entries_full"),
              100.0 * Num(kv, "kept_fraction"), Num(kv, "bytes_kept") / mib,
              Num(kv, "bytes_full") / mib, Num(kv, "bytes_moved") / mib);
  std::printf(
      "%-12s tokenize %.3f  prefill %.3f  score exchange %.3f  KV transfer %.3f"
      " (%.2f GB/s)\n",
      "timing (s)", Num(t, "tokenize_s"), Num(t, "prefill_s"), Num(t, "score_exchange_s"),
      Num(t, "kv_transfer_s"), Num(t, "kv_transfer_gbps"));
  std::printf(
      "%-12s assemble %.3f  query prefill %.3f  decode %.3f  first token %.3f"
      "  total %.3f\n",
      "", Num(t, "assemble_s"), Num(t, "query_prefill_s"), Num(t, "decode_s"), Num(t, "ttft_s"),
      Num(t, "total_s"));
  std::printf("%-12s %.1f tokens/s\n", "decode", Num(t, "decode_tokens_per_s"));
}

// ---- Bounded synchronous I/O: each operation gets the timeout, after which the socket closes ----

class Channel {
 public:
  explicit Channel(double timeout_s) : socket_(ioc_), timeout_s_(timeout_s) {}

  error_code Connect(const std::string& host, int port) {
    tcp::resolver resolver(ioc_);
    error_code ec;
    auto endpoints = resolver.resolve(host, std::to_string(port), ec);
    if (ec) return ec;
    return Run([&](auto done) { asio::async_connect(socket_, endpoints, done); });
  }

  template <typename Start>
  error_code Run(Start start) {
    error_code result = asio::error::would_block;
    bool finished = false;
    start([&](error_code ec, auto&&...) {
      result = ec;
      finished = true;
    });
    ioc_.restart();
    if (timeout_s_ > 0) {
      ioc_.run_for(std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::duration<double>(timeout_s_)));
    } else {
      ioc_.run();
    }
    if (!finished) {
      error_code ignored;
      socket_.close(ignored);
      ioc_.restart();
      ioc_.run();
      return asio::error::timed_out;
    }
    return result;
  }

  tcp::socket& socket() { return socket_; }

 private:
  asio::io_context ioc_;
  tcp::socket socket_;
  double timeout_s_;
};

std::string ConnectionError(const Options& o, const char* what, error_code ec) {
  return StrFormat("%s %s:%d: %s", what, o.host.c_str(), o.port, ec.message().c_str());
}

// ---- HTTP ----

// Splits a server-sent-event stream into data payloads and comments.
class SseReader {
 public:
  std::function<void(const std::string&)> on_data;
  std::function<void(const std::string&)> on_comment;
  void Feed(std::string_view bytes) {
    buffer_.append(bytes.data(), bytes.size());
    size_t nl;
    while ((nl = buffer_.find('\n')) != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) {
        if (!data_.empty()) on_data(data_);
        data_.clear();
      } else if (line[0] == ':') {
        on_comment(line.size() > 1 && line[1] == ' ' ? line.substr(2) : line.substr(1));
      } else if (line.rfind("data:", 0) == 0) {
        std::string d = line.substr(5);
        if (!d.empty() && d[0] == ' ') d.erase(0, 1);
        if (!data_.empty()) data_ += '\n';
        data_ += d;
      }
    }
  }

 private:
  std::string buffer_;
  std::string data_;
};

Outcome ErrorFromBody(int status, const std::string& body) {
  error_code ec;
  json::value v = json::parse(body, ec);
  std::string message = body.substr(0, 500);
  if (!ec && v.is_object()) {
    if (const json::value* e = v.as_object().if_contains("error"); e && e->is_object()) {
      message = Str(e->as_object(), "code") + ": " + Str(e->as_object(), "message");
    }
  }
  return Fail(ExitForHttp(status), StrFormat("HTTP %d: %s", status, message.c_str()));
}

Outcome RunHttp(const Options& o, json::object request, Terminal& term) {
  request["stream"] = true;
  Channel ch(o.timeout_s);
  if (error_code ec = ch.Connect(o.host, o.port)) {
    return Fail(kConnection, ConnectionError(o, "cannot connect to", ec));
  }
  http::request<http::string_body> req{http::verb::post, "/v1/completions", 11};
  req.set(http::field::host, o.host);
  req.set(http::field::content_type, "application/json");
  req.set(http::field::accept, "text/event-stream");
  req.set(http::field::user_agent, "sieve-client");
  if (!o.api_key.empty()) req.set(http::field::authorization, "Bearer " + o.api_key);
  req.body() = json::serialize(request);
  req.prepare_payload();
  if (error_code ec = ch.Run([&](auto done) { http::async_write(ch.socket(), req, done); })) {
    return Fail(kConnection, ConnectionError(o, "cannot send to", ec));
  }
  boost::beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  if (error_code ec =
          ch.Run([&](auto done) { http::async_read_header(ch.socket(), buffer, parser, done); })) {
    return Fail(kConnection, ConnectionError(o, "no reply from", ec));
  }
  const int status = parser.get().result_int();
  const bool events = parser.get()[http::field::content_type].starts_with("text/event-stream");
  Outcome outcome;
  bool finished = false;
  std::string plain;  // a non-stream body (errors)
  SseReader sse;
  sse.on_comment = [&](const std::string& c) {
    int done = 0, total = 0;
    if (std::sscanf(c.c_str(), "progress %d/%d", &done, &total) == 2) term.Progress(done, total);
  };
  sse.on_data = [&](const std::string& data) {
    if (finished) return;
    if (data == "[DONE]") {
      finished = true;
      return;
    }
    error_code ec;
    json::value v = json::parse(data, ec);
    if (ec || !v.is_object()) {
      outcome = Fail(kConnection, "malformed event from the service: " + data.substr(0, 200));
      finished = true;
      return;
    }
    const json::object& chunk = v.as_object();
    if (const json::value* e = chunk.if_contains("error"); e && e->is_object()) {
      const json::object& err = e->as_object();
      outcome = Fail(ExitForCode(CodeFromName(Str(err, "code"))),
                     Str(err, "code") + ": " + Str(err, "message"));
      finished = true;
      return;
    }
    if (const json::value* c = chunk.if_contains("choices");
        c && c->is_array() && !c->as_array().empty()) {
      const json::value& choice = c->as_array()[0];
      if (choice.is_object()) {
        const std::string text = Str(choice.as_object(), "text");
        if (!text.empty()) term.Text(text);
      }
    }
    if (const json::value* s = chunk.if_contains("sieve"); s && s->is_object()) {
      outcome.response = s->as_object();
    }
  };
  char block[16384];
  while (!parser.is_done()) {
    parser.get().body().data = block;
    parser.get().body().size = sizeof(block);
    error_code ec = ch.Run([&](auto done) { http::async_read(ch.socket(), buffer, parser, done); });
    if (ec == http::error::need_buffer) ec = {};
    const size_t n = sizeof(block) - parser.get().body().size;
    if (events && status == 200) {
      sse.Feed(std::string_view(block, n));
    } else {
      plain.append(block, n);
    }
    if (ec) {
      if (finished && outcome.exit != kOk) break;
      return Fail(kConnection, ConnectionError(o, "connection lost with", ec));
    }
    if (finished && outcome.exit != kOk) break;
  }
  if (status != 200 || !events) return ErrorFromBody(status, plain);
  if (outcome.exit != kOk) return outcome;
  if (!outcome.response) return Fail(kConnection, "the stream ended without a response");
  return outcome;
}

// ---- Native protocol ----

Outcome RunNative(const Options& o, const json::object& request_json, Terminal& term) {
  auto request = coordinator::ParseGenerateRequest(json::serialize(request_json));
  if (!request.ok()) return Fail(kBadRequest, request.status().ToString());
  request->set_stream(true);
  proto::ClientMessage message;
  message.set_tag(1);
  message.set_api_key(o.api_key);
  *message.mutable_submit() = std::move(request).value();
  Channel ch(o.timeout_s);
  if (error_code ec = ch.Connect(o.host, o.port)) {
    return Fail(kConnection, ConnectionError(o, "cannot connect to", ec));
  }
  const std::string frame = coordinator::EncodeFrame(message);
  if (error_code ec =
          ch.Run([&](auto done) { asio::async_write(ch.socket(), asio::buffer(frame), done); })) {
    return Fail(kConnection, ConnectionError(o, "cannot send to", ec));
  }
  coordinator::FrameDecoder decoder(size_t{1} << 31);
  char block[65536];
  while (true) {
    size_t got = 0;
    error_code ec = ch.Run([&](auto done) {
      ch.socket().async_read_some(asio::buffer(block), [&, done](error_code e, size_t n) mutable {
        got = n;
        done(e, n);
      });
    });
    if (ec) return Fail(kConnection, ConnectionError(o, "connection lost with", ec));
    decoder.Feed(std::string_view(block, got));
    while (true) {
      auto payload = decoder.Next();
      if (!payload.ok()) return Fail(kConnection, payload.status().ToString());
      if (!payload->has_value()) break;
      auto event = coordinator::ParseServerEvent(**payload);
      if (!event.ok()) return Fail(kConnection, "malformed event: " + event.status().ToString());
      switch (event->event_case()) {
        case proto::ServerEvent::kAccepted:
          term.Accepted(event->request_id());
          break;
        case proto::ServerEvent::kProgress:
          term.Progress(event->progress().chunks_done(), event->progress().chunks_total());
          break;
        case proto::ServerEvent::kToken:
          term.Text(event->token().text());
          break;
        case proto::ServerEvent::kResponse: {
          Outcome out;
          out.response = coordinator::ResponseToJsonObject(event->response());
          return out;
        }
        case proto::ServerEvent::kError: {
          const Status s = coordinator::StatusFromError(event->error());
          return Fail(ExitForCode(s.code()), s.ToString());
        }
        default:
          break;
      }
    }
  }
}

// ---- The request from the flags ----

StatusOr<json::object> BuildRequest(const Args& args) {
  json::object request;
  if (auto file = args.Get("request-json")) {
    SIEVE_ASSIGN_OR_RETURN(std::string text, ReadInput(*file));
    SIEVE_ASSIGN_OR_RETURN(json::value v, coordinator::ParseJson(text));
    if (!v.is_object()) return Status::InvalidArgument("--request-json: expected a JSON object");
    request = std::move(v.as_object());
  }
  if (auto doc = args.Get("document")) {
    SIEVE_ASSIGN_OR_RETURN(std::string text, ReadInput(*doc));
    request.erase("document_ids");
    request["document"] = std::move(text);
  }
  if (auto query = args.Get("query")) {
    request.erase("query_ids");
    request["query"] = *query;
  }
  if (!request.contains("document") && !request.contains("document_ids")) {
    return Status::InvalidArgument("--document FILE|- is required (or a --request-json with one)");
  }
  if (!request.contains("query") && !request.contains("query_ids")) {
    return Status::InvalidArgument("--query TEXT is required (or a --request-json with one)");
  }
  auto set_int = [&](const char* flag, const char* field, json::object& into) -> Status {
    SIEVE_ASSIGN_OR_RETURN(auto v, args.GetInt(flag));
    if (v) into[field] = *v;
    return Status::Ok();
  };
  auto set_number = [&](const char* flag, const char* field, json::object& into) -> Status {
    if (auto v = args.Get(flag)) {
      char* end = nullptr;
      const double x = std::strtod(v->c_str(), &end);
      if (v->empty() || *end != '\0') {
        return Status::InvalidArgument(
            StrFormat("--%s: expected a number, got '%s'", flag, v->c_str()));
      }
      into[field] = x;
    }
    return Status::Ok();
  };
  SIEVE_RETURN_IF_ERROR(set_int("max-new-tokens", "max_new_tokens", request));
  SIEVE_RETURN_IF_ERROR(set_number("temperature", "temperature", request));
  SIEVE_RETURN_IF_ERROR(set_number("top-p", "top_p", request));
  SIEVE_RETURN_IF_ERROR(set_int("top-k", "top_k", request));
  SIEVE_RETURN_IF_ERROR(set_int("seed", "seed", request));
  SIEVE_RETURN_IF_ERROR(set_number("deadline-s", "deadline_seconds", request));
  if (auto stop = args.Get("stop")) request["stop"] = json::array{json::string(*stop)};
  if (auto model = args.Get("model")) request["model"] = *model;
  if (auto id = args.Get("request-id")) request["request_id"] = *id;
  if (args.Has("explain")) request["explain"] = true;
  json::object sieve;
  if (const json::value* s = request.if_contains("sieve"); s && s->is_object())
    sieve = s->as_object();
  if (auto mode = args.Get("mode")) sieve["mode"] = *mode;
  SIEVE_RETURN_IF_ERROR(set_int("chunk-tokens", "chunk_tokens", sieve));
  SIEVE_RETURN_IF_ERROR(set_int("keep-chunks", "keep_chunks", sieve));
  SIEVE_RETURN_IF_ERROR(set_int("kv-capacity", "kv_capacity", sieve));
  if (!sieve.empty()) request["sieve"] = std::move(sieve);
  // Checked here so a bad field fails before connecting, with the parser's message.
  SIEVE_RETURN_IF_ERROR(coordinator::ParseGenerateRequest(json::serialize(request)).status());
  return request;
}

StatusOr<Options> ReadOptions(const Args& args) {
  Options o;
  o.native = args.Has("native");
  o.json = args.Has("json");
  o.quiet = args.Has("quiet");
  o.host = args.GetOr("host", o.host);
  o.port = o.native ? 8081 : 8080;
  if (auto url = args.Get("url")) {
    std::string rest = *url;
    if (rest.rfind("http://", 0) == 0)
      rest = rest.substr(7);
    else if (rest.rfind("sieve://", 0) == 0)
      rest = rest.substr(8);
    rest = rest.substr(0, rest.find('/'));
    const size_t colon = rest.rfind(':');
    if (colon == std::string::npos || rest.empty()) {
      return Status::InvalidArgument("--url: expected http://HOST:PORT, got '" + *url + "'");
    }
    o.host = rest.substr(0, colon);
    if (o.host.size() > 2 && o.host.front() == '[') o.host = o.host.substr(1, o.host.size() - 2);
    char* end = nullptr;
    o.port = static_cast<int>(std::strtol(rest.c_str() + colon + 1, &end, 10));
    if (*end != '\0' || o.port <= 0 || o.port > 65535) {
      return Status::InvalidArgument("--url: bad port in '" + *url + "'");
    }
  }
  SIEVE_ASSIGN_OR_RETURN(auto port, args.GetInt("port"));
  if (port) {
    if (*port <= 0 || *port > 65535)
      return Status::InvalidArgument("--port: must be in [1, 65535]");
    o.port = static_cast<int>(*port);
  }
  if (auto file = args.Get("api-key-file")) {
    SIEVE_ASSIGN_OR_RETURN(o.api_key, coordinator::LoadApiKeyFile(*file));
  }
  if (auto t = args.Get("timeout-s")) {
    char* end = nullptr;
    o.timeout_s = std::strtod(t->c_str(), &end);
    if (t->empty() || *end != '\0' || !(o.timeout_s >= 0)) {
      return Status::InvalidArgument("--timeout-s: expected a number >= 0 (0: wait forever)");
    }
  }
  return o;
}

int Main(int argc, char** argv) {
  auto args = Args::Parse(argc, argv, {"help", "native", "json", "quiet", "explain"});
  if (!args.ok()) {
    std::fprintf(stderr, "sieve-client: %s\n%s", args.status().message().c_str(), kUsage);
    return kBadRequest;
  }
  if (args->Has("help")) {
    std::fprintf(stderr, "%s", kUsage);
    return kOk;
  }
  if (Status s = args->CheckKnown({"help",         "native",       "json",           "quiet",
                                   "explain",      "host",         "port",           "url",
                                   "document",     "query",        "max-new-tokens", "api-key-file",
                                   "request-json", "model",        "request-id",     "temperature",
                                   "top-p",        "top-k",        "seed",           "stop",
                                   "mode",         "chunk-tokens", "keep-chunks",    "kv-capacity",
                                   "deadline-s",   "timeout-s"});
      !s.ok()) {
    std::fprintf(stderr, "sieve-client: %s\n%s", s.message().c_str(), kUsage);
    return kBadRequest;
  }
  auto options = ReadOptions(*args);
  if (!options.ok()) {
    std::fprintf(stderr, "sieve-client: %s\n", options.status().message().c_str());
    return kBadRequest;
  }
  auto request = BuildRequest(*args);
  if (!request.ok()) {
    std::fprintf(stderr, "sieve-client: %s\n", request.status().ToString().c_str());
    return kBadRequest;
  }
  Terminal term(*options);
  Outcome out =
      options->native ? RunNative(*options, *request, term) : RunHttp(*options, *request, term);
  term.EndStatus();
  if (out.exit != kOk) {
    if (term.wrote_text()) std::printf("\n");
    std::fflush(stdout);
    std::fprintf(stderr, "sieve-client: %s\n", out.message.c_str());
    return out.exit;
  }
  if (options->json) {
    std::printf("%s\n", json::serialize(*out.response).c_str());
  } else {
    if (term.wrote_text()) std::printf("\n");
    if (!options->quiet) PrintTable(*out.response);
  }
  std::fflush(stdout);
  return kOk;
}

}  // namespace
}  // namespace sieve::tools

int main(int argc, char** argv) { return sieve::tools::Main(argc, argv); }
