#include "comm/status.h"

#include <gtest/gtest.h>

namespace sieve {
namespace {

StatusOr<int> Half(int x) {
  if (x % 2) return Status::InvalidArgument(StrFormat("x=%d is odd", x));
  return x / 2;
}

Status Quarter(int x, int* out) {
  SIEVE_ASSIGN_OR_RETURN(int h, Half(x));
  SIEVE_ASSIGN_OR_RETURN(*out, Half(h));
  return Status::Ok();
}

TEST(StatusTest, CodesAndMessages) {
  Status s = Status::ResourceExhausted("queue full");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.ToString(), "RESOURCE_EXHAUSTED: queue full");
  EXPECT_EQ(HttpStatusFor(s.code()), 429);
  EXPECT_EQ(HttpStatusFor(StatusCode::kPayloadTooLarge), 413);
  EXPECT_EQ(s.WithContext("admission").message(), "admission: queue full");
  EXPECT_TRUE(Status().ok());
}

TEST(StatusTest, StatusOrPropagates) {
  int q = 0;
  EXPECT_TRUE(Quarter(12, &q).ok());
  EXPECT_EQ(q, 3);
  Status s = Quarter(6, &q);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "x=3 is odd");
}

TEST(StatusDeathTest, ValueOfErrorAborts) {
  StatusOr<int> bad = Status::Internal("boom");
  EXPECT_DEATH((void)bad.value(), "boom");
}

TEST(CheckDeathTest, CheckPrintsContext) {
  SetProcessContext(3, 1);
  EXPECT_DEATH(SIEVE_CHECK(1 + 1 == 3, "arith=%d", 2), "rank=3 device=1.*arith=2");
}

}  // namespace
}  // namespace sieve
