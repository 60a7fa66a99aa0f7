// Tests of coordinator/service.{h,cc} that need no socket: listen addresses. The service itself
// is tested end to end by tests/cli/service_test.sh.
//
//   ./build/tests/sieve_unit_tests --gtest_filter='Service*'
#include "coordinator/service.h"

#include <gtest/gtest.h>

namespace sieve::coordinator {
namespace {

TEST(ServiceTest, ParseListenAddress) {
  auto a = ParseListenAddress("127.0.0.1:8080");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->first, "127.0.0.1");
  EXPECT_EQ(a->second, 8080);
  auto b = ParseListenAddress("[::1]:0");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->first, "::1");
  EXPECT_EQ(b->second, 0);
  EXPECT_TRUE(ParseListenAddress("0.0.0.0:65535").ok());
  for (const char* bad : {"", "8080", "localhost:80", "127.0.0.1:", "127.0.0.1:65536",
                          "127.0.0.1:-1", "127.0.0.1:80x", ":80", "[::1]80", "1.2.3:80"}) {
    EXPECT_EQ(ParseListenAddress(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace sieve::coordinator
