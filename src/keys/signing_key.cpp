// Ed25519 signing-key files: "hmod-ed25519-secret-v1 <seed hex>" (0600) and
// "hmod-ed25519-public-v1 <public key hex>".
#include <sodium.h>
#include <unistd.h>

#include <optional>

#include "hmod/signature.h"
#include "keys/key_line.h"

namespace hmod {
namespace {

constexpr std::string_view kSecretPrefix = "hmod-ed25519-secret-v1 ";
constexpr std::string_view kPublicPrefix = "hmod-ed25519-public-v1 ";

constexpr std::string_view kSigningHint = "create one with: hmodctl keygen --ed25519 -o NAME";

}  // namespace

Result<Ed25519PublicKey> GenerateSigningKeyFiles(const std::string& path) {
  SigningKey key{SecretBytes(crypto_sign_SECRETKEYBYTES), {}};
  SecretBytes seed = SecretBytes::Random(crypto_sign_SEEDBYTES);
  crypto_sign_seed_keypair(key.public_key.data(), key.secret.secret().data(), seed.secret().data());
  std::string secret_text =
      "# hmodctl Ed25519 signing key. Keep it secret: it signs models in your name.\n"
      "# public key: " + HexEncode(key.public_key) + "\n" + std::string(kSecretPrefix) +
      HexEncode(seed.secret()) + "\n";
  const std::string public_text = std::string(kPublicPrefix) + HexEncode(key.public_key) + "\n";
  if (::access((path + ".pub").c_str(), F_OK) == 0) {
    sodium_memzero(secret_text.data(), secret_text.size());
    return MakeError(ErrorCode::kIo, "output " + path + ".pub already exists");
  }
  Status st = WriteNewPrivateFile(path, AsBytes(secret_text));
  sodium_memzero(secret_text.data(), secret_text.size());
  HMOD_TRY(st);
  HMOD_ASSIGN_OR_RETURN(auto pub, AtomicFile::Create(path + ".pub", 0644, false));
  HMOD_TRY(pub->Write(AsBytes(public_text)));
  HMOD_TRY(pub->Commit());
  return key.public_key;
}

Result<SigningKey> LoadSigningKey(const std::string& path) {
  HMOD_TRY(CheckPrivateFileMode(path));
  HMOD_ASSIGN_OR_RETURN(Bytes raw, ReadSmallFile(path, 4096));
  auto seed = DecodeKeyLine(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()),
                            {kSecretPrefix, crypto_sign_SEEDBYTES, "an hmodctl Ed25519 signing key file", kSigningHint},
                            path);
  sodium_memzero(raw.data(), raw.size());
  HMOD_TRY(seed);
  SigningKey key{SecretBytes(crypto_sign_SECRETKEYBYTES), {}};
  crypto_sign_seed_keypair(key.public_key.data(), key.secret.secret().data(), seed->secret().data());
  return key;
}

Result<Ed25519PublicKey> LoadPublicKey(const std::string& path) {
  HMOD_ASSIGN_OR_RETURN(Bytes raw, ReadSmallFile(path, 4096));
  HMOD_ASSIGN_OR_RETURN(SecretBytes bytes,
                        DecodeKeyLine(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()),
                                      {kPublicPrefix, 32, "an hmodctl Ed25519 public key file", kSigningHint}, path));
  Ed25519PublicKey pk{};
  std::copy(bytes.secret().begin(), bytes.secret().end(), pk.begin());
  return pk;
}

}  // namespace hmod
