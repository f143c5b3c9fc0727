// PKCS#11 URIs (RFC 7512): parsing, strict percent-decoding, canonical formatting.
// Pure text handling; nothing here talks to a token (see pkcs11_module.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "hmod/crypto.h"
#include "hmod/result.h"

namespace hmod {

// A parsed "pkcs11:" URI. Every attribute is optional (absent = matches anything); values
// are percent-decoded. Text attributes are compared byte for byte with the token's
// space-padded fields after the padding is removed.
struct Pkcs11Uri {
  // Path attributes: which library, slot, token and object.
  std::optional<std::string> library_manufacturer, library_description;
  std::optional<std::string> library_version;  // "MAJOR" or "MAJOR.MINOR", as written
  std::optional<std::string> slot_manufacturer, slot_description;
  std::optional<unsigned long> slot_id;
  std::optional<std::string> token, manufacturer, serial, model;
  std::optional<std::string> object;  // CKA_LABEL
  std::optional<Bytes> id;            // CKA_ID
  std::optional<std::string> type;    // "public", "private", "cert", "secret-key" or "data"

  // Query attributes: how to load the module and log in. Unknown ones are ignored.
  std::optional<std::string> module_path, module_name;
  std::optional<std::string> pin_source;  // "file:PATH", "file:///PATH" or a bare PATH
  std::optional<std::string> pin_value;   // secret: never formatted, logged or printed

  // True if some path attribute narrows down the token (not just the module or slot).
  bool names_token() const { return token || manufacturer || serial || model; }
};

// Parses `uri`, which must start with "pkcs11:". Fails with kUsage and a message naming the
// offending attribute for: characters RFC 7512 does not allow unencoded, a '%' not followed
// by two hex digits, an unknown path attribute (under RFC 7512's matching rules such a URI
// matches nothing, so it is refused rather than silently finding no key), an attribute
// given twice, a malformed slot-id / library-version / type, a fragment, both pin-source
// and pin-value, or both module-path and module-name. Unknown query attributes are ignored
// (they may be meant for other consumers). An error never quotes a PIN.
Result<Pkcs11Uri> ParsePkcs11Uri(std::string_view uri);

// Formats the path part only (never the query, so never a PIN or module), attributes in the
// fixed order of the struct above, every byte outside RFC 3986 "unreserved" percent-encoded
// in upper-case hex, and `id` always fully percent-encoded. Two URIs naming the same
// attributes format identically.
std::string FormatPkcs11UriPath(const Pkcs11Uri& uri);

// Percent-encodes every byte outside RFC 3986 "unreserved" (A-Z a-z 0-9 - . _ ~).
std::string Pkcs11PercentEncode(ByteSpan bytes, bool encode_all = false);

}  // namespace hmod
