// API keys of the service (--api-key-file): loading the key and checking a presented one in
// constant time. Pure: no sockets.
//
// HTTP clients present the key as "Authorization: Bearer KEY" (or "x-api-key: KEY"); native
// clients in ClientMessage.api_key. Without the right key a request gets 401 / UNAUTHENTICATED.
// The comparison takes time that depends only on the expected key's length, never on where the
// presented key differs.
//
// Tested by tests/unit/coordinator/api_key_test.cc and tests/cli/service_test.sh.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "comm/status.h"

namespace sieve::coordinator {

// True when `given` equals `expected`; constant time in the length of `expected`.
bool ConstantTimeEquals(std::string_view expected, std::string_view given);

// The key in `path`: the file's content with surrounding whitespace removed. Errors: the file
// cannot be read, is empty, or holds a key with whitespace or control characters inside.
StatusOr<std::string> LoadApiKeyFile(const std::string& path);

// "Bearer KEY" -> KEY (the scheme is case-insensitive); nullopt for anything else.
std::optional<std::string_view> BearerToken(std::string_view authorization);

}  // namespace sieve::coordinator
