#include "legacy/legacy_json.h"

#include <cstdint>
#include <cstdio>

#include "hmod/header.h"

namespace hmod::legacy {
namespace {

constexpr int kMaxDepth = 32;

class Parser {
 public:
  Parser(std::string_view text, const std::string& what) : s_(text), what_(what) {}

  Result<JsonValue> ParseDocument() {
    SkipSpace();
    HMOD_ASSIGN_OR_RETURN(JsonValue v, Value(0));
    SkipSpace();
    if (pos_ != s_.size()) return Fail("trailing bytes after the JSON value");
    return v;
  }

 private:
  Error Fail(const std::string& why) const {
    return MakeError(ErrorCode::kFormat, what_ + ": " + why + " at byte " + std::to_string(pos_));
  }
  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool Eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool Literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  Result<JsonValue> Value(int depth) {
    if (depth > kMaxDepth) return Fail("nested deeper than 32 levels");
    if (pos_ >= s_.size()) return Fail("unexpected end");
    JsonValue v;
    const char c = s_[pos_];
    if (c == '{') {
      ++pos_;
      v.type = JsonValue::Type::kObject;
      SkipSpace();
      if (Eat('}')) return v;
      for (;;) {
        SkipSpace();
        if (pos_ >= s_.size() || s_[pos_] != '"') return Fail("expected a member name");
        HMOD_ASSIGN_OR_RETURN(std::string key, String());
        if (v.Find(key)) return Fail("duplicate key \"" + key + "\"");
        SkipSpace();
        if (!Eat(':')) return Fail("expected ':'");
        SkipSpace();
        HMOD_ASSIGN_OR_RETURN(JsonValue member, Value(depth + 1));
        member.key = std::move(key);
        v.members.push_back(std::move(member));
        SkipSpace();
        if (Eat('}')) return v;
        if (!Eat(',')) return Fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      ++pos_;
      v.type = JsonValue::Type::kArray;
      SkipSpace();
      if (Eat(']')) return v;
      for (;;) {
        SkipSpace();
        HMOD_ASSIGN_OR_RETURN(JsonValue item, Value(depth + 1));
        v.items.push_back(std::move(item));
        SkipSpace();
        if (Eat(']')) return v;
        if (!Eat(',')) return Fail("expected ',' or ']'");
      }
    }
    if (c == '"') {
      v.type = JsonValue::Type::kString;
      HMOD_ASSIGN_OR_RETURN(v.text, String());
      return v;
    }
    if (Literal("true")) {
      v.type = JsonValue::Type::kBool;
      v.boolean = true;
      return v;
    }
    if (Literal("false")) {
      v.type = JsonValue::Type::kBool;
      return v;
    }
    if (Literal("null")) return v;
    if (c == '-' || (c >= '0' && c <= '9')) return Number();
    return Fail("unexpected character");
  }

  // RFC 8259 number grammar.
  Result<JsonValue> Number() {
    const size_t start = pos_;
    auto digits = [&] {
      size_t n = 0;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_, ++n;
      return n;
    };
    Eat('-');
    if (Eat('0')) {
      if (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') return Fail("leading zero in a number");
    } else if (digits() == 0) {
      return Fail("malformed number");
    }
    if (Eat('.') && digits() == 0) return Fail("malformed number");
    if (Eat('e') || Eat('E')) {
      if (!Eat('+')) Eat('-');
      if (digits() == 0) return Fail("malformed number");
    }
    JsonValue v;
    v.type = JsonValue::Type::kNumber;
    v.text = std::string(s_.substr(start, pos_ - start));
    return v;
  }

  Result<uint32_t> Hex4() {
    if (s_.size() - pos_ < 4) return Fail("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = s_[pos_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= static_cast<uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') v |= static_cast<uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= static_cast<uint32_t>(h - 'A' + 10);
      else return Fail("bad \\u escape");
    }
    return v;
  }

  static void AppendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | cp >> 6));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | cp >> 12));
      out.push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | cp >> 18));
      out.push_back(static_cast<char>(0x80 | (cp >> 12 & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  Result<std::string> String() {
    ++pos_;  // the opening quote
    std::string out;
    for (;;) {
      if (pos_ >= s_.size()) return Fail("unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        break;
      }
      if (c < 0x20) return Fail("control character in a string");
      if (c != '\\') {
        out.push_back(static_cast<char>(c));
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= s_.size()) return Fail("unterminated string");
      const char e = s_[pos_++];
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          HMOD_ASSIGN_OR_RETURN(uint32_t cp, Hex4());
          if (cp >= 0xDC00 && cp <= 0xDFFF) return Fail("lone low surrogate");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (!Literal("\\u")) return Fail("lone high surrogate");
            HMOD_ASSIGN_OR_RETURN(uint32_t lo, Hex4());
            if (lo < 0xDC00 || lo > 0xDFFF) return Fail("lone high surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          AppendUtf8(out, cp);
          break;
        }
        default:
          return Fail("bad escape");
      }
    }
    if (!IsValidUtf8(out)) return Fail("string is not valid UTF-8");
    return out;
  }

  std::string_view s_;
  const std::string& what_;
  size_t pos_ = 0;
};

// Next code point of valid UTF-8 at s[i], advancing i.
uint32_t NextCodePoint(std::string_view s, size_t& i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  int n = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
  uint32_t cp = n == 0 ? c : n == 1 ? (c & 0x1F) : n == 2 ? (c & 0x0F) : (c & 0x07);
  ++i;
  for (int k = 0; k < n && i < s.size(); ++k) cp = cp << 6 | (static_cast<unsigned char>(s[i++]) & 0x3F);
  return cp;
}

// CPython's encode_basestring_ascii: '"' and '\\' and \b \f \n \r \t as short escapes,
// printable ASCII as is, everything else \uXXXX (lowercase hex, surrogate pairs above BMP).
void AppendPythonString(std::string& out, std::string_view s) {
  out.push_back('"');
  char buf[16];
  for (size_t i = 0; i < s.size();) {
    const uint32_t cp = NextCodePoint(s, i);
    switch (cp) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      default: break;
    }
    if (cp >= 0x20 && cp <= 0x7E) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x10000) {
      std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      out += buf;
    } else {
      const uint32_t v = cp - 0x10000;
      std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 | (v >> 10), 0xDC00 | (v & 0x3FF));
      out += buf;
    }
  }
  out.push_back('"');
}

}  // namespace

const JsonValue* JsonValue::Find(std::string_view name) const {
  for (const auto& m : members) {
    if (m.key == name) return &m;
  }
  return nullptr;
}

Result<JsonValue> ParseJson(std::string_view text, const std::string& what) { return Parser(text, what).ParseDocument(); }

std::string PythonJsonDumps(const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : pairs) {
    if (!first) out += ", ";
    first = false;
    AppendPythonString(out, k);
    out += ": ";
    AppendPythonString(out, v);
  }
  out += "}";
  return out;
}

}  // namespace hmod::legacy
