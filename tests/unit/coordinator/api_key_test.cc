// Tests of coordinator/api_key.{h,cc}: constant-time comparison, key files, bearer tokens.
//
//   ./build/tests/sieve_unit_tests --gtest_filter='ApiKey*'
#include "coordinator/api_key.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace sieve::coordinator {
namespace {

TEST(ApiKeyTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("secret-key", "secret-key"));
  EXPECT_FALSE(ConstantTimeEquals("secret-key", "secret-kez"));
  EXPECT_FALSE(ConstantTimeEquals("secret-key", "secret-ke"));
  EXPECT_FALSE(ConstantTimeEquals("secret-key", "secret-key!"));
  EXPECT_FALSE(ConstantTimeEquals("secret-key", ""));
  EXPECT_FALSE(ConstantTimeEquals("abc", std::string("abc\0", 4)));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

TEST(ApiKeyTest, BearerToken) {
  EXPECT_EQ(BearerToken("Bearer abc").value_or("?"), "abc");
  EXPECT_EQ(BearerToken("bearer  abc ").value_or("?"), "abc");
  EXPECT_EQ(BearerToken("BEARER abc").value_or("?"), "abc");
  EXPECT_FALSE(BearerToken("Basic abc").has_value());
  EXPECT_FALSE(BearerToken("Bearer").has_value());
  EXPECT_FALSE(BearerToken("Bearer   ").has_value());
  EXPECT_FALSE(BearerToken("").has_value());
}

std::string WriteTemp(const std::string& content) {
  char path[] = "/tmp/sieve_api_key_XXXXXX";
  const int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

TEST(ApiKeyTest, LoadApiKeyFile) {
  const std::string good = WriteTemp("  s3cr3t-Key_1\n");
  auto key = LoadApiKeyFile(good);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(*key, "s3cr3t-Key_1");
  const std::string empty = WriteTemp("\n \n");
  EXPECT_EQ(LoadApiKeyFile(empty).status().code(), StatusCode::kInvalidArgument);
  const std::string spaced = WriteTemp("two words\n");
  EXPECT_EQ(LoadApiKeyFile(spaced).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadApiKeyFile("/nonexistent/key").status().code(), StatusCode::kNotFound);
  std::remove(good.c_str());
  std::remove(empty.c_str());
  std::remove(spaced.c_str());
}

}  // namespace
}  // namespace sieve::coordinator
