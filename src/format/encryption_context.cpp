// Encryption-context rules (FORMAT.md §2.3) and strict UTF-8 validation.
#include "hmod/header.h"

namespace hmod {

bool IsValidUtf8(std::string_view s) {
  // RFC 3629: shortest form only, no surrogates, nothing above U+10FFFF.
  size_t i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  while (i < s.size()) {
    unsigned c = p[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = cp << 6 | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

Status ValidateContext(const EncryptionContext& context) {
  if (context.size() > kMaxContextPairs) {
    return MakeError(ErrorCode::kLimit, "encryption context has more than 64 pairs");
  }
  for (const auto& [k, v] : context) {
    if (k.empty() || k.size() > kMaxContextKeyBytes) {
      return MakeError(ErrorCode::kLimit, "encryption context keys must be 1..256 bytes");
    }
    if (v.size() > kMaxContextValueBytes) {
      return MakeError(ErrorCode::kLimit, "encryption context value for '" + k + "' exceeds 4096 bytes");
    }
    if (!IsValidUtf8(k) || !IsValidUtf8(v)) {
      return MakeError(ErrorCode::kFormat, "encryption context must be valid UTF-8");
    }
  }
  return OkStatus();
}

}  // namespace hmod
