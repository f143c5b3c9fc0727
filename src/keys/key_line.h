// The one-key-line text files (FORMAT.md §5.1, §5.6, §5.7, §6.5): a single "PREFIX<hex>" line
// among blank lines and '#' comments. One parser for key files, x25519 identities, signing
// keys and licenses.
#pragma once

#include <string>
#include <string_view>

#include "hmod/result.h"
#include "hmod/secret_bytes.h"

namespace hmod {

struct KeyLineFormat {
  std::string_view prefix;  // "hmod-key-v1 "
  size_t bytes;             // decoded length: the line holds exactly 2 × bytes hex digits
  std::string_view kind;    // "an hmodctl key file", for "not an hmodctl key file"
  std::string_view hint;    // how to make a good one
};

// Decodes the key line of `text` into secure memory. kKeyFile, prefixed by `where` (a path,
// or empty), for anything else: no key line, two of them, another line, bad hex or length.
// The decoded value is never copied outside SecretBytes.
Result<SecretBytes> DecodeKeyLine(std::string_view text, const KeyLineFormat& format, const std::string& where);

}  // namespace hmod
