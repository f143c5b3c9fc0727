// Ed25519 publisher signatures over per-tensor .hmod files (FORMAT.md §6.5), and the
// signing-key files that hold them (FORMAT.md §5.1).
#pragma once

#include <array>
#include <string>

#include "hmod/crypto.h"
#include "hmod/header.h"
#include "hmod/io.h"
#include "hmod/tensor_index.h"

namespace hmod {

using Ed25519PublicKey = std::array<uint8_t, 32>;

struct SigningKey {
  SecretBytes secret;  // libsodium's 64-byte form (seed ‖ public key)
  Ed25519PublicKey public_key{};
};

// Creates `path` (mode 0600, the secret key) and `path + ".pub"` (the public key). Refuses
// to overwrite either. Returns the public key.
Result<Ed25519PublicKey> GenerateSigningKeyFiles(const std::string& path);
// Loads a secret signing key (refused unless mode 0600).
Result<SigningKey> LoadSigningKey(const std::string& path);
// Loads a public key file ("hmod-ed25519-public-v1 <64 hex>").
Result<Ed25519PublicKey> LoadPublicKey(const std::string& path);

// The 133-byte trailer for a file whose header region is `region` and whose bytes between
// the region and the trailer hash to `body_digest`.
Result<Bytes> MakeSignatureTrailer(const SigningKey& key, ByteSpan region,
                                   const std::array<uint8_t, 32>& body_digest);

// Checks a signed file with the publisher's public key alone: reads the whole file once to
// recompute both digests. kAuthFailed if the signature, the key or a digest does not match;
// kUsage if the file is not signed.
Status VerifyFileSignature(const PositionalSource& file, const ParsedHeader& parsed,
                           const Ed25519PublicKey& expected);

// Checks the trailer's form and that its signature verifies under the key it names, over the
// body digest it records (no body hashing). Readers with a decryption key run this so that
// no byte of a signed file can change unnoticed; provenance needs VerifyFileSignature.
Status CheckSignatureTrailer(const PositionalSource& file, const ParsedHeader& parsed);

}  // namespace hmod
