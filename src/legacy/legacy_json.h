// The small JSON subset legacy metadata needs (docs/LEGACY.md §3), parsed strictly with
// bounds, members kept in file order; and Python's json.dumps() of a flat string map, byte
// for byte, because ENVMODEL's AAD is exactly that serialisation.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hmod/result.h"

namespace hmod::legacy {

struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  std::string text;  // kString: decoded UTF-8; kNumber: the literal as written
  std::string key;                 // the member's name, when this value is an object member
  // kObject, in file order, each with its `key`. (Not pair<string, JsonValue>: a pair needs
  // the complete type, and clang with libstdc++ rejects it here.)
  std::vector<JsonValue> members;
  std::vector<JsonValue> items;    // kArray

  // The member named `name`, or nullptr.
  const JsonValue* Find(std::string_view name) const;
};

// Parses one JSON value filling all of `text` (surrounding whitespace allowed). Rejects
// duplicate keys, lone surrogates, invalid UTF-8, control characters in strings, NaN and
// Infinity, and nesting deeper than 32. kFormat naming `what` and the byte offset.
Result<JsonValue> ParseJson(std::string_view text, const std::string& what);

// json.dumps(d) of CPython 3 with default arguments, for a dict of str -> str in insertion
// order: "{" + ", ".join(key ": " value) + "}", strings with ensure_ascii escaping.
std::string PythonJsonDumps(const std::vector<std::pair<std::string, std::string>>& pairs);

}  // namespace hmod::legacy
