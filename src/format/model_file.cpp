// Model format detection and dispatch; helpers shared by the two parsers.
#include <algorithm>
#include <array>
#include <cstring>

#include "format/model_file_internal.h"
#include "hmod/header.h"  // IsValidUtf8
#include "hmod/model_file.h"

namespace hmod {
namespace model_internal {

std::string Quote(std::string_view name) {
  constexpr size_t kMaxShown = 120;
  const bool utf8 = IsValidUtf8(name);
  std::string out = "'";
  for (size_t i = 0; i < name.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7F || (c >= 0x80 && !utf8)) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (name.size() > kMaxShown) out += "...";
  out += "'";
  return out;
}

std::string ShapeString(const std::vector<uint64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

}  // namespace model_internal

namespace {

bool IsJsonSpace(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// A safetensors file begins with a u64 LE header length N that fits in the file and under
// the reference limit, then a header whose first byte is '{', whose next non-space byte opens
// a key or closes the object, and whose last non-space byte is '}'.
Result<bool> LooksLikeSafetensors(const PositionalSource& file) {
  const uint64_t size = file.size();
  if (size < 8 + 2) return false;
  std::array<uint8_t, 8> len_bytes{};
  HMOD_TRY(file.ReadAt(0, len_bytes));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | len_bytes[i];
  if (n < 2 || n > kMaxSafetensorsHeaderBytes || n > size - 8) return false;

  std::array<uint8_t, 64> head{};
  const size_t head_len = static_cast<size_t>(std::min<uint64_t>(n, head.size()));
  HMOD_TRY(file.ReadAt(8, MutableByteSpan(head.data(), head_len)));
  if (head[0] != '{') return false;
  size_t i = 1;
  while (i < head_len && IsJsonSpace(head[i])) ++i;
  if (i < head_len && head[i] != '"' && head[i] != '}') return false;

  // Walk back over the padding to the closing brace.
  std::array<uint8_t, 4096> tail{};
  uint64_t end = 8 + n;
  while (end > 8) {
    const uint64_t len = std::min<uint64_t>(end - 8, tail.size());
    HMOD_TRY(file.ReadAt(end - len, MutableByteSpan(tail.data(), len)));
    for (uint64_t k = len; k-- > 0;) {
      if (!IsJsonSpace(tail[k])) return tail[k] == '}';
    }
    end -= len;
  }
  return false;
}

}  // namespace

const char* ModelFormatName(ModelFormat f) {
  switch (f) {
    case ModelFormat::kSafetensors:
      return "safetensors";
    case ModelFormat::kGguf:
      return "gguf";
  }
  return "unknown";
}

Result<std::optional<ModelFormat>> DetectModelFormat(const PositionalSource& file) {
  if (file.size() >= 8) {
    std::array<uint8_t, 4> magic{};
    HMOD_TRY(file.ReadAt(0, magic));
    if (std::memcmp(magic.data(), "GGUF", 4) == 0) return std::optional<ModelFormat>(ModelFormat::kGguf);
  }
  HMOD_ASSIGN_OR_RETURN(bool safetensors, LooksLikeSafetensors(file));
  if (safetensors) return std::optional<ModelFormat>(ModelFormat::kSafetensors);
  return std::optional<ModelFormat>();
}

Result<ModelLayout> ParseModel(const PositionalSource& file, ModelFormat format) {
  switch (format) {
    case ModelFormat::kSafetensors:
      return ParseSafetensors(file);
    case ModelFormat::kGguf:
      return ParseGguf(file);
  }
  return MakeError(ErrorCode::kUsage, "unknown model format");
}

}  // namespace hmod
