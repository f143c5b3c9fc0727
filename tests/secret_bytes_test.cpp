// SecretBytes: zero-filled on creation, distinct storage per secret, moves transfer
// ownership, and a freed slot of the small-secret slabs comes back wiped.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "hmod/crypto.h"
#include "hmod/secret_bytes.h"

namespace hmod {
namespace {

bool AllZero(const SecretBytes& s) {
  const auto b = s.secret();
  return std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; });
}

class SecretBytesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(InitCrypto().ok()); }
};

TEST_F(SecretBytesTest, ManySmallSecretsAreDistinctAndZeroFilled) {
  // More than one 64 KiB slab of 128-byte slots.
  std::vector<SecretBytes> keys;
  std::set<const uint8_t*> seen;
  for (int i = 0; i < 1500; ++i) {
    keys.emplace_back(32 + i % 97);
    ASSERT_TRUE(AllZero(keys.back())) << i;
    ASSERT_TRUE(seen.insert(keys.back().secret().data()).second) << "storage shared at " << i;
  }
  // Writing one secret leaves every other one alone.
  std::fill(keys[700].secret().begin(), keys[700].secret().end(), 0xA5);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (i != 700) ASSERT_TRUE(AllZero(keys[i])) << i;
  }
}

TEST_F(SecretBytesTest, AReusedSlotIsWipedAndARandomSecretIsNot) {
  for (int round = 0; round < 50; ++round) {
    SecretBytes r = SecretBytes::Random(32);
    EXPECT_FALSE(AllZero(r));  // 2^-256 to fail by chance
    std::fill(r.secret().begin(), r.secret().end(), 0xFF);
    r = SecretBytes();  // back to the pool
    SecretBytes fresh(32);
    EXPECT_TRUE(AllZero(fresh)) << round;
  }
}

TEST_F(SecretBytesTest, LargeSecretsAndMovesKeepTheirBytes) {
  SecretBytes big = SecretBytes::Random(4096);
  std::vector<uint8_t> copy(big.secret().begin(), big.secret().end());
  SecretBytes moved(std::move(big));
  EXPECT_TRUE(big.empty());
  EXPECT_TRUE(std::equal(copy.begin(), copy.end(), moved.secret().begin()));
  SecretBytes small = SecretBytes::CopyFrom(std::vector<uint8_t>(40, 7));
  SecretBytes target(16);
  target = std::move(small);
  EXPECT_EQ(target.size(), 40u);
  EXPECT_TRUE(target.Equals(SecretBytes::CopyFrom(std::vector<uint8_t>(40, 7))));
}

}  // namespace
}  // namespace hmod
