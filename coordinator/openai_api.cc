// OpenAI-compatible request mapping and response rendering (see openai_api.h for the mapping).
#include "coordinator/openai_api.h"

#include <boost/json.hpp>
#include <utility>
#include <vector>

#include "coordinator/response_json.h"

namespace sieve::coordinator {
namespace json = boost::json;
namespace {

// Removes `key` from `obj` and returns its value (nullptr-like empty optional when absent).
std::optional<json::value> Take(json::object& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end()) return std::nullopt;
  json::value v = std::move(it->value());
  obj.erase(it);
  return v;
}

bool IsZeroNumber(const json::value& v) {
  return (v.is_int64() && v.as_int64() == 0) || (v.is_uint64() && v.as_uint64() == 0) ||
         (v.is_double() && v.as_double() == 0.0);
}

bool IsIntegerEqual(const json::value& v, int64_t x) {
  return (v.is_int64() && v.as_int64() == x) ||
         (v.is_uint64() && x >= 0 && v.as_uint64() == static_cast<uint64_t>(x));
}

// OpenAI fields Sieve accepts only at their neutral value.
Status CheckNeutral(json::object& obj, ApiKind kind) {
  if (auto v = Take(obj, "n"); v && !v->is_null() && !IsIntegerEqual(*v, 1)) {
    return Status::InvalidArgument(StrFormat(
        "n: only 1 completion per request is supported, got %s", json::serialize(*v).c_str()));
  }
  for (const char* key : {"presence_penalty", "frequency_penalty"}) {
    if (auto v = Take(obj, key); v && !v->is_null() && !IsZeroNumber(*v)) {
      return Status::InvalidArgument(
          StrFormat("%s: not supported (only 0), got %s", key, json::serialize(*v).c_str()));
    }
  }
  if (auto v = Take(obj, "logit_bias");
      v && !v->is_null() && !(v->is_object() && v->as_object().empty())) {
    return Status::InvalidArgument("logit_bias: not supported (only null or {})");
  }
  if (auto v = Take(obj, "user"); v && !v->is_null() && !v->is_string()) {
    return Status::InvalidArgument(StrFormat("user: expected a string, got %s", JsonKindName(*v)));
  }
  if (kind == ApiKind::kCompletions) {
    if (auto v = Take(obj, "best_of"); v && !v->is_null() && !IsIntegerEqual(*v, 1)) {
      return Status::InvalidArgument("best_of: only 1 is supported");
    }
    if (auto v = Take(obj, "echo"); v && !v->is_null() && !(v->is_bool() && !v->as_bool())) {
      return Status::InvalidArgument("echo: not supported (only false)");
    }
    if (auto v = Take(obj, "suffix");
        v && !v->is_null() && !(v->is_string() && v->as_string().empty())) {
      return Status::InvalidArgument("suffix: not supported (only null or \"\")");
    }
    if (auto v = Take(obj, "logprobs"); v && !v->is_null() && !IsZeroNumber(*v)) {
      return Status::InvalidArgument("logprobs: not supported (only null or 0)");
    }
  } else {
    if (auto v = Take(obj, "logprobs"); v && !v->is_null() && !(v->is_bool() && !v->as_bool())) {
      return Status::InvalidArgument("logprobs: not supported (only null or false)");
    }
    if (auto v = Take(obj, "top_logprobs"); v && !v->is_null()) {
      return Status::InvalidArgument("top_logprobs: not supported (only null)");
    }
    if (auto v = Take(obj, "response_format"); v && !v->is_null()) {
      const bool text = v->is_object() && v->as_object().size() == 1 &&
                        v->as_object().contains("type") && v->as_object().at("type") == "text";
      if (!text) {
        return Status::InvalidArgument("response_format: only {\"type\": \"text\"} is supported");
      }
    }
  }
  return Status::Ok();
}

// max_tokens (and for chat max_completion_tokens) -> max_new_tokens.
Status MapMaxTokens(json::object& obj, ApiKind kind, const RequestLimits& limits) {
  std::optional<json::value> max_tokens = Take(obj, "max_tokens");
  std::string name = "max_tokens";
  if (kind == ApiKind::kChat) {
    if (auto alt = Take(obj, "max_completion_tokens"); alt && !alt->is_null()) {
      if (max_tokens && !max_tokens->is_null()) {
        return Status::InvalidArgument(
            "max_tokens, max_completion_tokens: give one of them, not both");
      }
      max_tokens = std::move(alt);
      name = "max_completion_tokens";
    }
  }
  if (!max_tokens || max_tokens->is_null()) return Status::Ok();
  if (obj.contains("max_new_tokens")) {
    return Status::InvalidArgument(
        StrFormat("%s, max_new_tokens: give one of them, not both", name.c_str()));
  }
  int64_t x = 0;
  if (max_tokens->is_int64()) {
    x = max_tokens->as_int64();
  } else if (max_tokens->is_uint64()) {
    x = max_tokens->as_uint64() > static_cast<uint64_t>(limits.max_new_tokens)
            ? int64_t{limits.max_new_tokens} + 1
            : static_cast<int64_t>(max_tokens->as_uint64());
  } else {
    return Status::InvalidArgument(
        StrFormat("%s: expected an integer, got %s", name.c_str(), JsonKindName(*max_tokens)));
  }
  if (x < 1 || x > limits.max_new_tokens) {
    return Status::InvalidArgument(
        StrFormat("%s: must be an integer in [1, %d]", name.c_str(), limits.max_new_tokens));
  }
  obj["max_new_tokens"] = x;
  return Status::Ok();
}

// stop: a string -> [string]; stream_options.
Status MapCommon(json::object& obj, ApiKind kind, const RequestLimits& limits, ApiRequest* out) {
  SIEVE_RETURN_IF_ERROR(CheckNeutral(obj, kind));
  SIEVE_RETURN_IF_ERROR(MapMaxTokens(obj, kind, limits));
  if (auto it = obj.find("stop"); it != obj.end()) {
    if (it->value().is_string()) {
      json::array one;
      one.emplace_back(it->value().as_string());
      it->value() = std::move(one);
    }
  }
  if (auto v = Take(obj, "stream_options"); v && !v->is_null()) {
    if (!v->is_object()) {
      return Status::InvalidArgument(
          StrFormat("stream_options: expected an object, got %s", JsonKindName(*v)));
    }
    for (const auto& kv : v->as_object()) {
      if (kv.key() != "include_usage") {
        return Status::InvalidArgument(
            StrFormat("unknown field 'stream_options.%s'", std::string(kv.key()).c_str()));
      }
      if (!kv.value().is_bool()) {
        return Status::InvalidArgument(StrFormat(
            "stream_options.include_usage: expected a boolean, got %s", JsonKindName(kv.value())));
      }
      out->include_usage = kv.value().as_bool();
    }
  }
  return Status::Ok();
}

Status MapPrompt(json::object& obj) {
  std::optional<json::value> prompt = Take(obj, "prompt");
  if (!prompt || prompt->is_null()) return Status::Ok();
  if (obj.contains("document") || obj.contains("document_ids")) {
    return Status::InvalidArgument("prompt, document: give one of them, not both");
  }
  json::value p = std::move(*prompt);
  if ((p.is_string() && p.as_string().empty()) || (p.is_array() && p.as_array().empty())) {
    return Status::InvalidArgument("prompt: empty");
  }
  // An array holding one prompt (a string or an array of ids) is that prompt.
  if (p.is_array() && !p.as_array().empty() &&
      (p.as_array()[0].is_string() || p.as_array()[0].is_array())) {
    if (p.as_array().size() != 1) {
      return Status::InvalidArgument(
          StrFormat("prompt: one prompt per request is supported, got %zu", p.as_array().size()));
    }
    json::value first = std::move(p.as_array()[0]);
    p = std::move(first);
  }
  if (p.is_string()) {
    obj["document"] = std::move(p);
  } else if (p.is_array()) {
    obj["document_ids"] = std::move(p);  // the parser checks every id
  } else {
    return Status::InvalidArgument(
        StrFormat("prompt: expected a string or an array of token ids, got %s", JsonKindName(p)));
  }
  return Status::Ok();
}

// The text of one chat message's content.
StatusOr<std::string> MessageText(const json::value& content, const std::string& path) {
  if (content.is_string()) return std::string(content.as_string());
  if (!content.is_array()) {
    return Status::InvalidArgument(
        StrFormat("%s: expected a string or an array of text parts, got %s", path.c_str(),
                  JsonKindName(content)));
  }
  std::string text;
  const json::array& parts = content.as_array();
  for (size_t j = 0; j < parts.size(); ++j) {
    const std::string ppath = StrFormat("%s[%zu]", path.c_str(), j);
    if (!parts[j].is_object()) {
      return Status::InvalidArgument(
          StrFormat("%s: expected an object, got %s", ppath.c_str(), JsonKindName(parts[j])));
    }
    const json::object& part = parts[j].as_object();
    for (const auto& kv : part) {
      if (kv.key() != "type" && kv.key() != "text") {
        return Status::InvalidArgument(
            StrFormat("unknown field '%s.%s'", ppath.c_str(), std::string(kv.key()).c_str()));
      }
    }
    const json::value* type = part.if_contains("type");
    if (!type || !type->is_string() || type->as_string() != "text") {
      return Status::InvalidArgument(StrFormat("%s.type: only \"text\" parts are supported, got %s",
                                               ppath.c_str(),
                                               type ? json::serialize(*type).c_str() : "nothing"));
    }
    const json::value* t = part.if_contains("text");
    if (!t || !t->is_string()) {
      return Status::InvalidArgument(StrFormat("%s.text: expected a string, got %s", ppath.c_str(),
                                               t ? JsonKindName(*t) : "nothing"));
    }
    text.append(t->as_string().data(), t->as_string().size());
  }
  return text;
}

Status MapMessages(json::object& obj) {
  for (const char* key : {"prompt", "document", "document_ids", "query", "query_ids"}) {
    if (obj.contains(key)) {
      return Status::InvalidArgument(StrFormat(
          "%s: not accepted by /v1/chat/completions (the messages carry the document and the "
          "query)",
          key));
    }
  }
  std::optional<json::value> messages = Take(obj, "messages");
  if (!messages || messages->is_null()) {
    return Status::InvalidArgument("messages: required (the last user message is the query)");
  }
  if (!messages->is_array()) {
    return Status::InvalidArgument(
        StrFormat("messages: expected an array, got %s", JsonKindName(*messages)));
  }
  const json::array& list = messages->as_array();
  if (list.empty()) return Status::InvalidArgument("messages: empty");
  std::string document;
  std::string query;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string path = StrFormat("messages[%zu]", i);
    if (!list[i].is_object()) {
      return Status::InvalidArgument(
          StrFormat("%s: expected an object, got %s", path.c_str(), JsonKindName(list[i])));
    }
    const json::object& m = list[i].as_object();
    for (const auto& kv : m) {
      if (kv.key() != "role" && kv.key() != "content" && kv.key() != "name") {
        return Status::InvalidArgument(
            StrFormat("unknown field '%s.%s'", path.c_str(), std::string(kv.key()).c_str()));
      }
    }
    const json::value* role = m.if_contains("role");
    if (!role || !role->is_string()) {
      return Status::InvalidArgument(StrFormat("%s.role: required, a string", path.c_str()));
    }
    const std::string_view r = role->as_string();
    if (r != "system" && r != "developer" && r != "user" && r != "assistant") {
      return Status::InvalidArgument(
          StrFormat("%s.role: expected system, developer, user or assistant, got \"%.*s\"",
                    path.c_str(), static_cast<int>(std::min<size_t>(r.size(), 64)), r.data()));
    }
    if (const json::value* name = m.if_contains("name"); name && !name->is_string()) {
      return Status::InvalidArgument(
          StrFormat("%s.name: expected a string, got %s", path.c_str(), JsonKindName(*name)));
    }
    const json::value* content = m.if_contains("content");
    if (!content) return Status::InvalidArgument(StrFormat("%s.content: required", path.c_str()));
    SIEVE_ASSIGN_OR_RETURN(std::string text, MessageText(*content, path + ".content"));
    if (i + 1 == list.size()) {
      if (r != "user") {
        return Status::InvalidArgument(StrFormat(
            "%s.role: the last message must come from the user (it is the query), got \"%.*s\"",
            path.c_str(), static_cast<int>(r.size()), r.data()));
      }
      if (text.empty()) {
        return Status::InvalidArgument(
            StrFormat("%s.content: empty (the last user message is the query)", path.c_str()));
      }
      query = std::move(text);
    } else if (!text.empty()) {
      if (!document.empty()) document += "\n\n";
      document += text;
    }
  }
  if (document.empty()) {
    return Status::InvalidArgument(
        "messages: no document (the messages before the last user message are the document, "
        "and they are missing or empty)");
  }
  obj["document"] = std::move(document);
  obj["query"] = std::move(query);
  return Status::Ok();
}

// "document: ..." -> "prompt: ..." for the first matching field prefix.
Status RenameFields(const Status& status,
                    const std::vector<std::pair<std::string, std::string>>& renames) {
  const std::string& m = status.message();
  for (const auto& [from, to] : renames) {
    if (m.size() > from.size() && m.compare(0, from.size(), from) == 0 &&
        (m[from.size()] == ':' || m[from.size()] == '[')) {
      return Status(status.code(), to + m.substr(from.size()));
    }
  }
  return status;
}

StatusOr<ApiRequest> Parse(std::string_view body, const RequestLimits& limits, ApiKind kind) {
  SIEVE_ASSIGN_OR_RETURN(json::value value, ParseJson(body, limits));
  if (!value.is_object()) {
    return Status::InvalidArgument(
        StrFormat("request: expected a JSON object, got %s", JsonKindName(value)));
  }
  json::object& obj = value.as_object();
  ApiRequest out;
  out.kind = kind;
  SIEVE_RETURN_IF_ERROR(MapCommon(obj, kind, limits, &out));
  // Errors about fields this mapping filled are reported under the names the client used.
  std::vector<std::pair<std::string, std::string>> renames;
  if (kind == ApiKind::kCompletions) {
    const bool has_prompt = obj.contains("prompt") && !obj.at("prompt").is_null();
    SIEVE_RETURN_IF_ERROR(MapPrompt(obj));
    if (has_prompt) renames = {{"document_ids", "prompt"}, {"document", "prompt"}};
  } else {
    size_t last = 0;
    if (const json::value* m = obj.if_contains("messages"); m && m->is_array()) {
      last = m->as_array().empty() ? 0 : m->as_array().size() - 1;
    }
    SIEVE_RETURN_IF_ERROR(MapMessages(obj));
    renames = {{"document", "messages"}, {"query", StrFormat("messages[%zu].content", last)}};
  }
  auto parsed = ParseGenerateRequestObject(obj, limits);
  if (!parsed.ok()) return RenameFields(parsed.status(), renames);
  out.request = std::move(parsed).value();
  out.stream = out.request.stream();
  return out;
}

const char* ObjectName(ApiKind kind, bool chunk) {
  if (kind == ApiKind::kChat) return chunk ? "chat.completion.chunk" : "chat.completion";
  return "text_completion";
}

json::object Usage(const proto::GenerateResponse& r) {
  const proto::Accounting& a = r.accounting();
  const int64_t prompt = int64_t{a.document_tokens()} + a.query_tokens();
  return json::object{{"prompt_tokens", prompt},
                      {"completion_tokens", a.generated_tokens()},
                      {"total_tokens", prompt + a.generated_tokens()}};
}

json::object Envelope(ApiKind kind, bool chunk, const std::string& id, const std::string& model,
                      int64_t created) {
  return json::object{
      {"id", id}, {"object", ObjectName(kind, chunk)}, {"created", created}, {"model", model}};
}

std::string_view ErrorType(StatusCode code) {
  switch (code) {
    case StatusCode::kUnauthenticated:
      return "authentication_error";
    case StatusCode::kResourceExhausted:
      return "rate_limit_error";
    case StatusCode::kNotFound:
      return "not_found_error";
    case StatusCode::kInternal:
    case StatusCode::kDataLoss:
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded:
      return "server_error";
    default:
      return "invalid_request_error";
  }
}

// The field an error message names ("sieve.kv_pool: must be odd" -> "sieve.kv_pool",
// "unknown field 'x'" -> "x"), or "" when it names none.
std::string ErrorParam(const std::string& message) {
  constexpr std::string_view kUnknown = "unknown field '";
  if (message.rfind(kUnknown, 0) == 0) {
    const size_t end = message.find('\'', kUnknown.size());
    if (end != std::string::npos) return message.substr(kUnknown.size(), end - kUnknown.size());
  }
  const size_t colon = message.find(':');
  if (colon == std::string::npos || colon == 0) return "";
  for (size_t i = 0; i < colon; ++i) {
    const char c = message[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '[' || c == ']';
    if (!ok) return "";
  }
  return message.substr(0, colon);
}

}  // namespace

StatusOr<ApiRequest> ParseCompletionsRequest(std::string_view body, const RequestLimits& limits) {
  return Parse(body, limits, ApiKind::kCompletions);
}

StatusOr<ApiRequest> ParseChatRequest(std::string_view body, const RequestLimits& limits) {
  return Parse(body, limits, ApiKind::kChat);
}

std::string OpenAiFinishReason(const std::string& reason) {
  if (reason == "eos" || reason == "stop") return "stop";
  return reason;
}

std::string CompletionBody(ApiKind kind, const proto::GenerateResponse& r, int64_t created) {
  json::object out = Envelope(kind, false, r.request_id(), r.model(), created);
  json::object choice{{"index", 0}};
  if (kind == ApiKind::kChat) {
    choice["message"] = json::object{{"role", "assistant"}, {"content", r.text()}};
  } else {
    choice["text"] = r.text();
  }
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = OpenAiFinishReason(r.finish_reason());
  out["choices"] = json::array{std::move(choice)};
  out["usage"] = Usage(r);
  out["sieve"] = ResponseToJsonObject(r);
  return json::serialize(out);
}

std::string StreamRoleChunk(const std::string& id, const std::string& model, int64_t created) {
  json::object out = Envelope(ApiKind::kChat, true, id, model, created);
  out["choices"] = json::array{json::object{{"index", 0},
                                            {"delta", {{"role", "assistant"}, {"content", ""}}},
                                            {"logprobs", nullptr},
                                            {"finish_reason", nullptr}}};
  return json::serialize(out);
}

std::string StreamTextChunk(ApiKind kind, const std::string& id, const std::string& model,
                            int64_t created, std::string_view text) {
  json::object out = Envelope(kind, true, id, model, created);
  json::object choice{{"index", 0}};
  if (kind == ApiKind::kChat) {
    choice["delta"] = json::object{{"content", text}};
  } else {
    choice["text"] = text;
  }
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = nullptr;
  out["choices"] = json::array{std::move(choice)};
  return json::serialize(out);
}

std::string StreamFinalChunk(ApiKind kind, const proto::GenerateResponse& r, int64_t created) {
  json::object out = Envelope(kind, true, r.request_id(), r.model(), created);
  json::object choice{{"index", 0}};
  if (kind == ApiKind::kChat) {
    choice["delta"] = json::object{};
  } else {
    choice["text"] = "";
  }
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = OpenAiFinishReason(r.finish_reason());
  out["choices"] = json::array{std::move(choice)};
  out["sieve"] = ResponseToJsonObject(r);
  return json::serialize(out);
}

std::string StreamUsageChunk(ApiKind kind, const proto::GenerateResponse& r, int64_t created) {
  json::object out = Envelope(kind, true, r.request_id(), r.model(), created);
  out["choices"] = json::array{};
  out["usage"] = Usage(r);
  return json::serialize(out);
}

std::string SseData(std::string_view data) {
  std::string out;
  out.reserve(data.size() + 8);
  out += "data: ";
  out += data;
  out += "\n\n";
  return out;
}

std::string SseComment(std::string_view text) {
  std::string out = ": ";
  for (char c : text) out += (c == '\n' || c == '\r') ? ' ' : c;
  out += "\n\n";
  return out;
}

std::string ModelsBody(const std::string& model, int64_t created) {
  json::object entry{
      {"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "sieve"}};
  return json::serialize(json::object{{"object", "list"}, {"data", json::array{entry}}});
}

std::string ApiErrorBody(const Status& status, const std::string& request_id) {
  json::object error{{"message", status.message()},
                     {"type", ErrorType(status.code())},
                     {"code", std::string(StatusCodeName(status.code()))},
                     {"status", HttpStatusFor(status.code())}};
  const std::string param = ErrorParam(status.message());
  if (param.empty()) {
    error["param"] = nullptr;
  } else {
    error["param"] = param;
  }
  if (!request_id.empty()) error["request_id"] = request_id;
  return json::serialize(json::object{{"error", std::move(error)}});
}

}  // namespace sieve::coordinator
