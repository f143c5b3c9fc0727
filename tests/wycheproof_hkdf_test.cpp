// Wycheproof HKDF-SHA-256 and HKDF-SHA-512 vectors through hmod::Hkdf, and through
// HkdfExtract followed by HkdfExpand, which must agree with the one-shot call.
#include <gtest/gtest.h>

#include "hmod/crypto.h"
#include "support/wycheproof.h"

namespace hmod::testing {
namespace {

using wycheproof::Describe;
using wycheproof::Hex;
using wycheproof::Integer;
using wycheproof::IsValid;
using wycheproof::Json;
using wycheproof::ToHex;
using wycheproof::VectorFile;

struct Counts {
  size_t valid = 0, invalid = 0;
};

void CheckVector(const VectorFile& file, HashAlg hash, const Json& test) {
  const Bytes ikm = Hex(test, "ikm"), salt = Hex(test, "salt"), info = Hex(test, "info");
  const size_t size = static_cast<size_t>(Integer(test, "size"));
  auto one_shot = Hkdf(hash, salt, ikm, info, size);
  auto prk = HkdfExtract(hash, salt, ikm);
  ASSERT_TRUE(prk.ok()) << prk.error().message;  // extraction has no size to get wrong
  EXPECT_EQ(prk->size(), hash == HashAlg::kSha256 ? 32u : 64u);
  auto two_step = HkdfExpand(hash, prk->secret(), info, size);

  if (IsValid(test)) {
    const Bytes okm = Hex(test, "okm");
    ASSERT_EQ(okm.size(), size);
    ASSERT_TRUE(one_shot.ok()) << one_shot.error().message;
    EXPECT_EQ(ToHex(one_shot->secret()), ToHex(okm));
    ASSERT_TRUE(two_step.ok()) << two_step.error().message;
    EXPECT_EQ(ToHex(two_step->secret()), ToHex(okm));
  } else {
    // The only invalid vectors ask for more than 255 * HashLen bytes.
    EXPECT_TRUE(file.HasFlag(test, "SizeTooLarge"));
    EXPECT_FALSE(one_shot.ok());
    EXPECT_FALSE(two_step.ok());
  }
}

Counts RunFile(const char* name, HashAlg hash) {
  const auto file = VectorFile::Load(name);
  Counts counts;
  for (const Json& group : file.groups()) {
    for (const Json& test : group.at("tests")) {
      SCOPED_TRACE(Describe(test));
      CheckVector(file, hash, test);
      ++(IsValid(test) ? counts.valid : counts.invalid);
    }
  }
  EXPECT_EQ(counts.valid + counts.invalid, file.number_of_tests());
  return counts;
}

class WycheproofHkdf : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(InitCrypto().ok()); }
};

TEST_F(WycheproofHkdf, Sha256) {
  const Counts n = RunFile("hkdf_sha256_test.json", HashAlg::kSha256);
  EXPECT_EQ(n.valid, 83u);
  EXPECT_EQ(n.invalid, 3u);
}

TEST_F(WycheproofHkdf, Sha512) {
  const Counts n = RunFile("hkdf_sha512_test.json", HashAlg::kSha512);
  EXPECT_EQ(n.valid, 80u);
  EXPECT_EQ(n.invalid, 3u);
}

}  // namespace
}  // namespace hmod::testing
