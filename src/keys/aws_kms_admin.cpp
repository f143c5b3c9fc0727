#include "keys/aws_kms_admin.h"

#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "keys/aws_http.h"

namespace hmod::aws {
namespace {

// JSON whose strings live in wiped memory: Decrypt answers carry a data key in base64.
using SecureJson = nlohmann::basic_json<std::map, std::vector, SecureString>;

constexpr size_t kMaxKeySpecBytes = 2048;  // KMS KeyId limit
constexpr size_t kMaxServerMessageBytes = 300;
constexpr int kMaxRotationPages = 100;

std::string Sanitize(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, kMaxServerMessageBytes)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (s.size() > kMaxServerMessageBytes) out += "...";
  return out;
}

SecureString Base64Encode(ByteSpan bin) {
  SecureString out(sodium_base64_ENCODED_LEN(bin.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), bin.data(), bin.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::char_traits<char>::length(out.c_str()));
  return out;
}

const SecureString* StringField(const SecureJson& doc, const char* name) {
  if (!doc.is_object()) return nullptr;
  auto it = doc.find(name);
  if (it == doc.end() || !it->is_string()) return nullptr;
  return &it->get_ref<const SecureString&>();
}

std::string Str(const SecureJson& doc, const char* name) {
  const SecureString* s = StringField(doc, name);
  return s ? Sanitize(std::string_view(s->data(), s->size())) : std::string();
}

// KMS JSON timestamps are seconds since the epoch (a number); some servers send a string.
std::string IsoDate(const SecureJson& doc, const char* name) {
  if (!doc.is_object()) return {};
  auto it = doc.find(name);
  if (it == doc.end()) return {};
  if (it->is_string()) return Str(doc, name);
  if (!it->is_number()) return {};
  const double secs = it->get<double>();
  if (!(secs >= 0 && secs < 253402300800.0)) return {};
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool IsKmsArn(std::string_view s, std::string* region) {
  // arn:PARTITION:kms:REGION:ACCOUNT:key/ID or .../alias/NAME
  std::vector<std::string_view> parts;
  for (int i = 0; i < 5; ++i) {
    const auto colon = s.find(':');
    if (colon == std::string_view::npos) return false;
    parts.push_back(s.substr(0, colon));
    s.remove_prefix(colon + 1);
  }
  if (parts[0] != "arn" || parts[1].empty() || parts[2] != "kms" || parts[3].empty() || parts[4].empty()) return false;
  if (s.rfind("key/", 0) != 0 && s.rfind("alias/", 0) != 0) return false;
  if (s.find('/') + 1 >= s.size()) return false;
  if (region) *region = std::string(parts[3]);
  return true;
}

}  // namespace

Result<std::string> NormalizeKmsKey(std::string key, std::string& region_hint) {
  const std::string hint = "KEY is a key id, key ARN, alias/NAME or alias ARN, e.g. alias/models or "
                           "arn:aws:kms:us-east-1:111122223333:key/1234abcd-...";
  if (key.rfind("aws-kms:", 0) == 0) key.erase(0, 8);
  if (key.empty()) return MakeError(ErrorCode::kUsage, "no AWS KMS key given", hint);
  if (key.size() > kMaxKeySpecBytes ||
      !std::all_of(key.begin(), key.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
    return MakeError(ErrorCode::kUsage, "malformed AWS KMS key '" + Sanitize(key) + "'", hint);
  }
  if (key.rfind("arn:", 0) == 0) {
    if (!IsKmsArn(key, &region_hint)) return MakeError(ErrorCode::kUsage, "'" + key + "' is not a KMS key or alias ARN", hint);
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

struct KmsClient::State {
  ServiceConfig cfg;
  HttpClient http;
  explicit State(ServiceConfig c) : cfg(std::move(c)), http(cfg.retry, cfg.ca_bundle) {}

  Error Unexpected(const std::string& action) const {
    return MakeError(ErrorCode::kIo, "unexpected answer to KMS " + action + " from " + cfg.endpoint,
                     "is " + cfg.endpoint + " (" + cfg.endpoint_source + ") an AWS KMS endpoint?");
  }

  Error MapError(const std::string& action, const std::string& key, const Response& r) const {
    const std::string& code = r.error_code;
    const std::string detail = r.error_message.empty() ? code : code + ": " + Sanitize(r.error_message);
    const std::string k = key.empty() ? std::string("the key") : "'" + key + "'";
    const std::string where = " (region " + cfg.region + ", " + cfg.endpoint + ")";
    const std::string creds = "the credentials from " + cfg.credentials.source;
    auto is = [&code](std::initializer_list<const char*> names) {
      return std::any_of(names.begin(), names.end(), [&code](const char* n) { return code == n; });
    };
    if (is({"InvalidCiphertextException", "IncorrectKeyException"})) {
      return MakeError(ErrorCode::kAuthFailed,
                       "AWS KMS refused to decrypt the wrapped key: wrong key or encryption context (" + code + ")",
                       "the file's metadata (the encryption context) or its wrapped key was altered");
    }
    if (is({"NotFoundException"})) {
      return MakeError(ErrorCode::kUsage, "AWS KMS key " + k + " not found" + where,
                       "check the key id or alias, the region, and that " + creds + " belong to the key's account");
    }
    if (is({"DisabledException"})) {
      return MakeError(ErrorCode::kIo, "AWS KMS key " + k + " is disabled" + where, "enable it (aws kms enable-key)");
    }
    if (is({"UnsupportedOperationException"})) {
      return MakeError(ErrorCode::kUnsupported, "AWS KMS cannot " + action + " key " + k + ": " + detail,
                       "rotation needs a symmetric encryption key with key material generated by KMS");
    }
    if (is({"KMSInvalidStateException", "KeyUnavailableException"})) {
      return MakeError(ErrorCode::kIo, "AWS KMS key " + k + " cannot be used now: " + detail + where);
    }
    if (is({"LimitExceededException"})) {
      return MakeError(ErrorCode::kLimit, "AWS KMS refused " + action + " for " + k + ": " + detail,
                       "on-demand rotations are limited (10 per key); wait or rely on automatic rotation");
    }
    if (is({"ValidationException", "InvalidArnException", "InvalidKeyUsageException"})) {
      return MakeError(ErrorCode::kUsage, "AWS KMS refused " + action + " for " + k + ": " + detail);
    }
    if (is({"SignatureDoesNotMatch", "IncompleteSignature", "InvalidSignatureException"})) {
      return MakeError(ErrorCode::kIo, "access denied: AWS KMS rejected the request signature (" + code + ")" + where,
                       "the secret access key from " + cfg.credentials.source + " is wrong; also check the system clock");
    }
    if (is({"InvalidClientTokenId", "UnrecognizedClientException", "InvalidAccessKeyId",
            "MissingAuthenticationToken", "MissingAuthenticationTokenException", "ExpiredToken",
            "ExpiredTokenException", "RequestExpired", "InvalidToken"})) {
      return MakeError(ErrorCode::kIo, "access denied: AWS KMS does not accept the credentials (" + code + ")" + where,
                       "check " + creds + ", and AWS_SESSION_TOKEN for temporary credentials");
    }
    if (is({"AccessDeniedException", "AccessDenied"})) {
      return MakeError(ErrorCode::kIo, "access denied: AWS KMS refused " + action + " with " + k + ": " + detail,
                       creds + " need kms:" + action + " on this key (key policy or IAM policy)");
    }
    if (IsRetryableErrorCode(code) || r.http_status == 429 || r.http_status >= 500) {
      return MakeError(ErrorCode::kIo,
                       "AWS KMS " + action + " failed after " + std::to_string(r.attempts) + " attempts: HTTP " +
                           std::to_string(r.http_status) + (detail.empty() ? "" : " " + detail) + where,
                       "try again later; AWS_MAX_ATTEMPTS raises the number of attempts (at most 10)");
    }
    return MakeError(ErrorCode::kIo, "AWS KMS " + action + " with " + k + " failed: HTTP " +
                                         std::to_string(r.http_status) + (detail.empty() ? "" : " " + detail) + where);
  }

  Result<SecureJson> Call(const std::string& action, const std::string& key, const SecureJson& request) {
    SecureString body;
    try {
      body = request.dump(-1, ' ', false, SecureJson::error_handler_t::strict);
    } catch (const std::exception&) {
      return MakeError(ErrorCode::kUsage, "the encryption context is not valid UTF-8");
    }
    const Request http_request{cfg.endpoint, cfg.region, "kms", "application/x-amz-json-1.1",
                               "TrentService." + action, AsBytes(std::string_view(body.data(), body.size()))};
    spdlog::debug("aws-kms: {} {} at {}", action, key, cfg.endpoint);
    auto response = http.Post(http_request, cfg.credentials);
    if (!response.ok()) {
      Error e = response.error();
      e.message = "AWS KMS " + action + ": " + e.message;
      return e;
    }
    if (!response->ok()) return MapError(action, key, *response);
    // Some actions answer with an empty body (EnableKeyRotation).
    const std::string_view text(response->body.data(), response->body.size());
    if (text.find_first_not_of(" \r\n\t") == std::string_view::npos || text == "null") return SecureJson::object();
    SecureJson answer = SecureJson::parse(response->body, nullptr, /*allow_exceptions=*/false);
    if (!answer.is_object()) return Unexpected(action);
    return answer;
  }
};

KmsClient::KmsClient(std::unique_ptr<State> state) : state_(std::move(state)) {}
KmsClient::~KmsClient() = default;

const ServiceConfig& KmsClient::config() const { return state_->cfg; }

Result<std::unique_ptr<KmsClient>> KmsClient::Create(const std::string& region_hint, const EnvFn& env) {
  HMOD_ASSIGN_OR_RETURN(ServiceConfig cfg, ResolveServiceConfig("kms", region_hint, env));
  return std::unique_ptr<KmsClient>(new KmsClient(std::make_unique<State>(std::move(cfg))));
}

Result<std::string> KmsClient::KeyArn(const std::string& key) {
  SecureJson request = SecureJson::object();
  request["KeyId"] = SecureString(key);
  HMOD_ASSIGN_OR_RETURN(SecureJson answer, state_->Call("DescribeKey", key, request));
  auto meta = answer.find("KeyMetadata");
  if (meta == answer.end() || !meta->is_object()) return state_->Unexpected("DescribeKey");
  std::string arn = Str(*meta, "Arn");
  if (!IsKmsArn(arn, nullptr)) return state_->Unexpected("DescribeKey");
  return arn;
}

Status KmsClient::EnableKeyRotation(const std::string& key, std::optional<int> period_days) {
  // The rotation APIs take a key id or key ARN, not an alias: resolve first.
  HMOD_ASSIGN_OR_RETURN(std::string arn, KeyArn(key));
  SecureJson request = SecureJson::object();
  request["KeyId"] = SecureString(arn);
  if (period_days) request["RotationPeriodInDays"] = *period_days;
  HMOD_ASSIGN_OR_RETURN(SecureJson answer, state_->Call("EnableKeyRotation", key, request));
  (void)answer;
  return OkStatus();
}

Result<KeyRotationStatus> KmsClient::GetKeyRotationStatus(const std::string& key) {
  KeyRotationStatus status;
  HMOD_ASSIGN_OR_RETURN(status.key_arn, KeyArn(key));
  SecureJson request = SecureJson::object();
  request["KeyId"] = SecureString(status.key_arn);
  HMOD_ASSIGN_OR_RETURN(SecureJson answer, state_->Call("GetKeyRotationStatus", key, request));
  auto enabled = answer.find("KeyRotationEnabled");
  if (enabled == answer.end() || !enabled->is_boolean()) return state_->Unexpected("GetKeyRotationStatus");
  status.enabled = enabled->get<bool>();
  if (auto p = answer.find("RotationPeriodInDays"); p != answer.end() && p->is_number_integer()) {
    status.period_days = p->get<int>();
  }
  status.next_rotation_date = IsoDate(answer, "NextRotationDate");
  status.on_demand_rotation_start = IsoDate(answer, "OnDemandRotationStartDate");
  return status;
}

Result<std::string> KmsClient::RotateKeyOnDemand(const std::string& key) {
  HMOD_ASSIGN_OR_RETURN(std::string arn, KeyArn(key));
  SecureJson request = SecureJson::object();
  request["KeyId"] = SecureString(arn);
  HMOD_ASSIGN_OR_RETURN(SecureJson answer, state_->Call("RotateKeyOnDemand", key, request));
  std::string id = Str(answer, "KeyId");
  return id.empty() ? arn : id;
}

Result<std::vector<KeyRotation>> KmsClient::ListKeyRotations(const std::string& key) {
  HMOD_ASSIGN_OR_RETURN(std::string arn, KeyArn(key));
  std::vector<KeyRotation> out;
  std::string marker;
  for (int page = 0; page < kMaxRotationPages; ++page) {
    SecureJson request = SecureJson::object();
    request["KeyId"] = SecureString(arn);
    if (!marker.empty()) request["Marker"] = SecureString(marker);
    HMOD_ASSIGN_OR_RETURN(SecureJson answer, state_->Call("ListKeyRotations", key, request));
    auto rotations = answer.find("Rotations");
    if (rotations != answer.end()) {
      if (!rotations->is_array()) return state_->Unexpected("ListKeyRotations");
      for (const auto& r : *rotations) {
        out.push_back({Str(r, "KeyId"), IsoDate(r, "RotationDate"), Str(r, "RotationType")});
      }
    }
    auto truncated = answer.find("Truncated");
    if (truncated == answer.end() || !truncated->is_boolean() || !truncated->get<bool>()) return out;
    marker = Str(answer, "NextMarker");
    if (marker.empty()) return out;
  }
  return out;
}

Result<SecretBytes> KmsClient::Decrypt(ByteSpan blob, const std::vector<std::pair<std::string, std::string>>& context,
                                       const std::string& key, size_t expected_bytes, std::string& key_arn) {
  if (blob.empty() || blob.size() > 6144) {
    return MakeError(ErrorCode::kAuthFailed, "the KMS ciphertext blob has an impossible length (" +
                                                 std::to_string(blob.size()) + " bytes)");
  }
  SecureJson request = SecureJson::object();
  if (!key.empty()) request["KeyId"] = SecureString(key);
  request["CiphertextBlob"] = Base64Encode(blob);
  SecureJson ctx = SecureJson::object();
  for (const auto& [k, v] : context) ctx[SecureString(k)] = SecureString(v);
  request["EncryptionContext"] = std::move(ctx);
  HMOD_ASSIGN_OR_RETURN(SecureJson answer, state_->Call("Decrypt", key, request));
  const SecureString* plaintext = StringField(answer, "Plaintext");
  if (!plaintext) return state_->Unexpected("Decrypt");
  key_arn = Str(answer, "KeyId");
  // Decode into a buffer with room for a longer answer, so a wrong length is seen.
  SecretBytes decoded(expected_bytes + 64);
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(decoded.secret().data(), decoded.size(), plaintext->data(), plaintext->size(), nullptr, &len,
                        &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != plaintext->data() + plaintext->size()) {
    return state_->Unexpected("Decrypt");
  }
  if (len != expected_bytes) {
    return MakeError(ErrorCode::kAuthFailed, "AWS KMS returned a " + std::to_string(len) + "-byte key, not " +
                                                 std::to_string(expected_bytes) + " bytes");
  }
  return SecretBytes::CopyFrom(decoded.secret().first(len));
}

}  // namespace hmod::aws
