// Wycheproof AES-GCM and ChaCha20-Poly1305 vectors through hmod::Aead.
//
// Aead takes only 32-byte keys and 96-bit nonces with 128-bit tags, so each vector falls
// in one of three kinds: supported (sealed and opened), or with a nonce or key size that
// Aead must refuse. Every kind's count is asserted so that no vector is skipped silently.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "hmod/crypto.h"
#include "support/wycheproof.h"

namespace hmod::testing {
namespace {

using ::testing::Each;
using wycheproof::Describe;
using wycheproof::Hex;
using wycheproof::Integer;
using wycheproof::IsValid;
using wycheproof::Json;
using wycheproof::ToHex;
using wycheproof::VectorFile;

enum class Kind { kSupported, kBadNonceSize, kBadKeySize };

Kind Classify(const Json& group) {
  if (Integer(group, "keySize") != static_cast<int64_t>(8 * kAeadKeyBytes)) {
    return Kind::kBadKeySize;
  }
  if (Integer(group, "ivSize") != static_cast<int64_t>(8 * kAeadNonceBytes)) {
    return Kind::kBadNonceSize;
  }
  return Kind::kSupported;
}

struct Counts {
  size_t valid = 0, invalid = 0;
  size_t total() const { return valid + invalid; }
};

// Runs `check(group, test)` under a trace on every test of `kind`; counts what ran.
template <typename Check>
Counts ForEachOfKind(const VectorFile& file, Kind kind, Check check) {
  Counts counts;
  for (const Json& group : file.groups()) {
    if (Classify(group) != kind) continue;
    for (const Json& test : group.at("tests")) {
      SCOPED_TRACE(Describe(test));
      check(group, test);
      ++(IsValid(test) ? counts.valid : counts.invalid);
    }
  }
  return counts;
}

// The group's declared sizes must match the hex, or the classification above is wrong.
void CheckDeclaredSizes(const Json& group, const Json& test) {
  EXPECT_EQ(Hex(test, "key").size() * 8, static_cast<size_t>(Integer(group, "keySize")));
  EXPECT_EQ(Hex(test, "iv").size() * 8, static_cast<size_t>(Integer(group, "ivSize")));
}

Bytes Concat(const Bytes& a, const Bytes& b) {
  Bytes out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

// Valid: Seal gives exactly ct ‖ tag and Open gives back msg. Invalid: Open fails with
// kAuthFailed and leaves the output all zero.
void CheckSupported(Suite suite, const Json& group, const Json& test) {
  CheckDeclaredSizes(group, test);
  ASSERT_EQ(Integer(group, "tagSize"), 8 * static_cast<int64_t>(kAeadTagBytes));
  ASSERT_EQ(Hex(test, "tag").size(), kAeadTagBytes);
  const Bytes iv = Hex(test, "iv"), aad = Hex(test, "aad"), msg = Hex(test, "msg");
  const Bytes sealed_expected = Concat(Hex(test, "ct"), Hex(test, "tag"));
  auto aead = Aead::Create(suite, Hex(test, "key"));
  ASSERT_TRUE(aead.ok()) << aead.error().message;

  // Pre-filled so that "wiped" and "never written" can be told apart.
  Bytes opened(sealed_expected.size() - kAeadTagBytes, 0xAA);
  const Status open = aead->Open(iv, aad, sealed_expected, opened);
  if (IsValid(test)) {
    Bytes sealed(msg.size() + kAeadTagBytes);
    const Status seal = aead->Seal(iv, aad, msg, sealed);
    ASSERT_TRUE(seal.ok()) << seal.error().message;
    EXPECT_EQ(ToHex(sealed), ToHex(sealed_expected));
    ASSERT_TRUE(open.ok()) << open.error().message;
    EXPECT_EQ(ToHex(opened), ToHex(msg));
  } else {
    ASSERT_FALSE(open.ok());
    EXPECT_EQ(open.error().code, ErrorCode::kAuthFailed);
    EXPECT_THAT(opened, Each(0)) << "plaintext of a forged message was released";
  }
}

// A 32-byte key with a nonce that is not 96 bits: Seal and Open must refuse the nonce.
void CheckNonceRejected(Suite suite, const Json& group, const Json& test) {
  CheckDeclaredSizes(group, test);
  const Bytes iv = Hex(test, "iv"), aad = Hex(test, "aad"), msg = Hex(test, "msg");
  ASSERT_NE(iv.size(), kAeadNonceBytes);
  auto aead = Aead::Create(suite, Hex(test, "key"));
  ASSERT_TRUE(aead.ok()) << aead.error().message;
  Bytes sealed(msg.size() + kAeadTagBytes);
  EXPECT_FALSE(aead->Seal(iv, aad, msg, sealed).ok());
  // The AES-GCM ones are genuine encryptions under that nonce, so an Aead that passed the
  // nonce length through would open them. The ChaCha20-Poly1305 ones carry no ciphertext:
  // only Seal can be checked there.
  const Bytes tag = Hex(test, "tag");
  if (tag.empty()) return;
  ASSERT_EQ(tag.size(), kAeadTagBytes);
  const Bytes ciphertext = Concat(Hex(test, "ct"), tag);
  Bytes opened(ciphertext.size() - kAeadTagBytes);
  EXPECT_FALSE(aead->Open(iv, aad, ciphertext, opened).ok());
}

// An AES-128 or AES-192 key: Create must refuse it.
void CheckKeyRejected(Suite suite, const Json& group, const Json& test) {
  CheckDeclaredSizes(group, test);
  const Bytes key = Hex(test, "key");
  ASSERT_NE(key.size(), kAeadKeyBytes);
  EXPECT_FALSE(Aead::Create(suite, key).ok());
}

class WycheproofAead : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(InitCrypto().ok()); }
};
using WycheproofAesGcm = WycheproofAead;
using WycheproofChaCha20Poly1305 = WycheproofAead;

TEST_F(WycheproofAesGcm, Aes256With96BitNonce) {
  const auto file = VectorFile::Load("aes_gcm_test.json");
  const Counts n = ForEachOfKind(file, Kind::kSupported, [](const Json& g, const Json& t) {
    CheckSupported(Suite::kAes256Gcm, g, t);
  });
  EXPECT_EQ(n.valid, 39u);
  EXPECT_EQ(n.invalid, 27u);  // modified tags
}

TEST_F(WycheproofAesGcm, Aes256WithOtherNonceSizesIsRejected) {
  const auto file = VectorFile::Load("aes_gcm_test.json");
  const Counts n = ForEachOfKind(file, Kind::kBadNonceSize, [](const Json& g, const Json& t) {
    CheckNonceRejected(Suite::kAes256Gcm, g, t);
  });
  EXPECT_EQ(n.total(), 39u);  // 0-, 8..80-, 120..2056-bit IVs
}

TEST_F(WycheproofAesGcm, Aes128And192KeysAreRejected) {
  const auto file = VectorFile::Load("aes_gcm_test.json");
  const Counts n = ForEachOfKind(file, Kind::kBadKeySize, [](const Json& g, const Json& t) {
    CheckKeyRejected(Suite::kAes256Gcm, g, t);
  });
  EXPECT_EQ(n.total(), 211u);
  EXPECT_EQ(66u + 39u + n.total(), file.number_of_tests());  // the three kinds cover the file
}

TEST_F(WycheproofChaCha20Poly1305, All96BitNonceVectors) {
  const auto file = VectorFile::Load("chacha20_poly1305_test.json");
  const Counts n = ForEachOfKind(file, Kind::kSupported, [](const Json& g, const Json& t) {
    CheckSupported(Suite::kChaCha20Poly1305, g, t);
  });
  EXPECT_EQ(n.valid, 256u);
  EXPECT_EQ(n.invalid, 60u);  // modified tags
}

TEST_F(WycheproofChaCha20Poly1305, InvalidNonceSizesAreRejected) {
  const auto file = VectorFile::Load("chacha20_poly1305_test.json");
  const Counts n =
      ForEachOfKind(file, Kind::kBadNonceSize, [&file](const Json& g, const Json& t) {
        EXPECT_TRUE(file.HasFlag(t, "InvalidNonceSize"));
        CheckNonceRejected(Suite::kChaCha20Poly1305, g, t);
      });
  EXPECT_EQ(n.total(), 9u);
  EXPECT_EQ(316u + n.total(), file.number_of_tests());  // no group has another key size
}

}  // namespace
}  // namespace hmod::testing
