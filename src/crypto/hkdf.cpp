// HKDF (RFC 5869) over OpenSSL's EVP_KDF. libsodium 1.0.18 has none.
#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "hmod/crypto.h"

namespace hmod {
namespace {

const char* DigestName(HashAlg hash) { return hash == HashAlg::kSha256 ? "SHA256" : "SHA512"; }
size_t DigestBytes(HashAlg hash) { return hash == HashAlg::kSha256 ? 32 : 64; }

Result<SecretBytes> Derive(HashAlg hash, int mode, ByteSpan salt, ByteSpan key, ByteSpan info,
                           size_t length) {
  if (length == 0 || length > 255 * DigestBytes(hash)) {
    return MakeError(ErrorCode::kCrypto, "HKDF output length out of range");
  }
  // Fetched once per process (a per-tensor file derives a key per tensor); never freed.
  static EVP_KDF* const kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (!kdf) return MakeError(ErrorCode::kCrypto, "HKDF unavailable");
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  if (!ctx) return MakeError(ErrorCode::kCrypto, "HKDF context allocation failed");

  // OpenSSL rejects a null pointer even for an empty octet string; point at a dummy byte.
  static const uint8_t kEmpty = 0;
  auto octets = [](ByteSpan s) {
    return const_cast<uint8_t*>(s.empty() ? &kEmpty : s.data());
  };
  OSSL_PARAM params[6];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                                 const_cast<char*>(DigestName(hash)), 0);
  params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, octets(key), key.size());
  if (mode != EVP_KDF_HKDF_MODE_EXPAND_ONLY) {
    params[n++] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, octets(salt), salt.size());
  }
  if (mode != EVP_KDF_HKDF_MODE_EXTRACT_ONLY) {
    params[n++] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, octets(info), info.size());
  }
  params[n] = OSSL_PARAM_construct_end();

  SecretBytes out(length);
  const int rc = EVP_KDF_derive(ctx, out.secret().data(), length, params);
  EVP_KDF_CTX_free(ctx);
  if (rc != 1) return MakeError(ErrorCode::kCrypto, "HKDF derivation failed");
  return out;
}

}  // namespace

Result<SecretBytes> HkdfExtract(HashAlg hash, ByteSpan salt, ByteSpan ikm) {
  return Derive(hash, EVP_KDF_HKDF_MODE_EXTRACT_ONLY, salt, ikm, {}, DigestBytes(hash));
}

Result<SecretBytes> HkdfExpand(HashAlg hash, ByteSpan prk, ByteSpan info, size_t length) {
  return Derive(hash, EVP_KDF_HKDF_MODE_EXPAND_ONLY, {}, prk, info, length);
}

Result<SecretBytes> Hkdf(HashAlg hash, ByteSpan salt, ByteSpan ikm, ByteSpan info,
                         size_t length) {
  return Derive(hash, EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND, salt, ikm, info, length);
}

}  // namespace hmod
