#include "keys/key_line.h"

#include <sodium.h>

#include <optional>

namespace hmod {

Result<SecretBytes> DecodeKeyLine(std::string_view text, const KeyLineFormat& format, const std::string& where) {
  const std::string at = where.empty() ? "" : where + ": ";
  auto malformed = [&] {
    return MakeError(ErrorCode::kKeyFile,
                     at + "not " + std::string(format.kind) + " (expected one line '" + std::string(format.prefix) +
                         "<" + std::to_string(2 * format.bytes) + " hex digits>')",
                     std::string(format.hint));
  };
  std::optional<SecretBytes> value;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line.front() == '#') continue;
    if (value || line.substr(0, format.prefix.size()) != format.prefix ||
        line.size() != format.prefix.size() + 2 * format.bytes) {
      return malformed();
    }
    const std::string_view hex = line.substr(format.prefix.size());
    SecretBytes decoded(format.bytes);
    size_t n = 0;
    if (sodium_hex2bin(decoded.secret().data(), decoded.size(), hex.data(), hex.size(), nullptr, &n, nullptr) != 0 ||
        n != format.bytes) {
      return malformed();
    }
    value = std::move(decoded);
  }
  if (!value) return MakeError(ErrorCode::kKeyFile, at + "no key line in it", std::string(format.hint));
  return std::move(*value);
}

}  // namespace hmod
