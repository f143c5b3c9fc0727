// Key providers are named by URI (DESIGN.md "Keys"); this maps a URI to its provider.
#include "hmod/key_provider.h"
#include "keys/aws_kms_provider.h"
#include "keys/file_provider.h"
#include "keys/license_provider.h"
#include "keys/pass_provider.h"
#include "keys/pkcs11_provider.h"
#include "keys/x25519_provider.h"

namespace hmod {

Result<std::unique_ptr<KeyProvider>> ProviderFromUri(const std::string& uri) {
  const auto colon = uri.find(':');
  const std::string scheme = uri.substr(0, colon);
  const std::string rest = colon == std::string::npos ? "" : uri.substr(colon + 1);
  if (colon != std::string::npos && scheme == "file") return MakeFileProvider(rest);
  if (colon != std::string::npos && scheme == "pass") return MakePassProvider(rest);
  if (colon != std::string::npos && scheme == "aws-kms") return MakeAwsKmsProvider(rest);
  if (colon != std::string::npos && scheme == "pkcs11") return MakePkcs11Provider(uri);
  if (colon != std::string::npos && scheme == "x25519") return MakeX25519Provider(rest);
  if (colon != std::string::npos && scheme == "license") return MakeLicenseProvider(rest);
  return MakeError(ErrorCode::kUsage, "unknown key provider '" + uri + "'",
                   "supported: file:PATH, pass:, pass:env=NAME, pass:fd=N, x25519:RECIPIENT|IDENTITY_FILE, license:FILE, pkcs11:TOKEN-AND-KEY?module-path=..., aws-kms:KEY-ARN|alias/NAME");
}

}  // namespace hmod
