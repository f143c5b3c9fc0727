// A strict loader for Wycheproof JSON vector files (tests/vectors/wycheproof/).
//
// Strict means a malformed or half-understood file fails loudly instead of quietly running
// fewer vectors: duplicate keys, a numberOfTests that disagrees with the tests present,
// repeated tcIds, undeclared flags, unknown results, missing fields and bad hex all throw
// std::runtime_error (GoogleTest reports it as a test failure).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "hmod/crypto.h"

namespace hmod::testing::wycheproof {

using Json = nlohmann::json;

class VectorFile {
 public:
  // Loads HMOD_VECTORS_DIR/wycheproof/<file_name> and checks its structure.
  static VectorFile Load(std::string_view file_name);

  const Json& json() const { return root_; }
  const Json& groups() const { return root_.at("testGroups"); }
  // numberOfTests as declared by the file; Load checked that it matches the tests present.
  size_t number_of_tests() const { return number_of_tests_; }

  // True if `test` carries `flag`. Throws if the file declares no such flag, so a typo in
  // a test cannot turn a check into one that never runs.
  bool HasFlag(const Json& test, std::string_view flag) const;

 private:
  std::string name_;
  Json root_;
  size_t number_of_tests_ = 0;
};

// Field accessors: each throws, naming the field, if it is missing or of the wrong type.
const std::string& String(const Json& object, std::string_view key);
int64_t Integer(const Json& object, std::string_view key);
// Lowercase hex only, as Wycheproof writes it.
Bytes Hex(const Json& object, std::string_view key);
std::optional<Bytes> OptionalHex(const Json& object, std::string_view key);
std::optional<int64_t> OptionalInteger(const Json& object, std::string_view key);

// "valid" -> true, "invalid" -> false. "acceptable" (and anything else) throws: none of
// our files uses it, and a test must not guess which way such a vector should go.
bool IsValid(const Json& test);

// "tcId 12 (comment) [flags]", for SCOPED_TRACE.
std::string Describe(const Json& test);

// Lowercase hex of `bytes`, for readable assertion messages.
std::string ToHex(ByteSpan bytes);

}  // namespace hmod::testing::wycheproof
