// Primitives over OpenSSL EVP and libsodium: AEAD, HKDF, HMAC, SHA-256/512, randomness.
// Nothing here is home-made; these are thin, checked wrappers.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "hmod/result.h"
#include "hmod/secret_bytes.h"

namespace hmod {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;
using MutableByteSpan = std::span<uint8_t>;

inline ByteSpan AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Payload suites (FORMAT.md §2.1). The numeric values are on the wire.
enum class Suite : uint16_t {
  kAes256Gcm = 0x0001,
  kChaCha20Poly1305 = 0x0002,
};

inline constexpr size_t kAeadKeyBytes = 32;
inline constexpr size_t kAeadNonceBytes = 12;
inline constexpr size_t kAeadTagBytes = 16;

// "aes-256-gcm" / "chacha20-poly1305".
const char* SuiteName(Suite suite);
// Parses the CLI name; nullopt-like error for anything else.
Result<Suite> ParseSuiteName(std::string_view name);
// True if `value` is a suite id this build implements.
bool IsKnownSuite(uint16_t value);
// AES-256-GCM when the CPU has AES instructions, else ChaCha20-Poly1305.
Suite DefaultSuite();

// An AEAD bound to one 32-byte key. The EVP context is created once and reused, so
// per-call cost is one key-schedule-free init. Not thread-safe: use one per thread.
class Aead {
 public:
  static Result<Aead> Create(Suite suite, ByteSpan key);
  Aead(Aead&&) noexcept;
  Aead& operator=(Aead&&) noexcept;
  ~Aead();

  Suite suite() const { return suite_; }

  // Encrypts `plaintext` into `out` (size plaintext.size() + 16: ciphertext ‖ tag).
  // `out` may alias `plaintext` exactly (in place).
  Status Seal(ByteSpan nonce, ByteSpan aad, ByteSpan plaintext, MutableByteSpan out);
  // Decrypts `ciphertext` (ciphertext ‖ tag) into `out` (size ciphertext.size() - 16).
  // On failure returns kAuthFailed and wipes `out`: no unauthenticated byte is released.
  Status Open(ByteSpan nonce, ByteSpan aad, ByteSpan ciphertext, MutableByteSpan out);

 private:
  struct State;
  Aead(Suite suite, std::unique_ptr<State> state);
  Suite suite_;
  std::unique_ptr<State> state_;
};

enum class HashAlg { kSha256, kSha512 };

// HKDF (RFC 5869) over OpenSSL's EVP_KDF. Output goes straight into SecretBytes.
Result<SecretBytes> HkdfExtract(HashAlg hash, ByteSpan salt, ByteSpan ikm);
Result<SecretBytes> HkdfExpand(HashAlg hash, ByteSpan prk, ByteSpan info, size_t length);
Result<SecretBytes> Hkdf(HashAlg hash, ByteSpan salt, ByteSpan ikm, ByteSpan info, size_t length);

std::array<uint8_t, 32> Sha256(ByteSpan data);
std::array<uint8_t, 64> Sha512(ByteSpan data);
std::array<uint8_t, 32> HmacSha256(ByteSpan key, ByteSpan data);

// Incremental SHA-256, for hashing streams.
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;
  void Update(ByteSpan data);
  std::array<uint8_t, 32> Finish();

 private:
  void* ctx_;
};

// Constant-time equality of two equal-length spans (false if lengths differ).
bool ConstantTimeEquals(ByteSpan a, ByteSpan b);
// Fills `out` from the OS CSPRNG (libsodium randombytes_buf).
void RandomFill(MutableByteSpan out);
Bytes RandomBytes(size_t n);

std::string HexEncode(ByteSpan bytes);
Result<Bytes> HexDecode(std::string_view hex);

// Must be called once before any other function here (initialises libsodium).
// Safe to call repeatedly and from several threads.
Status InitCrypto();

}  // namespace hmod
