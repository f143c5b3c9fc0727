#include "keys/file_provider.h"

#include "hmod/key_file.h"
#include "keys/wrap_aad.h"

namespace hmod {
namespace {

constexpr std::string_view kWrapLabel = "hmod/v1 file wrap";
constexpr std::string_view kKdfLabel = "hmod/v1 file kek";
constexpr size_t kRecordBytes = kAeadNonceBytes + kWrappedDataKeyBytes + kAeadTagBytes;

class FileProvider final : public KeyProvider {
 public:
  FileProvider(std::string path, SecretBytes wrap_key, std::string fingerprint)
      : path_(std::move(path)), wrap_key_(std::move(wrap_key)), fingerprint_(std::move(fingerprint)) {}

  std::string provider_id() const override { return "file"; }
  std::string key_id() const override { return fingerprint_; }
  std::string description() const override { return "file:" + path_ + " (" + fingerprint_ + ")"; }
  bool is_local() const override { return true; }

  Result<WrappedKey> Wrap(const SecretBytes& data_key, const WrapContext& ctx) override {
    HMOD_ASSIGN_OR_RETURN(Aead aead, Aead::Create(Suite::kAes256Gcm, wrap_key_.secret()));
    WrappedKey wk{"file", fingerprint_, Bytes(kRecordBytes)};
    MutableByteSpan rec(wk.wrapped);
    RandomFill(rec.first(kAeadNonceBytes));
    const Bytes aad = WrapAad(kWrapLabel, ctx.file_id, AsBytes(fingerprint_));
    HMOD_TRY(aead.Seal(rec.first(kAeadNonceBytes), aad, data_key.secret(),
                       rec.subspan(kAeadNonceBytes)));
    return wk;
  }

  Result<SecretBytes> Unwrap(const WrappedKey& record, const WrapContext& ctx) override {
    if (record.provider_id != "file" || record.key_id != fingerprint_) {
      return MakeError(ErrorCode::kNoMatchingKey, "not this key");
    }
    // Exact length before any crypto (age's lesson on partitioning oracles).
    if (record.wrapped.size() != kRecordBytes) {
      return MakeError(ErrorCode::kAuthFailed, "file-wrapped key has the wrong length");
    }
    HMOD_ASSIGN_OR_RETURN(Aead aead, Aead::Create(Suite::kAes256Gcm, wrap_key_.secret()));
    ByteSpan rec(record.wrapped);
    const Bytes aad = WrapAad(kWrapLabel, ctx.file_id, AsBytes(fingerprint_));
    SecretBytes dk(kWrappedDataKeyBytes);
    HMOD_TRY(aead.Open(rec.first(kAeadNonceBytes), aad, rec.subspan(kAeadNonceBytes), dk.secret()));
    return dk;
  }

 private:
  std::string path_;
  SecretBytes wrap_key_;
  std::string fingerprint_;
};

}  // namespace

Result<std::unique_ptr<KeyProvider>> MakeFileProvider(const std::string& path) {
  if (path.empty()) return MakeError(ErrorCode::kUsage, "file: needs a path", "e.g. --kek file:model.key");
  HMOD_ASSIGN_OR_RETURN(SecretBytes kek, LoadKeyFile(path));
  // The KEK itself never touches a data key: wrap under a key derived for that purpose.
  HMOD_ASSIGN_OR_RETURN(SecretBytes wrap_key,
                        Hkdf(HashAlg::kSha256, {}, kek.secret(), AsBytes(kKdfLabel), 32));
  return std::unique_ptr<KeyProvider>(
      new FileProvider(path, std::move(wrap_key), KeyFingerprint(kek)));
}

}  // namespace hmod
