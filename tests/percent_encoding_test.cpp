// PercentEncode: the unreserved set and the caller's extra characters stay, every other
// byte (UTF-8 included) is %XX in upper-case hex, as SigV4's UriEncode requires.
#include <gtest/gtest.h>

#include "io/percent_encoding.h"

namespace hmod {
namespace {

TEST(PercentEncode, KeepsUnreservedAndEncodesTheRest) {
  EXPECT_EQ(PercentEncode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(PercentEncode("a b/c+d=e&f"), "a%20b%2Fc%2Bd%3De%26f");
  EXPECT_EQ(PercentEncode("caf\xc3\xa9"), "caf%C3%A9");
  EXPECT_EQ(PercentEncode(std::string_view("\0\xff", 2)), "%00%FF");
  EXPECT_EQ(PercentEncode(""), "");
}

TEST(PercentEncode, ExtraPlainCharacters) {
  EXPECT_EQ(PercentEncode("models/v1/w b.hmod", "/"), "models/v1/w%20b.hmod");
  EXPECT_EQ(PercentEncode("a:b@c%d", ":@"), "a:b@c%25d");
}

}  // namespace
}  // namespace hmod
