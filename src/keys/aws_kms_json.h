// What the AWS KMS provider and the KMS admin commands share: JSON in wiped memory, key ARNs,
// base64, and server text made safe to print.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "hmod/crypto.h"
#include "keys/aws_http.h"

namespace hmod::aws {

// JSON whose strings (and the parser's token buffer) live in wiped memory: KMS request and
// response bodies carry data keys in base64.
using SecureJson = nlohmann::basic_json<std::map, std::vector, SecureString>;

inline constexpr size_t kMaxKeySpecBytes = 2048;  // KMS KeyId limit

// "arn:PARTITION:kms:REGION:ACCOUNT:key/ID" or ".../alias/NAME", split.
struct KmsArn {
  std::string region;
  std::string resource;  // "key/ID" or "alias/NAME"
};
std::optional<KmsArn> ParseKmsArn(std::string_view s);
bool IsKeyArn(std::string_view s);  // an ARN of a key, not of an alias

// Server text is printed on a terminal: one line, printable ASCII, bounded.
std::string Sanitize(std::string_view s);

SecureString Base64Encode(ByteSpan bin);
// Decodes strict standard base64 into `out` (at most out.size() bytes); returns the length.
std::optional<size_t> Base64Decode(const SecureString& b64, MutableByteSpan out);

// The string member `name` of an object, or null.
const SecureString* StringField(const SecureJson& doc, const char* name);

}  // namespace hmod::aws
