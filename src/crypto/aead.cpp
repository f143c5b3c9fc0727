// AEAD over OpenSSL EVP: AES-256-GCM and ChaCha20-Poly1305 (both ~2x libsodium's speed here).
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>

#include "hmod/crypto.h"

namespace hmod {

struct Aead::State {
  EVP_CIPHER_CTX* seal = nullptr;
  EVP_CIPHER_CTX* open = nullptr;
  ~State() {
    EVP_CIPHER_CTX_free(seal);
    EVP_CIPHER_CTX_free(open);
  }
};

namespace {

// Fetched once per process: through the legacy EVP_aes_256_gcm() handle, OpenSSL 3 looks
// the implementation up by name again at every key setup (an "implicit fetch"), which a
// per-tensor file pays once per tensor and worker. Never freed: contexts may outlive statics.
const EVP_CIPHER* CipherFor(Suite suite) {
  static EVP_CIPHER* const kAes = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  static EVP_CIPHER* const kChaCha = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  switch (suite) {
    case Suite::kAes256Gcm:
      return kAes;
    case Suite::kChaCha20Poly1305:
      return kChaCha;
  }
  return nullptr;
}

Error CryptoError(const char* what) { return MakeError(ErrorCode::kCrypto, what); }

// EVP takes int lengths; chunks are far below INT_MAX but callers may pass anything.
bool FitsInt(size_t n) { return n <= static_cast<size_t>(INT32_MAX); }

}  // namespace

const char* SuiteName(Suite suite) {
  switch (suite) {
    case Suite::kAes256Gcm:
      return "aes-256-gcm";
    case Suite::kChaCha20Poly1305:
      return "chacha20-poly1305";
  }
  return "unknown";
}

Result<Suite> ParseSuiteName(std::string_view name) {
  if (name == "aes-256-gcm") return Suite::kAes256Gcm;
  if (name == "chacha20-poly1305") return Suite::kChaCha20Poly1305;
  return MakeError(ErrorCode::kUsage, "unknown suite '" + std::string(name) + "'",
                   "use aes-256-gcm or chacha20-poly1305");
}

bool IsKnownSuite(uint16_t value) {
  return value == static_cast<uint16_t>(Suite::kAes256Gcm) ||
         value == static_cast<uint16_t>(Suite::kChaCha20Poly1305);
}

Suite DefaultSuite() {
#if defined(__x86_64__) || defined(__i386__)
  // AES-NI and PCLMULQDQ make GCM constant-time and fast; without them prefer ChaCha.
  __builtin_cpu_init();
  if (__builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul")) return Suite::kAes256Gcm;
  return Suite::kChaCha20Poly1305;
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRYPTO)
  return Suite::kAes256Gcm;
#else
  return Suite::kChaCha20Poly1305;
#endif
}

Aead::Aead(Suite suite, std::unique_ptr<State> state) : suite_(suite), state_(std::move(state)) {}
Aead::Aead(Aead&&) noexcept = default;
Aead& Aead::operator=(Aead&&) noexcept = default;
Aead::~Aead() = default;

Result<Aead> Aead::Create(Suite suite, ByteSpan key) {
  if (key.size() != kAeadKeyBytes) {
    return MakeError(ErrorCode::kCrypto, "AEAD key must be 32 bytes");
  }
  if (!IsKnownSuite(static_cast<uint16_t>(suite))) return MakeError(ErrorCode::kUnsupported, "unknown AEAD suite");
  const EVP_CIPHER* cipher = CipherFor(suite);
  if (cipher == nullptr) return CryptoError("the crypto library has no such AEAD");
  auto state = std::make_unique<State>();
  state->seal = EVP_CIPHER_CTX_new();
  state->open = EVP_CIPHER_CTX_new();
  if (!state->seal || !state->open) return CryptoError("EVP_CIPHER_CTX_new failed");
  // Set cipher and key once; each call then only sets the nonce.
  if (EVP_EncryptInit_ex(state->seal, cipher, nullptr, key.data(), nullptr) != 1 ||
      EVP_DecryptInit_ex(state->open, cipher, nullptr, key.data(), nullptr) != 1) {
    return CryptoError("AEAD key setup failed");
  }
  return Aead(suite, std::move(state));
}

Status Aead::Seal(ByteSpan nonce, ByteSpan aad, ByteSpan plaintext, MutableByteSpan out) {
  if (nonce.size() != kAeadNonceBytes || out.size() != plaintext.size() + kAeadTagBytes ||
      !FitsInt(plaintext.size()) || !FitsInt(aad.size())) {
    return CryptoError("AEAD seal: bad sizes");
  }
  EVP_CIPHER_CTX* c = state_->seal;
  int len = 0;
  if (EVP_EncryptInit_ex(c, nullptr, nullptr, nullptr, nonce.data()) != 1) {
    return CryptoError("AEAD seal: nonce setup failed");
  }
  if (!aad.empty() &&
      EVP_EncryptUpdate(c, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) {
    return CryptoError("AEAD seal: AAD failed");
  }
  if (!plaintext.empty() && EVP_EncryptUpdate(c, out.data(), &len, plaintext.data(),
                                              static_cast<int>(plaintext.size())) != 1) {
    return CryptoError("AEAD seal failed");
  }
  if (EVP_EncryptFinal_ex(c, out.data() + plaintext.size(), &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, kAeadTagBytes,
                          out.data() + plaintext.size()) != 1) {
    return CryptoError("AEAD seal: tag failed");
  }
  return OkStatus();
}

Status Aead::Open(ByteSpan nonce, ByteSpan aad, ByteSpan ciphertext, MutableByteSpan out) {
  if (ciphertext.size() < kAeadTagBytes) {
    return MakeError(ErrorCode::kAuthFailed, "ciphertext shorter than its tag");
  }
  const size_t n = ciphertext.size() - kAeadTagBytes;
  if (nonce.size() != kAeadNonceBytes || out.size() != n || !FitsInt(n) || !FitsInt(aad.size())) {
    return CryptoError("AEAD open: bad sizes");
  }
  EVP_CIPHER_CTX* c = state_->open;
  int len = 0;
  // The tag must be set before Final; copy it since EVP takes a non-const pointer.
  uint8_t tag[kAeadTagBytes];
  std::memcpy(tag, ciphertext.data() + n, kAeadTagBytes);
  bool ok = EVP_DecryptInit_ex(c, nullptr, nullptr, nullptr, nonce.data()) == 1 &&
            (aad.empty() ||
             EVP_DecryptUpdate(c, nullptr, &len, aad.data(), static_cast<int>(aad.size())) == 1) &&
            (n == 0 || EVP_DecryptUpdate(c, out.data(), &len, ciphertext.data(),
                                         static_cast<int>(n)) == 1) &&
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, kAeadTagBytes, tag) == 1 &&
            EVP_DecryptFinal_ex(c, out.data() + n, &len) == 1;
  if (!ok) {
    // Release nothing that was not authenticated.
    if (!out.empty()) OPENSSL_cleanse(out.data(), out.size());
    return MakeError(ErrorCode::kAuthFailed, "authentication failed");
  }
  return OkStatus();
}

}  // namespace hmod
