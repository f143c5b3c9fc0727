// AWS KMS calls beyond the aws-kms key provider: key rotation (`hmodctl kms rotation`) and
// the raw Decrypt that legacy ENVMODEL files need (docs/LEGACY.md). Same conventions as the
// provider: credentials, region and endpoint from keys/aws_config.h, SigV4 and retries from
// keys/aws_http.h, AWS errors mapped to hmod error codes with a hint.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hmod/crypto.h"
#include "hmod/result.h"
#include "hmod/secret_bytes.h"
#include "keys/aws_config.h"

namespace hmod::aws {

// Checks a key given as a key id, key ARN, alias/NAME or alias ARN; an "aws-kms:" prefix is
// tolerated and removed. Returns the key and sets `region_hint` to an ARN's region. kUsage.
Result<std::string> NormalizeKmsKey(std::string key, std::string& region_hint);

struct KeyRotationStatus {
  std::string key_arn;  // from DescribeKey
  bool enabled = false;
  std::optional<int> period_days;           // absent when KMS does not say (moto)
  std::string next_rotation_date;           // ISO 8601 or empty
  std::string on_demand_rotation_start;     // ISO 8601 or empty
};

struct KeyRotation {
  std::string key_id;
  std::string rotation_date;  // ISO 8601
  std::string rotation_type;  // "AUTOMATIC" or "ON_DEMAND"
};

// One KMS endpoint with resolved credentials. Not thread-safe.
class KmsClient {
 public:
  // Resolves the configuration for `region_hint` (empty: the usual variables) from `env`.
  static Result<std::unique_ptr<KmsClient>> Create(const std::string& region_hint, const EnvFn& env);
  ~KmsClient();

  const ServiceConfig& config() const;

  // DescribeKey: the key ARN of `key` (id, ARN or alias).
  Result<std::string> KeyArn(const std::string& key);
  Status EnableKeyRotation(const std::string& key, std::optional<int> period_days);
  Result<KeyRotationStatus> GetKeyRotationStatus(const std::string& key);
  // RotateKeyOnDemand; returns the key id KMS names.
  Result<std::string> RotateKeyOnDemand(const std::string& key);
  // ListKeyRotations, every page (bounded).
  Result<std::vector<KeyRotation>> ListKeyRotations(const std::string& key);

  // Decrypt of a symmetric ciphertext blob with `context` as the EncryptionContext, for a
  // plaintext of exactly `expected_bytes`. `key` may be empty (KMS finds the key in the blob).
  // Sets `key_arn` to the key that decrypted. kAuthFailed if KMS refuses the blob or context.
  Result<SecretBytes> Decrypt(ByteSpan blob, const std::vector<std::pair<std::string, std::string>>& context,
                              const std::string& key, size_t expected_bytes, std::string& key_arn);

 private:
  struct State;
  explicit KmsClient(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace hmod::aws
