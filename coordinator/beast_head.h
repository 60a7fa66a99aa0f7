// HeadOf: the HttpHead (coordinator/http_router.h) of a request whose header Beast has parsed:
// what the router needs of it, as views into the parser's message (valid while it is).
// Used by the HTTP front end (coordinator/http_server.cc) and its fuzz target
// (tests/fuzz/http_request_fuzz.cc).
#pragma once

#include <string_view>

#include <boost/beast/http.hpp>

#include "coordinator/http_router.h"

namespace sieve::coordinator {

template <class Body>
HttpHead HeadOf(const boost::beast::http::request_parser<Body>& parser) {
  namespace http = boost::beast::http;
  const auto& req = parser.get();
  auto view = [](boost::beast::string_view s) { return std::string_view(s.data(), s.size()); };
  HttpHead head;
  head.method = view(req.method_string());
  head.target = view(req.target());
  if (auto it = req.find(http::field::authorization); it != req.end()) {
    head.authorization = view(it->value());
  }
  if (auto it = req.find("x-api-key"); it != req.end()) head.x_api_key = view(it->value());
  if (auto length = parser.content_length()) head.content_length = *length;
  return head;
}

}  // namespace sieve::coordinator
