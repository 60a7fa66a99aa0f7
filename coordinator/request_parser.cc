#include "coordinator/request_parser.h"

#include <boost/json.hpp>
#include <cmath>
#include <optional>
#include <set>
#include <string>

#include "coordinator/tokenizer_unicode.h"

namespace sieve::coordinator {
namespace json = boost::json;
namespace {

Status TypeError(const std::string& path, const char* expected, const json::value& v) {
  return Status::InvalidArgument(
      StrFormat("%s: expected %s, got %s", path.c_str(), expected, JsonKindName(v)));
}

// Reads the fields of one JSON object, remembering which were consumed so the leftovers can be
// reported as unknown.
class ObjectReader {
 public:
  ObjectReader(const json::object& object, std::string prefix)
      : object_(object), prefix_(std::move(prefix)) {}

  std::string Path(std::string_view key) const {
    return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
  }

  // nullptr when absent. JSON null counts as present.
  const json::value* Find(std::string_view key) {
    seen_.insert(std::string(key));
    return object_.if_contains(key);
  }

  // Absent or null -> nullopt.
  StatusOr<std::optional<int64_t>> Int(std::string_view key, int64_t lo, int64_t hi) {
    const json::value* v = Find(key);
    if (!v || v->is_null()) return std::optional<int64_t>();
    int64_t x = 0;
    if (v->is_int64()) {
      x = v->as_int64();
    } else if (v->is_uint64()) {
      if (v->as_uint64() > static_cast<uint64_t>(hi)) return RangeError(key, lo, hi);
      x = static_cast<int64_t>(v->as_uint64());
    } else {
      return TypeError(Path(key), "an integer", *v);
    }
    if (x < lo || x > hi) return RangeError(key, lo, hi);
    return std::optional<int64_t>(x);
  }

  StatusOr<std::optional<uint64_t>> Uint64(std::string_view key) {
    const json::value* v = Find(key);
    if (!v || v->is_null()) return std::optional<uint64_t>();
    if (v->is_uint64()) return std::optional<uint64_t>(v->as_uint64());
    if (v->is_int64() && v->as_int64() >= 0) {
      return std::optional<uint64_t>(static_cast<uint64_t>(v->as_int64()));
    }
    if (v->is_int64()) {
      return Status::InvalidArgument(StrFormat("%s: must be >= 0, got %lld", Path(key).c_str(),
                                               static_cast<long long>(v->as_int64())));
    }
    return TypeError(Path(key), "a non-negative integer", *v);
  }

  StatusOr<std::optional<double>> Number(std::string_view key, double lo, double hi,
                                         bool lo_open = false) {
    const json::value* v = Find(key);
    if (!v || v->is_null()) return std::optional<double>();
    double x = 0;
    if (v->is_double()) {
      x = v->as_double();
    } else if (v->is_int64()) {
      x = static_cast<double>(v->as_int64());
    } else if (v->is_uint64()) {
      x = static_cast<double>(v->as_uint64());
    } else {
      return TypeError(Path(key), "a number", *v);
    }
    if (!std::isfinite(x) || x < lo || x > hi || (lo_open && x == lo)) {
      return Status::InvalidArgument(StrFormat("%s: must be in %s%g, %g], got %g",
                                               Path(key).c_str(), lo_open ? "(" : "[", lo, hi, x));
    }
    return std::optional<double>(x);
  }

  StatusOr<std::optional<bool>> Bool(std::string_view key) {
    const json::value* v = Find(key);
    if (!v || v->is_null()) return std::optional<bool>();
    if (!v->is_bool()) return TypeError(Path(key), "a boolean", *v);
    return std::optional<bool>(v->as_bool());
  }

  StatusOr<const json::string*> String(std::string_view key) {
    const json::value* v = Find(key);
    if (!v || v->is_null()) return static_cast<const json::string*>(nullptr);
    if (!v->is_string()) return TypeError(Path(key), "a string", *v);
    return &v->as_string();
  }

  StatusOr<const json::array*> Array(std::string_view key) {
    const json::value* v = Find(key);
    if (!v || v->is_null()) return static_cast<const json::array*>(nullptr);
    if (!v->is_array()) return TypeError(Path(key), "an array", *v);
    return &v->as_array();
  }

  StatusOr<const json::object*> Object(std::string_view key) {
    const json::value* v = Find(key);
    if (!v || v->is_null()) return static_cast<const json::object*>(nullptr);
    if (!v->is_object()) return TypeError(Path(key), "an object", *v);
    return &v->as_object();
  }

  // INVALID_ARGUMENT naming the first field not consumed.
  Status RejectUnknown() const {
    for (const auto& kv : object_) {
      if (!seen_.count(std::string(kv.key()))) {
        return Status::InvalidArgument(StrFormat("unknown field '%s'", Path(kv.key()).c_str()));
      }
    }
    return Status::Ok();
  }

 private:
  Status RangeError(std::string_view key, int64_t lo, int64_t hi) const {
    return Status::InvalidArgument(StrFormat("%s: must be an integer in [%lld, %lld]",
                                             Path(key).c_str(), static_cast<long long>(lo),
                                             static_cast<long long>(hi)));
  }

  const json::object& object_;
  std::string prefix_;
  std::set<std::string> seen_;
};

constexpr int64_t kMaxTokenId = (int64_t{1} << 31) - 1;

Status ReadIds(const json::array& array, const std::string& path, int64_t max_count,
               proto::TokenIds* out) {
  if (static_cast<int64_t>(array.size()) > max_count) {
    return Status::PayloadTooLarge(StrFormat("%s: %zu ids exceed the limit of %lld", path.c_str(),
                                             array.size(), static_cast<long long>(max_count)));
  }
  out->mutable_ids()->Reserve(static_cast<int>(array.size()));
  for (size_t i = 0; i < array.size(); ++i) {
    const json::value& v = array[i];
    int64_t id = -1;
    if (v.is_int64()) id = v.as_int64();
    if (v.is_uint64() && v.as_uint64() <= static_cast<uint64_t>(kMaxTokenId))
      id = int64_t(v.as_uint64());
    if (!(v.is_int64() || v.is_uint64())) {
      return TypeError(StrFormat("%s[%zu]", path.c_str(), i), "an integer token id", v);
    }
    if (id < 0 || id > kMaxTokenId) {
      return Status::InvalidArgument(StrFormat("%s[%zu]: token id must be in [0, 2^31), got %s",
                                               path.c_str(), i, json::serialize(v).c_str()));
    }
    out->add_ids(static_cast<int32_t>(id));
  }
  return Status::Ok();
}

StatusOr<proto::PrefillMode> ParseMode(std::string_view s, const std::string& path) {
  if (s == "parallelcomp") return proto::PREFILL_MODE_PARALLELCOMP;
  if (s == "parallel") return proto::PREFILL_MODE_PARALLEL;
  if (s == "full") return proto::PREFILL_MODE_FULL;
  return Status::InvalidArgument(
      StrFormat("%s: unknown mode '%.*s' (expected parallelcomp, parallel or full)", path.c_str(),
                static_cast<int>(s.size()), s.data()));
}

StatusOr<proto::CalibrationPattern> ParsePattern(std::string_view s, const std::string& path) {
  if (s == "none") return proto::CALIBRATION_NONE;
  if (s == "sink") return proto::CALIBRATION_SINK;
  if (s == "recent") return proto::CALIBRATION_RECENT;
  if (s == "middle") return proto::CALIBRATION_MIDDLE;
  if (s == "all") return proto::CALIBRATION_ALL;
  return Status::InvalidArgument(
      StrFormat("%s: unknown pattern '%.*s' (expected none, sink, recent, middle or all)",
                path.c_str(), static_cast<int>(s.size()), s.data()));
}

StatusOr<proto::ScopeStrategy> ParseStrategy(std::string_view s, const std::string& path) {
  if (s == "slide") return proto::SCOPE_SLIDE;
  if (s == "adaptive") return proto::SCOPE_ADAPTIVE;
  if (s == "discontinuous") return proto::SCOPE_DISCONTINUOUS;
  if (s == "off") return proto::SCOPE_OFF;
  return Status::InvalidArgument(
      StrFormat("%s: unknown strategy '%.*s' (expected slide, adaptive, discontinuous or off)",
                path.c_str(), static_cast<int>(s.size()), s.data()));
}

constexpr int kMaxInt = 1 << 30;

Status ParseScope(const json::object& object, proto::Scope* scope) {
  ObjectReader r(object, "sieve.scope");
  SIEVE_ASSIGN_OR_RETURN(const json::string* strategy, r.String("strategy"));
  scope->set_strategy(proto::SCOPE_SLIDE);
  if (strategy) {
    SIEVE_ASSIGN_OR_RETURN(proto::ScopeStrategy s, ParseStrategy(*strategy, r.Path("strategy")));
    scope->set_strategy(s);
  }
  SIEVE_ASSIGN_OR_RETURN(auto b1, r.Int("b1", 0, kMaxInt));
  SIEVE_ASSIGN_OR_RETURN(auto b2, r.Int("b2", 0, kMaxInt));
  SIEVE_ASSIGN_OR_RETURN(auto t, r.Int("T", 0, kMaxInt));
  scope->set_b1(static_cast<int32_t>(b1.value_or(256)));
  scope->set_b2(static_cast<int32_t>(b2.value_or(256)));
  if (t) scope->set_t(static_cast<int32_t>(*t));
  return r.RejectUnknown();
}

Status ParseCalibration(const json::object& object, proto::Calibration* calib) {
  ObjectReader r(object, "sieve.calibration");
  SIEVE_ASSIGN_OR_RETURN(const json::array* layers, r.Array("layers"));
  if (!layers) return Status::InvalidArgument("sieve.calibration.layers: required");
  for (size_t i = 0; i < layers->size(); ++i) {
    const std::string path = StrFormat("sieve.calibration.layers[%zu]", i);
    if (!(*layers)[i].is_string()) return TypeError(path, "a string", (*layers)[i]);
    SIEVE_ASSIGN_OR_RETURN(proto::CalibrationPattern p,
                           ParsePattern((*layers)[i].as_string(), path));
    calib->add_layers(p);
  }
  SIEVE_ASSIGN_OR_RETURN(auto threshold, r.Number("threshold", 0, 1));
  SIEVE_ASSIGN_OR_RETURN(auto region, r.Int("region", 0, kMaxInt));
  calib->set_threshold(static_cast<float>(threshold.value_or(0.1)));
  calib->set_region(static_cast<int32_t>(region.value_or(100)));
  return r.RejectUnknown();
}

Status ParseSieve(const json::object& object, proto::SieveOptions* sieve) {
  ObjectReader r(object, "sieve");
  SIEVE_ASSIGN_OR_RETURN(const json::string* mode, r.String("mode"));
  sieve->set_mode(proto::PREFILL_MODE_PARALLELCOMP);
  if (mode) {
    SIEVE_ASSIGN_OR_RETURN(proto::PrefillMode m, ParseMode(*mode, r.Path("mode")));
    sieve->set_mode(m);
  }
  SIEVE_ASSIGN_OR_RETURN(auto chunk_tokens, r.Int("chunk_tokens", 1, kMaxInt));
  SIEVE_ASSIGN_OR_RETURN(auto keep_chunks, r.Int("keep_chunks", 1, kMaxInt));
  SIEVE_ASSIGN_OR_RETURN(auto kv_capacity, r.Int("kv_capacity", 1, kMaxInt));
  SIEVE_ASSIGN_OR_RETURN(auto kv_window, r.Int("kv_window", 1, 1 << 20));
  SIEVE_ASSIGN_OR_RETURN(auto kv_pool, r.Int("kv_pool", 1, 1 << 20));
  if (kv_pool && *kv_pool % 2 == 0) {
    return Status::InvalidArgument(
        StrFormat("sieve.kv_pool: must be odd, got %lld", static_cast<long long>(*kv_pool)));
  }
  if (chunk_tokens) sieve->set_chunk_tokens(static_cast<int32_t>(*chunk_tokens));
  sieve->set_keep_chunks(static_cast<int32_t>(keep_chunks.value_or(3)));
  if (kv_capacity) sieve->set_kv_capacity(static_cast<int32_t>(*kv_capacity));
  sieve->set_kv_window(static_cast<int32_t>(kv_window.value_or(8)));
  sieve->set_kv_pool(static_cast<int32_t>(kv_pool.value_or(7)));
  SIEVE_ASSIGN_OR_RETURN(const json::object* calibration, r.Object("calibration"));
  if (calibration)
    SIEVE_RETURN_IF_ERROR(ParseCalibration(*calibration, sieve->mutable_calibration()));
  SIEVE_ASSIGN_OR_RETURN(const json::object* scope, r.Object("scope"));
  if (scope) {
    SIEVE_RETURN_IF_ERROR(ParseScope(*scope, sieve->mutable_scope()));
  } else {
    sieve->mutable_scope()->set_strategy(proto::SCOPE_SLIDE);
    sieve->mutable_scope()->set_b1(256);
    sieve->mutable_scope()->set_b2(256);
  }
  return r.RejectUnknown();
}

}  // namespace

StatusOr<json::value> ParseJson(std::string_view text, const RequestLimits& limits) {
  if (static_cast<int64_t>(text.size()) > limits.max_body_bytes) {
    return Status::PayloadTooLarge(StrFormat("request body of %zu bytes exceeds the limit of %lld",
                                             text.size(),
                                             static_cast<long long>(limits.max_body_bytes)));
  }
  json::parse_options options;
  options.max_depth = 64;
  json::stream_parser parser(json::storage_ptr(), options);
  boost::system::error_code ec;
  const size_t used = parser.write_some(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    // Boost.JSON reports ill-formed UTF-8 inside a string as a plain syntax error; name it when
    // the first ill-formed sequence is where (or before where) the parser stopped.
    const size_t bad_utf8 = unicode::FindInvalidUtf8(text);
    if (bad_utf8 != std::string_view::npos && bad_utf8 <= used) {
      return Status::InvalidArgument(
          StrFormat("invalid UTF-8 in JSON at byte %zu: ill-formed sequence", bad_utf8));
    }
    return Status::InvalidArgument(
        StrFormat("invalid JSON at byte %zu: %s", used, ec.message().c_str()));
  }
  return parser.release();
}

StatusOr<proto::GenerateRequest> ParseGenerateRequestObject(const json::object& object,
                                                            const RequestLimits& limits) {
  proto::GenerateRequest req;
  ObjectReader r(object, "");
  // Document: text or ids, exactly one, non-empty.
  SIEVE_ASSIGN_OR_RETURN(const json::string* document, r.String("document"));
  SIEVE_ASSIGN_OR_RETURN(const json::array* document_ids, r.Array("document_ids"));
  if (document && document_ids) {
    return Status::InvalidArgument("document, document_ids: give one of them, not both");
  }
  if (!document && !document_ids) {
    return Status::InvalidArgument("document: required (a string, or document_ids)");
  }
  if (document) {
    if (document->empty()) return Status::InvalidArgument("document: empty");
    if (static_cast<int64_t>(document->size()) > limits.max_document_bytes) {
      return Status::PayloadTooLarge(StrFormat("document: %zu bytes exceed the limit of %lld",
                                               document->size(),
                                               static_cast<long long>(limits.max_document_bytes)));
    }
    req.set_document_text(document->data(), document->size());
  } else {
    if (document_ids->empty()) return Status::InvalidArgument("document_ids: empty");
    SIEVE_RETURN_IF_ERROR(ReadIds(*document_ids, "document_ids", limits.max_document_ids,
                                  req.mutable_document_ids()));
  }
  // Query.
  SIEVE_ASSIGN_OR_RETURN(const json::string* query, r.String("query"));
  SIEVE_ASSIGN_OR_RETURN(const json::array* query_ids, r.Array("query_ids"));
  if (query && query_ids)
    return Status::InvalidArgument("query, query_ids: give one of them, not both");
  if (!query && !query_ids)
    return Status::InvalidArgument("query: required (a string, or query_ids)");
  if (query) {
    if (query->empty()) return Status::InvalidArgument("query: empty");
    if (static_cast<int64_t>(query->size()) > limits.max_document_bytes) {
      return Status::PayloadTooLarge("query: longer than the document limit");
    }
    req.set_query_text(query->data(), query->size());
  } else {
    if (query_ids->empty()) return Status::InvalidArgument("query_ids: empty");
    SIEVE_RETURN_IF_ERROR(
        ReadIds(*query_ids, "query_ids", limits.max_document_ids, req.mutable_query_ids()));
  }
  // Generation.
  SIEVE_ASSIGN_OR_RETURN(auto max_new, r.Int("max_new_tokens", 1, limits.max_new_tokens));
  SIEVE_ASSIGN_OR_RETURN(auto temperature, r.Number("temperature", 0, 100));
  SIEVE_ASSIGN_OR_RETURN(auto top_p, r.Number("top_p", 0, 1, /*lo_open=*/true));
  SIEVE_ASSIGN_OR_RETURN(auto top_k, r.Int("top_k", 0, kMaxInt));
  SIEVE_ASSIGN_OR_RETURN(auto seed, r.Uint64("seed"));
  req.set_max_new_tokens(static_cast<int32_t>(max_new.value_or(64)));
  req.set_temperature(static_cast<float>(temperature.value_or(0)));
  req.set_top_p(static_cast<float>(top_p.value_or(1)));
  req.set_top_k(static_cast<int32_t>(top_k.value_or(0)));
  req.set_seed(seed.value_or(0));
  SIEVE_ASSIGN_OR_RETURN(const json::array* stop, r.Array("stop"));
  if (stop) {
    if (static_cast<int>(stop->size()) > limits.max_stop_strings) {
      return Status::InvalidArgument(
          StrFormat("stop: at most %d strings, got %zu", limits.max_stop_strings, stop->size()));
    }
    for (size_t i = 0; i < stop->size(); ++i) {
      const std::string path = StrFormat("stop[%zu]", i);
      if (!(*stop)[i].is_string()) return TypeError(path, "a string", (*stop)[i]);
      const json::string& s = (*stop)[i].as_string();
      if (s.empty()) return Status::InvalidArgument(path + ": empty");
      req.add_stop(s.data(), s.size());
    }
  }
  SIEVE_ASSIGN_OR_RETURN(const json::array* forced, r.Array("force_continuation_ids"));
  if (forced) {
    proto::TokenIds ids;
    SIEVE_RETURN_IF_ERROR(ReadIds(*forced, "force_continuation_ids", limits.max_new_tokens, &ids));
    *req.mutable_force_continuation_ids() = ids.ids();
  }
  SIEVE_ASSIGN_OR_RETURN(auto explain, r.Bool("explain"));
  req.set_explain(explain.value_or(false));
  SIEVE_ASSIGN_OR_RETURN(auto stream, r.Bool("stream"));
  req.set_stream(stream.value_or(false));
  SIEVE_ASSIGN_OR_RETURN(auto deadline, r.Number("deadline_seconds", 0, 86400));
  req.set_deadline_seconds(deadline.value_or(0));
  SIEVE_ASSIGN_OR_RETURN(const json::string* request_id, r.String("request_id"));
  if (request_id) {
    if (request_id->size() > 128)
      return Status::InvalidArgument("request_id: longer than 128 bytes");
    req.set_request_id(request_id->data(), request_id->size());
  }
  SIEVE_ASSIGN_OR_RETURN(const json::string* model, r.String("model"));
  if (model) req.set_model(model->data(), model->size());
  // Sieve options.
  SIEVE_ASSIGN_OR_RETURN(const json::object* sieve, r.Object("sieve"));
  static const json::object kEmpty;
  SIEVE_RETURN_IF_ERROR(ParseSieve(sieve ? *sieve : kEmpty, req.mutable_sieve()));
  SIEVE_RETURN_IF_ERROR(r.RejectUnknown());
  return req;
}

StatusOr<proto::GenerateRequest> ParseGenerateRequest(std::string_view text,
                                                      const RequestLimits& limits) {
  SIEVE_ASSIGN_OR_RETURN(json::value value, ParseJson(text, limits));
  if (!value.is_object()) return TypeError("request", "a JSON object", value);
  return ParseGenerateRequestObject(value.as_object(), limits);
}

const char* JsonKindName(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
      return "an integer";
    case json::kind::double_:
      return "a number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "?";
}

}  // namespace sieve::coordinator
