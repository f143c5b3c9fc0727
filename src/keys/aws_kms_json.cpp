#include "keys/aws_kms_json.h"

#include <sodium.h>

#include <vector>

namespace hmod::aws {
namespace {
constexpr size_t kMaxServerMessageBytes = 300;
}  // namespace

std::optional<KmsArn> ParseKmsArn(std::string_view s) {
  std::vector<std::string_view> parts;
  for (int i = 0; i < 5; ++i) {
    const auto colon = s.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    parts.push_back(s.substr(0, colon));
    s.remove_prefix(colon + 1);
  }
  if (parts[0] != "arn" || parts[1].empty() || parts[2] != "kms" || parts[3].empty() || parts[4].empty()) {
    return std::nullopt;
  }
  if (s.rfind("key/", 0) != 0 && s.rfind("alias/", 0) != 0) return std::nullopt;
  if (s.find('/') + 1 >= s.size()) return std::nullopt;
  return KmsArn{std::string(parts[3]), std::string(s)};
}

bool IsKeyArn(std::string_view s) {
  auto arn = ParseKmsArn(s);
  return arn && arn->resource.rfind("key/", 0) == 0;
}

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

std::optional<size_t> Base64Decode(const SecureString& b64, MutableByteSpan out) {
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out.data(), out.size(), b64.data(), b64.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != b64.data() + b64.size()) {
    return std::nullopt;
  }
  return len;
}

const SecureString* StringField(const SecureJson& doc, const char* name) {
  if (!doc.is_object()) return nullptr;
  auto it = doc.find(name);
  if (it == doc.end() || !it->is_string()) return nullptr;
  return &it->get_ref<const SecureString&>();
}

}  // namespace hmod::aws
