#include "keys/license_provider.h"

#include <sodium.h>

#include <cstdlib>
#include <cstring>
#include <optional>

#include "hmod/io.h"
#include "keys/wrap_aad.h"
#include "keys/key_line.h"

namespace hmod {
namespace {

constexpr std::string_view kWrapLabel = "hmod/v1 license wrap";
constexpr std::string_view kKdfLabel = "hmod/v1 license";
constexpr std::string_view kLinePrefix = "hmod-license-v1 ";
constexpr size_t kLicenseIdBytes = 16;
constexpr size_t kBlobBytes = kFileIdBytes + kLicenseIdBytes + kAeadNonceBytes + kWrappedDataKeyBytes + kAeadTagBytes;

// K = HKDF-SHA-256(salt = file id, ikm = license key ‖ SHA-256(fingerprint), info = label)
Result<SecretBytes> DeviceKey(const SecretBytes& license_key, const std::string& fingerprint, ByteSpan file_id) {
  SecretBytes ikm(license_key.size() + 32);
  std::copy(license_key.secret().begin(), license_key.secret().end(), ikm.secret().begin());
  const auto fp = Sha256(AsBytes(fingerprint));
  std::copy(fp.begin(), fp.end(), ikm.secret().begin() + static_cast<long>(license_key.size()));
  return Hkdf(HashAlg::kSha256, file_id, ikm.secret(), AsBytes(kKdfLabel), kAeadKeyBytes);
}

class LicenseProvider final : public KeyProvider {
 public:
  LicenseProvider(std::string path, Bytes blob, SecretBytes license_key, std::string fingerprint)
      : path_(std::move(path)), blob_(std::move(blob)), license_key_(std::move(license_key)),
        fingerprint_(std::move(fingerprint)) {}

  std::string provider_id() const override { return "license"; }
  std::string key_id() const override { return HexEncode(LicenseId()); }
  std::string description() const override { return "license:" + path_ + " (" + key_id() + ")"; }
  bool is_local() const override { return true; }

  Result<WrappedKey> Wrap(const SecretBytes&, const WrapContext&) override {
    return MakeError(ErrorCode::kUsage, "license: cannot encrypt; issue licenses with 'hmodctl license issue'");
  }

  std::vector<WrappedKey> ExternalRecords() const override {
    return {WrappedKey{"license", key_id(), blob_}};
  }

  Result<SecretBytes> Unwrap(const WrappedKey& record, const WrapContext& ctx) override {
    if (record.provider_id != "license" || record.key_id != key_id() || record.wrapped != blob_) {
      return MakeError(ErrorCode::kNoMatchingKey, "not this license");
    }
    ByteSpan blob(blob_);
    if (!ConstantTimeEquals(blob.first(kFileIdBytes), ctx.file_id)) {
      return MakeError(ErrorCode::kNoMatchingKey, "this license is for another model");
    }
    HMOD_ASSIGN_OR_RETURN(SecretBytes key, DeviceKey(license_key_, fingerprint_, ctx.file_id));
    HMOD_ASSIGN_OR_RETURN(Aead aead, Aead::Create(Suite::kAes256Gcm, key.secret()));
    const Bytes aad = WrapAad(kWrapLabel, ctx.file_id, LicenseId());
    const size_t at = kFileIdBytes + kLicenseIdBytes;
    SecretBytes dk(kWrappedDataKeyBytes);
    if (!aead.Open(blob.subspan(at, kAeadNonceBytes), aad, blob.subspan(at + kAeadNonceBytes), dk.secret()).ok()) {
      return MakeError(ErrorCode::kAuthFailed,
                       "the license does not open on this device (another device's license, or a wrong license key)");
    }
    return dk;
  }

 private:
  ByteSpan LicenseId() const { return ByteSpan(blob_).subspan(kFileIdBytes, kLicenseIdBytes); }
  std::string path_;
  Bytes blob_;
  SecretBytes license_key_;
  std::string fingerprint_;
};

}  // namespace

Result<std::string> DeviceFingerprint() {
  if (const char* fp = std::getenv("HMOD_DEVICE_FINGERPRINT"); fp && *fp) return std::string(fp);
  HMOD_ASSIGN_OR_RETURN(Bytes id, ReadSmallFile("/etc/machine-id", 256));
  Bytes input(AsBytes("hmod/v1 device").begin(), AsBytes("hmod/v1 device").end());
  input.push_back(0);
  input.insert(input.end(), id.begin(), id.end());
  return HexEncode(Sha256(input));
}

Result<std::string> IssueLicense(const OpenedHeader& opened, const SecretBytes& license_key,
                                 const std::string& device_fingerprint) {
  const auto& file_id = opened.parsed.header.file_id;
  Bytes blob(kBlobBytes);
  std::copy(file_id.begin(), file_id.end(), blob.begin());
  MutableByteSpan b(blob);
  RandomFill(b.subspan(kFileIdBytes, kLicenseIdBytes + kAeadNonceBytes));  // license id, nonce
  HMOD_ASSIGN_OR_RETURN(SecretBytes key, DeviceKey(license_key, device_fingerprint, file_id));
  HMOD_ASSIGN_OR_RETURN(Aead aead, Aead::Create(Suite::kAes256Gcm, key.secret()));
  const Bytes aad = WrapAad(kWrapLabel, file_id, b.subspan(kFileIdBytes, kLicenseIdBytes));
  const size_t at = kFileIdBytes + kLicenseIdBytes;
  HMOD_TRY(aead.Seal(b.subspan(at, kAeadNonceBytes), aad, opened.data_key.secret(), b.subspan(at + kAeadNonceBytes)));
  return "# hmodctl device license: opens one model on one device, with its license key.\n" +
         std::string(kLinePrefix) + HexEncode(blob) + "\n";
}

Result<std::unique_ptr<KeyProvider>> MakeLicenseProvider(const std::string& spec) {
  if (spec.empty()) return MakeError(ErrorCode::kUsage, "license: needs a license file path");
  HMOD_ASSIGN_OR_RETURN(Bytes raw, ReadSmallFile(spec, 4096));
  HMOD_ASSIGN_OR_RETURN(SecretBytes blob_bytes,
                        DecodeKeyLine(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()),
                                      {kLinePrefix, kBlobBytes, "an hmodctl license file",
                                       "licenses come from: hmodctl license issue"},
                                      spec));
  std::optional<Bytes> blob(Bytes(blob_bytes.secret().begin(), blob_bytes.secret().end()));  // not secret
  const char* key_hex = std::getenv("HMOD_LICENSE_KEY");
  if (key_hex == nullptr) {
    return MakeError(ErrorCode::kUsage, "license: needs the license key in $HMOD_LICENSE_KEY");
  }
  SecretBytes key(32);
  size_t n = 0;
  if (sodium_hex2bin(key.secret().data(), key.size(), key_hex, std::strlen(key_hex), nullptr, &n, nullptr) != 0 ||
      n != 32) {
    return MakeError(ErrorCode::kUsage, "$HMOD_LICENSE_KEY must be 64 hex digits");
  }
  HMOD_ASSIGN_OR_RETURN(std::string fingerprint, DeviceFingerprint());
  return std::unique_ptr<KeyProvider>(new LicenseProvider(spec, std::move(*blob), std::move(key), fingerprint));
}

}  // namespace hmod
