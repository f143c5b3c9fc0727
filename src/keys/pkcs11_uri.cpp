#include "keys/pkcs11_uri.h"

#include <charconv>
#include <vector>

namespace hmod {
namespace {

constexpr std::string_view kScheme = "pkcs11:";

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// RFC 7512 pk11-res-avail, plus "&" in the path or "/", "?", "|" in the query.
bool IsAllowedUnencoded(unsigned char c, bool in_query) {
  if (IsUnreserved(c)) return true;
  if (std::string_view(":[]@!$'()*+,=").find(static_cast<char>(c)) != std::string_view::npos) return true;
  return in_query ? (c == '/' || c == '?' || c == '|') : c == '&';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "'name'", built by appending (GCC 12 misreports `"'" + std::string(...)` under -Wrestrict).
std::string Quoted(std::string_view name) {
  std::string s;
  s.reserve(name.size() + 2);
  s += '\'';
  s += name;
  s += '\'';
  return s;
}

Error UriError(std::string message, std::string hint = {}) {
  if (hint.empty()) hint = "RFC 7512 form: pkcs11:token=LABEL;object=KEY?module-path=/path/to/module.so&pin-source=file:/path/to/pin";
  return MakeError(ErrorCode::kUsage, "pkcs11 URI: " + message, std::move(hint));
}

// Decodes one attribute value. `shown` is false for secrets: the message then never
// quotes the value or the offending character.
Result<std::string> Decode(std::string_view name, std::string_view raw, bool in_query, bool shown) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    const auto c = static_cast<unsigned char>(raw[i]);
    if (c == '%') {
      const int hi = i + 1 < raw.size() ? HexValue(raw[i + 1]) : -1;
      const int lo = i + 2 < raw.size() ? HexValue(raw[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return UriError(Quoted(name) + " has a '%' that is not followed by two hex digits",
                        "write a literal '%' as %25");
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (IsAllowedUnencoded(c, in_query)) {
      out.push_back(static_cast<char>(c));
    } else {
      std::string what = Quoted(name) + " has a character that must be percent-encoded";
      if (shown) {
        what += (c >= 0x21 && c < 0x7f) ? std::string(": '") + static_cast<char>(c) + "'"
                                        : ": byte " + std::to_string(c);
      }
      return UriError(what, "percent-encode it, e.g. a space as %20, ';' as %3B, '&' in a query as %26");
    }
  }
  return out;
}

bool IsAttributeName(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
      return false;
    }
  }
  return true;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t end = s.find(sep, start);
    parts.push_back(s.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

template <typename T>
Status SetOnce(std::optional<T>& slot, std::string_view name, T value) {
  if (slot) return UriError(Quoted(name) + " is given twice", "give each attribute at most once");
  slot = std::move(value);
  return OkStatus();
}

bool ParseDecimal(std::string_view s, unsigned long max, unsigned long& out) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && out <= max;
}

Status SetPathAttribute(Pkcs11Uri& uri, std::string_view name, std::string value) {
  using std::string;
  if (name == "token") return SetOnce(uri.token, name, std::move(value));
  if (name == "manufacturer") return SetOnce(uri.manufacturer, name, std::move(value));
  if (name == "serial") return SetOnce(uri.serial, name, std::move(value));
  if (name == "model") return SetOnce(uri.model, name, std::move(value));
  if (name == "object") return SetOnce(uri.object, name, std::move(value));
  if (name == "library-manufacturer") return SetOnce(uri.library_manufacturer, name, std::move(value));
  if (name == "library-description") return SetOnce(uri.library_description, name, std::move(value));
  if (name == "slot-manufacturer") return SetOnce(uri.slot_manufacturer, name, std::move(value));
  if (name == "slot-description") return SetOnce(uri.slot_description, name, std::move(value));
  if (name == "id") return SetOnce(uri.id, name, Bytes(value.begin(), value.end()));
  if (name == "slot-id") {
    unsigned long id = 0;
    if (!ParseDecimal(value, ~0UL, id)) {
      return UriError("slot-id must be a decimal number, not " + Quoted(value));
    }
    return SetOnce(uri.slot_id, name, id);
  }
  if (name == "library-version") {
    const auto dot = value.find('.');
    unsigned long major = 0, minor = 0;
    if (!ParseDecimal(std::string_view(value).substr(0, dot), 255, major) ||
        (dot != string::npos && !ParseDecimal(std::string_view(value).substr(dot + 1), 255, minor))) {
      return UriError("library-version must be MAJOR or MAJOR.MINOR (each 0-255), not " + Quoted(value));
    }
    return SetOnce(uri.library_version, name, std::move(value));
  }
  if (name == "type") {
    if (value != "public" && value != "private" && value != "cert" && value != "secret-key" && value != "data") {
      return UriError("type must be public, private, cert, secret-key or data, not " + Quoted(value));
    }
    return SetOnce(uri.type, name, std::move(value));
  }
  return UriError("unknown path attribute " + Quoted(name),
                  "known: token, manufacturer, serial, model, object, id, type, slot-id, slot-description, "
                  "slot-manufacturer, library-manufacturer, library-description, library-version; "
                  "module-path, module-name, pin-source and pin-value go after '?'");
}

Status SetQueryAttribute(Pkcs11Uri& uri, std::string_view name, std::string value) {
  if (name == "module-path") return SetOnce(uri.module_path, name, std::move(value));
  if (name == "module-name") return SetOnce(uri.module_name, name, std::move(value));
  if (name == "pin-source") return SetOnce(uri.pin_source, name, std::move(value));
  if (name == "pin-value") return SetOnce(uri.pin_value, name, std::move(value));
  return OkStatus();  // unknown query attributes are for other consumers
}

}  // namespace

std::string Pkcs11PercentEncode(ByteSpan bytes, bool encode_all) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (uint8_t b : bytes) {
    if (!encode_all && IsUnreserved(b)) {
      out.push_back(static_cast<char>(b));
    } else {
      out += {'%', kHex[b >> 4], kHex[b & 15]};
    }
  }
  return out;
}

Result<Pkcs11Uri> ParsePkcs11Uri(std::string_view text) {
  if (text.substr(0, kScheme.size()) != kScheme) return UriError("must start with 'pkcs11:'");
  text.remove_prefix(kScheme.size());
  if (text.find('#') != std::string_view::npos) {
    return UriError("a fragment ('#') is not allowed", "percent-encode '#' as %23");
  }
  const size_t q = text.find('?');
  const std::string_view path = text.substr(0, q);
  Pkcs11Uri uri;
  if (!path.empty()) {
    for (std::string_view attr : Split(path, ';')) {
      const size_t eq = attr.find('=');
      const std::string_view name = attr.substr(0, eq);
      if (eq == std::string_view::npos || !IsAttributeName(name)) {
        return UriError("path part " + Quoted(attr) + " is not NAME=VALUE",
                        "separate path attributes with ';' and put nothing between two ';'");
      }
      HMOD_ASSIGN_OR_RETURN(std::string value, Decode(name, attr.substr(eq + 1), false, true));
      HMOD_TRY(SetPathAttribute(uri, name, std::move(value)));
    }
  }
  if (q != std::string_view::npos && q + 1 < text.size()) {
    for (std::string_view attr : Split(text.substr(q + 1), '&')) {
      const size_t eq = attr.find('=');
      const std::string_view name = attr.substr(0, eq);
      if (eq == std::string_view::npos || !IsAttributeName(name)) {
        // The part may hold a PIN: name only the position, never the text.
        return UriError("a query part is not NAME=VALUE",
                        "separate query attributes with '&' and put nothing between two '&'");
      }
      HMOD_ASSIGN_OR_RETURN(std::string value, Decode(name, attr.substr(eq + 1), true, name != "pin-value"));
      HMOD_TRY(SetQueryAttribute(uri, name, std::move(value)));
    }
  }
  if (uri.pin_source && uri.pin_value) {
    return UriError("give either pin-source or pin-value, not both");
  }
  if (uri.module_path && uri.module_name) {
    return UriError("give either module-path or module-name, not both");
  }
  return uri;
}

std::string FormatPkcs11UriPath(const Pkcs11Uri& uri) {
  std::string out(kScheme);
  bool first = true;
  auto add = [&](std::string_view name, ByteSpan value, bool encode_all = false) {
    if (!first) out.push_back(';');
    first = false;
    out.append(name);
    out.push_back('=');
    out += Pkcs11PercentEncode(value, encode_all);
  };
  auto add_text = [&](std::string_view name, const std::optional<std::string>& v) {
    if (v) add(name, AsBytes(*v));
  };
  add_text("library-manufacturer", uri.library_manufacturer);
  add_text("library-description", uri.library_description);
  add_text("library-version", uri.library_version);
  add_text("slot-manufacturer", uri.slot_manufacturer);
  add_text("slot-description", uri.slot_description);
  if (uri.slot_id) add_text("slot-id", std::to_string(*uri.slot_id));
  add_text("token", uri.token);
  add_text("manufacturer", uri.manufacturer);
  add_text("serial", uri.serial);
  add_text("model", uri.model);
  add_text("object", uri.object);
  if (uri.id) add("id", *uri.id, true);
  add_text("type", uri.type);
  return out;
}

}  // namespace hmod
