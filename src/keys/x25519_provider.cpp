#include "keys/x25519_provider.h"

#include <sodium.h>

#include <algorithm>
#include <optional>

#include "hmod/io.h"
#include "keys/wrap_aad.h"
#include "keys/key_line.h"

namespace hmod {
namespace {

constexpr std::string_view kWrapLabel = "hmod/v1 x25519 wrap";
constexpr std::string_view kIdentityPrefix = "hmod-x25519-identity-v1 ";
constexpr size_t kKeyBytes = crypto_scalarmult_BYTES;
constexpr size_t kRecordBytes = kKeyBytes + kWrappedDataKeyBytes + kAeadTagBytes;
using PublicKey = std::array<uint8_t, kKeyBytes>;

// wrap key = HKDF-SHA-256(salt = ephemeral ‖ recipient, ikm = X25519 shared secret, info = label)
Result<SecretBytes> WrapKey(const SecretBytes& shared, const PublicKey& ephemeral, const PublicKey& recipient) {
  Bytes salt(ephemeral.begin(), ephemeral.end());
  salt.insert(salt.end(), recipient.begin(), recipient.end());
  return Hkdf(HashAlg::kSha256, salt, shared.secret(), AsBytes(kWrapLabel), kAeadKeyBytes);
}

// The wrap key is unique per record (fresh ephemeral key), so a fixed nonce is safe.
constexpr std::array<uint8_t, kAeadNonceBytes> kZeroNonce{};

class X25519Provider final : public KeyProvider {
 public:
  X25519Provider(PublicKey recipient, std::optional<SecretBytes> identity, std::string source)
      : recipient_(recipient), identity_(std::move(identity)), source_(std::move(source)) {}

  std::string provider_id() const override { return "x25519"; }
  std::string key_id() const override { return HexEncode(recipient_); }
  std::string description() const override { return "x25519:" + source_; }
  bool is_local() const override { return true; }

  Result<WrappedKey> Wrap(const SecretBytes& data_key, const WrapContext& ctx) override {
    SecretBytes eph_secret = SecretBytes::Random(kKeyBytes);
    PublicKey eph{};
    crypto_scalarmult_base(eph.data(), eph_secret.secret().data());
    SecretBytes shared(kKeyBytes);
    if (crypto_scalarmult(shared.secret().data(), eph_secret.secret().data(), recipient_.data()) != 0) {
      return MakeError(ErrorCode::kUsage, "x25519 recipient is a low-order point");
    }
    HMOD_ASSIGN_OR_RETURN(SecretBytes key, WrapKey(shared, eph, recipient_));
    HMOD_ASSIGN_OR_RETURN(Aead aead, Aead::Create(Suite::kAes256Gcm, key.secret()));
    WrappedKey wk{"x25519", key_id(), Bytes(kRecordBytes)};
    std::copy(eph.begin(), eph.end(), wk.wrapped.begin());
    const Bytes aad = WrapAad(kWrapLabel, ctx.file_id, recipient_);
    HMOD_TRY(aead.Seal(kZeroNonce, aad, data_key.secret(), MutableByteSpan(wk.wrapped).subspan(kKeyBytes)));
    return wk;
  }

  Result<SecretBytes> Unwrap(const WrappedKey& record, const WrapContext& ctx) override {
    if (record.provider_id != "x25519" || record.key_id != key_id()) {
      return MakeError(ErrorCode::kNoMatchingKey, "not this recipient");
    }
    if (!identity_) {
      return MakeError(ErrorCode::kNoMatchingKey, "a recipient public key cannot decrypt",
                       "use --kek x25519:IDENTITY_FILE");
    }
    if (record.wrapped.size() != kRecordBytes) return MakeError(ErrorCode::kAuthFailed, "x25519 record has the wrong length");
    PublicKey eph{};
    std::copy_n(record.wrapped.begin(), kKeyBytes, eph.begin());
    SecretBytes shared(kKeyBytes);
    if (crypto_scalarmult(shared.secret().data(), identity_->secret().data(), eph.data()) != 0) {
      return MakeError(ErrorCode::kAuthFailed, "x25519 record has a low-order ephemeral key");
    }
    HMOD_ASSIGN_OR_RETURN(SecretBytes key, WrapKey(shared, eph, recipient_));
    HMOD_ASSIGN_OR_RETURN(Aead aead, Aead::Create(Suite::kAes256Gcm, key.secret()));
    const Bytes aad = WrapAad(kWrapLabel, ctx.file_id, recipient_);
    SecretBytes dk(kWrappedDataKeyBytes);
    HMOD_TRY(aead.Open(kZeroNonce, aad, ByteSpan(record.wrapped).subspan(kKeyBytes), dk.secret()));
    return dk;
  }

 private:
  PublicKey recipient_;
  std::optional<SecretBytes> identity_;
  std::string source_;
};

Result<SecretBytes> LoadIdentity(const std::string& path) {
  HMOD_TRY(CheckPrivateFileMode(path));
  HMOD_ASSIGN_OR_RETURN(Bytes raw, ReadSmallFile(path, 4096));
  auto key = DecodeKeyLine(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()),
                           {kIdentityPrefix, kKeyBytes, "an hmodctl x25519 identity file",
                            "create one with: hmodctl keygen --x25519 -o NAME"},
                           path);
  sodium_memzero(raw.data(), raw.size());
  return key;
}

}  // namespace

Result<std::unique_ptr<KeyProvider>> MakeX25519Provider(const std::string& spec) {
  if (spec.size() == 2 * kKeyBytes && spec.find_first_not_of("0123456789abcdef") == std::string::npos) {
    HMOD_ASSIGN_OR_RETURN(Bytes pk, HexDecode(spec));
    PublicKey recipient{};
    std::copy(pk.begin(), pk.end(), recipient.begin());
    return std::unique_ptr<KeyProvider>(new X25519Provider(recipient, std::nullopt, spec.substr(0, 16) + "…"));
  }
  if (spec.empty()) return MakeError(ErrorCode::kUsage, "x25519: needs a recipient (64 hex digits) or an identity file");
  HMOD_ASSIGN_OR_RETURN(SecretBytes identity, LoadIdentity(spec));
  PublicKey recipient{};
  crypto_scalarmult_base(recipient.data(), identity.secret().data());
  return std::unique_ptr<KeyProvider>(new X25519Provider(recipient, std::move(identity), spec));
}

Result<std::string> GenerateX25519Identity(const std::string& path) {
  SecretBytes secret = SecretBytes::Random(kKeyBytes);
  PublicKey pk{};
  crypto_scalarmult_base(pk.data(), secret.secret().data());
  std::string text = "# hmodctl x25519 identity. Keep it secret: it decrypts every model sent to\n"
                     "# recipient x25519:" + HexEncode(pk) + "\n" + std::string(kIdentityPrefix) +
                     HexEncode(secret.secret()) + "\n";
  Status st = WriteNewPrivateFile(path, AsBytes(text));
  sodium_memzero(text.data(), text.size());
  HMOD_TRY(st);
  return "x25519:" + HexEncode(pk);
}

}  // namespace hmod
