#include "keys/aws_kms_provider.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <spdlog/spdlog.h>

#include "keys/aws_http.h"
#include "keys/aws_kms_json.h"
#include "keys/wrap_aad.h"

namespace hmod {
namespace {

using aws::Base64Decode;
using aws::Base64Encode;
using aws::IsKeyArn;
using aws::kMaxKeySpecBytes;
using aws::ParseKmsArn;
using aws::Sanitize;
using aws::SecureJson;
using aws::SecureString;
using aws::StringField;

constexpr std::string_view kProviderId = "aws-kms";
constexpr std::string_view kReservedPrefix = "hmod:";    // FORMAT.md §2.3
constexpr std::string_view kFileIdKey = "hmod:file-id";  // FORMAT.md §5.5

class AwsKmsProvider final : public KeyProvider {
 public:
  AwsKmsProvider(std::string key, aws::ServiceConfig cfg)
      : key_(std::move(key)), cfg_(std::move(cfg)), http_(cfg_.retry, cfg_.ca_bundle) {
    if (IsKeyArn(key_)) key_arn_ = key_;
  }

  std::string provider_id() const override { return std::string(kProviderId); }
  std::string key_id() const override { return key_arn_.empty() ? key_ : key_arn_; }
  std::string description() const override {
    std::string d = "aws-kms:" + key_;
    if (!key_arn_.empty() && key_arn_ != key_) d += " (" + key_arn_ + ")";
    return d;
  }
  bool is_local() const override { return false; }

  Result<WrappedKey> Wrap(const SecretBytes& data_key, const WrapContext& ctx) override {
    if (data_key.size() != kWrappedDataKeyBytes) {
      return MakeError(ErrorCode::kCrypto, "aws-kms wraps 32-byte data keys only");
    }
    HMOD_ASSIGN_OR_RETURN(SecureJson context, KmsContext(ctx, /*writing=*/true));
    SecureJson request = SecureJson::object();
    request["KeyId"] = SecureString(key_id());
    request["Plaintext"] = Base64Encode(data_key.secret());
    request["EncryptionContext"] = std::move(context);
    request["EncryptionAlgorithm"] = "SYMMETRIC_DEFAULT";
    HMOD_ASSIGN_OR_RETURN(SecureJson answer, Call("Encrypt", request));

    const SecureString* blob = StringField(answer, "CiphertextBlob");
    const SecureString* arn = StringField(answer, "KeyId");
    if (!blob || !arn || !IsKeyArn(*arn)) return Unexpected("Encrypt");
    WrappedKey wk{std::string(kProviderId), std::string(*arn), Bytes(blob->size())};
    auto len = Base64Decode(*blob, wk.wrapped);
    if (!len || *len == 0) return Unexpected("Encrypt");
    wk.wrapped.resize(*len);
    // FORMAT.md §2.4: a record is at most 4096 bytes.
    if (wk.wrapped.size() > kMaxWrappedKeyBytes) {
      return MakeError(ErrorCode::kLimit, "AWS KMS returned a " + std::to_string(wk.wrapped.size()) +
                                              "-byte ciphertext; the format allows 4096");
    }
    if (wk.key_id.size() > kMaxKeyIdBytes) return Unexpected("Encrypt");
    if (key_arn_.empty()) key_arn_ = wk.key_id;  // an alias resolves once
    return wk;
  }

  Result<SecretBytes> Unwrap(const WrappedKey& record, const WrapContext& ctx) override {
    if (record.provider_id != kProviderId) return MakeError(ErrorCode::kNoMatchingKey, "not this key");
    // FORMAT.md §5.5 step 1: only a record for our own key ARN, compared byte for byte. A
    // provider named by key ARN decides without any network access.
    HMOD_ASSIGN_OR_RETURN(std::string arn, ResolveKeyArn());
    if (record.key_id != arn) return MakeError(ErrorCode::kNoMatchingKey, "not this key");
    // Step 2.
    HMOD_ASSIGN_OR_RETURN(SecureJson context, KmsContext(ctx, /*writing=*/false));
    if (record.wrapped.empty() || record.wrapped.size() > kMaxWrappedKeyBytes) {
      return MakeError(ErrorCode::kAuthFailed, "aws-kms record has the wrong length");
    }
    // Step 3.
    SecureJson request = SecureJson::object();
    request["KeyId"] = SecureString(arn);
    request["CiphertextBlob"] = Base64Encode(record.wrapped);
    request["EncryptionContext"] = std::move(context);
    request["EncryptionAlgorithm"] = "SYMMETRIC_DEFAULT";
    HMOD_ASSIGN_OR_RETURN(SecureJson answer, Call("Decrypt", request));

    // Step 4.
    const SecureString* plaintext = StringField(answer, "Plaintext");
    const SecureString* answer_arn = StringField(answer, "KeyId");
    if (!plaintext || !answer_arn) return Unexpected("Decrypt");
    if (*answer_arn != SecureString(arn)) {
      return MakeError(ErrorCode::kAuthFailed, "AWS KMS decrypted the record with another key (" +
                                                   Sanitize(*answer_arn) + ")");
    }
    SecretBytes data_key(kWrappedDataKeyBytes);
    auto len = Base64Decode(*plaintext, data_key.secret());
    if (!len || *len != kWrappedDataKeyBytes) {
      return MakeError(ErrorCode::kAuthFailed, "the aws-kms record does not hold a 32-byte data key");
    }
    return data_key;
  }

 private:
  // FORMAT.md §5.5: the file's context plus "hmod:file-id".
  Result<SecureJson> KmsContext(const WrapContext& ctx, bool writing) const {
    SecureJson context = SecureJson::object();
    if (ctx.context) {
      for (const auto& [k, v] : *ctx.context) {
        if (k.rfind(kReservedPrefix, 0) == 0) {
          if (writing) {
            return MakeError(ErrorCode::kUsage,
                             "encryption context key '" + k + "' is reserved (keys beginning with 'hmod:')",
                             "rename the context key");
          }
          return MakeError(ErrorCode::kAuthFailed,
                           "the file's encryption context holds the reserved key '" + k + "'",
                           "no conforming writer makes such a file (FORMAT.md §2.3)");
        }
        context[SecureString(k)] = SecureString(v);
      }
    }
    context[SecureString(kFileIdKey)] = SecureString(HexEncode(ctx.file_id));
    return context;
  }

  // The key ARN of our key: as given, or resolved once with DescribeKey.
  Result<std::string> ResolveKeyArn() {
    if (!key_arn_.empty()) return key_arn_;
    SecureJson request = SecureJson::object();
    request["KeyId"] = SecureString(key_);
    HMOD_ASSIGN_OR_RETURN(SecureJson answer, Call("DescribeKey", request));
    auto meta = answer.find("KeyMetadata");
    if (meta == answer.end() || !meta->is_object()) return Unexpected("DescribeKey");
    const SecureString* arn = StringField(*meta, "Arn");
    if (!arn || !IsKeyArn(*arn) || arn->size() > kMaxKeyIdBytes) return Unexpected("DescribeKey");
    const std::string who = "AWS KMS key '" + key_ + "' (" + std::string(*arn) + ")";
    if (const SecureString* state = StringField(*meta, "KeyState"); state && *state != "Enabled") {
      return MakeError(ErrorCode::kIo, who + " is " + Sanitize(*state) + ", not Enabled",
                       *state == "Disabled" ? "enable it (aws kms enable-key) or use another --kek"
                                            : "use another --kek");
    }
    if (const SecureString* usage = StringField(*meta, "KeyUsage"); usage && *usage != "ENCRYPT_DECRYPT") {
      return MakeError(ErrorCode::kUsage, who + " has key usage " + Sanitize(*usage) + ", not ENCRYPT_DECRYPT",
                       "aws-kms needs a symmetric encryption key (SYMMETRIC_DEFAULT)");
    }
    if (const SecureString* spec = StringField(*meta, "KeySpec"); spec && *spec != "SYMMETRIC_DEFAULT") {
      return MakeError(ErrorCode::kUsage, who + " is a " + Sanitize(*spec) + " key",
                       "aws-kms needs a symmetric encryption key (SYMMETRIC_DEFAULT)");
    }
    key_arn_ = std::string(*arn);
    spdlog::debug("aws-kms: {} is {}", key_, key_arn_);
    return key_arn_;
  }

  // One KMS JSON 1.1 call. A 2xx answer is returned as JSON; anything else is mapped.
  Result<SecureJson> Call(const std::string& action, const SecureJson& request) {
    // Once the endpoint has proved unreachable, do not spend the retry budget again for every
    // record of the file.
    if (unreachable_) return *unreachable_;
    SecureString body;
    try {
      body = request.dump(-1, ' ', false, SecureJson::error_handler_t::strict);
    } catch (const std::exception&) {
      return MakeError(ErrorCode::kUsage, "the encryption context is not valid UTF-8");
    }
    const aws::Request http_request{cfg_.endpoint, cfg_.region, "kms", "application/x-amz-json-1.1",
                                    "TrentService." + action, AsBytes(std::string_view(body.data(), body.size()))};
    spdlog::debug("aws-kms: {} {} at {}", action, key_id(), cfg_.endpoint);
    auto response = http_.Post(http_request, cfg_.credentials);
    if (!response.ok()) {
      Error e = response.error();
      e.message = "aws-kms:" + key_ + ": " + e.message;
      if (e.code == ErrorCode::kIo) unreachable_ = e;
      return e;
    }
    if (!response->ok()) return MapError(action, *response);
    SecureJson answer = SecureJson::parse(response->body, nullptr, /*allow_exceptions=*/false);
    if (!answer.is_object()) return Unexpected(action);
    return answer;
  }

  Error Unexpected(const std::string& action) const {
    return MakeError(ErrorCode::kIo, "unexpected answer to KMS " + action + " from " + cfg_.endpoint,
                     "is " + cfg_.endpoint + " (" + cfg_.endpoint_source + ") an AWS KMS endpoint?");
  }

  Error MapError(const std::string& action, const aws::Response& r) const {
    const std::string& code = r.error_code;
    const std::string detail = r.error_message.empty() ? code : code + ": " + Sanitize(r.error_message);
    const std::string key = "'" + key_ + "'";
    const std::string where = " (region " + cfg_.region + ", " + cfg_.endpoint + ")";
    const std::string creds = "the credentials from " + cfg_.credentials.source;
    auto is = [&code](std::initializer_list<const char*> names) {
      return std::any_of(names.begin(), names.end(), [&code](const char* n) { return code == n; });
    };
    if (is({"InvalidCiphertextException", "IncorrectKeyException"})) {
      return MakeError(ErrorCode::kAuthFailed,
                       "AWS KMS refused to decrypt the wrapped key with " + key + ": wrong key or encryption context (" +
                           code + ")",
                       "the file's encryption context or file id differs from when it was encrypted, or the "
                       "record was altered");
    }
    if (is({"NotFoundException"})) {
      return MakeError(ErrorCode::kUsage, "AWS KMS key " + key + " not found" + where,
                       "check the key id or alias, the region, and that " + creds + " belong to the key's account");
    }
    if (is({"DisabledException"})) {
      return MakeError(ErrorCode::kIo, "AWS KMS key " + key + " is disabled" + where,
                       "enable it (aws kms enable-key) or use another --kek");
    }
    if (is({"KMSInvalidStateException", "KeyUnavailableException"})) {
      return MakeError(ErrorCode::kIo, "AWS KMS key " + key + " cannot be used now: " + detail + where,
                       "a key pending deletion or import cannot be used; use another --kek");
    }
    if (is({"InvalidKeyUsageException"})) {
      return MakeError(ErrorCode::kUsage, "AWS KMS key " + key + " cannot encrypt and decrypt: " + detail,
                       "aws-kms needs a symmetric encryption key (SYMMETRIC_DEFAULT)");
    }
    if (is({"SignatureDoesNotMatch", "IncompleteSignature", "InvalidSignatureException"})) {
      return MakeError(ErrorCode::kIo,
                       "access denied: AWS KMS rejected the request signature (" + code + ")" + where,
                       "the secret access key from " + cfg_.credentials.source +
                           " is wrong; also check the system clock");
    }
    if (is({"InvalidClientTokenId", "UnrecognizedClientException", "InvalidAccessKeyId",
            "MissingAuthenticationToken", "MissingAuthenticationTokenException"})) {
      return MakeError(ErrorCode::kIo, "access denied: AWS KMS does not accept the access key id (" + code + ")" +
                                           where,
                       "check " + creds + ", and AWS_SESSION_TOKEN for temporary credentials");
    }
    if (is({"ExpiredToken", "ExpiredTokenException", "RequestExpired", "InvalidToken"})) {
      return MakeError(ErrorCode::kIo, "access denied: the AWS credentials have expired (" + code + ")",
                       "refresh " + creds + "; also check the system clock");
    }
    if (is({"AccessDeniedException", "AccessDenied"})) {
      return MakeError(ErrorCode::kIo, "access denied: AWS KMS refused " + action + " with " + key + ": " + detail,
                       creds + " need kms:" + action + " on this key (key policy or IAM policy)");
    }
    if (aws::IsRetryableErrorCode(code) || r.http_status == 429 || r.http_status >= 500) {
      return MakeError(ErrorCode::kIo,
                       "AWS KMS " + action + " failed after " + std::to_string(r.attempts) + " attempts: HTTP " +
                           std::to_string(r.http_status) + (detail.empty() ? "" : " " + detail) + where,
                       "try again later; AWS_MAX_ATTEMPTS raises the number of attempts (at most 10)");
    }
    return MakeError(ErrorCode::kIo, "AWS KMS " + action + " with " + key + " failed: HTTP " +
                                         std::to_string(r.http_status) + (detail.empty() ? "" : " " + detail) + where);
  }

  const std::string key_;
  std::string key_arn_;  // the key ARN, once known
  aws::ServiceConfig cfg_;
  aws::HttpClient http_;
  std::optional<Error> unreachable_;
};

Result<std::string> CheckKeySpec(const std::string& key, std::string& region_hint) {
  const std::string hint = "aws-kms:KEY takes a key id, key ARN, alias/NAME or alias ARN, e.g. "
                           "aws-kms:alias/models or aws-kms:arn:aws:kms:us-east-1:111122223333:key/1234abcd-...";
  if (key.empty()) return MakeError(ErrorCode::kUsage, "aws-kms: needs a key", hint);
  if (key.size() > kMaxKeySpecBytes ||
      !std::all_of(key.begin(), key.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
    return MakeError(ErrorCode::kUsage, "malformed AWS KMS key '" + Sanitize(key) + "'", hint);
  }
  if (key.rfind("arn:", 0) == 0) {
    auto arn = ParseKmsArn(key);
    if (!arn) return MakeError(ErrorCode::kUsage, "'" + key + "' is not a KMS key or alias ARN", hint);
    region_hint = arn->region;
    return key;
  }
  if (key.rfind("alias/", 0) == 0) {
    if (key.size() == 6) return MakeError(ErrorCode::kUsage, "empty alias name in '" + key + "'", hint);
    return key;
  }
  const bool key_id = std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
  });
  if (!key_id) return MakeError(ErrorCode::kUsage, "malformed AWS KMS key '" + key + "'", hint);
  return key;
}

}  // namespace

Result<std::unique_ptr<KeyProvider>> MakeAwsKmsProvider(const std::string& key, const aws::EnvFn& env) {
  std::string region_hint;
  HMOD_ASSIGN_OR_RETURN(std::string checked, CheckKeySpec(key, region_hint));
  HMOD_ASSIGN_OR_RETURN(aws::ServiceConfig cfg, aws::ResolveServiceConfig("kms", region_hint, env));
  return std::unique_ptr<KeyProvider>(new AwsKmsProvider(std::move(checked), std::move(cfg)));
}

Result<std::unique_ptr<KeyProvider>> MakeAwsKmsProvider(const std::string& key) {
  return MakeAwsKmsProvider(key, aws::ProcessEnv());
}

}  // namespace hmod
