#include "support/wycheproof.h"

#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace hmod::testing::wycheproof {
namespace {

[[noreturn]] void Fail(const std::string& what) { throw std::runtime_error(what); }

const Json& Field(const Json& object, std::string_view key) {
  if (!object.is_object()) Fail("expected a JSON object holding '" + std::string(key) + "'");
  const auto it = object.find(key);
  if (it == object.end()) Fail("missing field '" + std::string(key) + "'");
  return *it;
}

// nlohmann::json keeps the last of two equal keys; a vector file must not have any.
Json ParseRejectingDuplicateKeys(const std::string& text, const std::string& name) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto on_event = [&](int, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case Json::parse_event_t::object_end:
        open_objects.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!open_objects.back().insert(parsed.get<std::string>()).second && duplicate.empty()) {
          duplicate = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  };
  Json root;
  try {
    root = Json::parse(text, on_event, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const Json::exception& e) {
    Fail(name + ": not valid JSON: " + e.what());
  }
  if (!duplicate.empty()) Fail(name + ": duplicate key '" + duplicate + "'");
  return root;
}

}  // namespace

VectorFile VectorFile::Load(std::string_view file_name) {
  VectorFile file;
  file.name_ = std::string(file_name);
  const std::string path = std::string(HMOD_VECTORS_DIR) + "/wycheproof/" + file.name_;
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("cannot open " + path);
  std::ostringstream text;
  text << in.rdbuf();
  file.root_ = ParseRejectingDuplicateKeys(text.str(), file.name_);

  const Json& root = file.root_;
  const Json& notes = Field(root, "notes");
  if (!notes.is_object()) Fail(file.name_ + ": 'notes' is not an object");
  const int64_t declared = Integer(root, "numberOfTests");
  const Json& groups = Field(root, "testGroups");
  if (!groups.is_array()) Fail(file.name_ + ": 'testGroups' is not an array");

  std::set<int64_t> ids;
  size_t count = 0;
  for (const Json& group : groups) {
    const Json& tests = Field(group, "tests");
    if (!tests.is_array()) Fail(file.name_ + ": a group's 'tests' is not an array");
    for (const Json& test : tests) {
      const int64_t id = Integer(test, "tcId");
      if (!ids.insert(id).second) Fail(file.name_ + ": tcId " + std::to_string(id) + " repeats");
      (void)IsValid(test);  // throws on an unknown result
      const Json& flags = Field(test, "flags");
      if (!flags.is_array()) Fail(Describe(test) + ": 'flags' is not an array");
      for (const Json& flag : flags) {
        if (!flag.is_string() || !notes.contains(flag.get<std::string>())) {
          Fail(Describe(test) + ": flag " + flag.dump() + " is not declared in 'notes'");
        }
      }
      ++count;
    }
  }
  if (declared < 0 || static_cast<size_t>(declared) != count) {
    Fail(file.name_ + ": numberOfTests is " + std::to_string(declared) + " but the file holds " +
         std::to_string(count) + " tests");
  }
  file.number_of_tests_ = count;
  return file;
}

bool VectorFile::HasFlag(const Json& test, std::string_view flag) const {
  if (!root_.at("notes").contains(flag)) {
    Fail(name_ + " declares no flag '" + std::string(flag) + "'");
  }
  for (const Json& f : test.at("flags")) {
    if (f.get<std::string>() == flag) return true;
  }
  return false;
}

const std::string& String(const Json& object, std::string_view key) {
  const Json& value = Field(object, key);
  if (!value.is_string()) Fail("field '" + std::string(key) + "' is not a string");
  return value.get_ref<const std::string&>();
}

int64_t Integer(const Json& object, std::string_view key) {
  const Json& value = Field(object, key);
  if (!value.is_number_integer()) Fail("field '" + std::string(key) + "' is not an integer");
  return value.get<int64_t>();
}

Bytes Hex(const Json& object, std::string_view key) {
  const std::string& hex = String(object, key);
  auto nibble = [&](char c) -> uint8_t {
    if (c >= '0' && c <= '9') return static_cast<uint8_t>(c - '0');
    if (c >= 'a' && c <= 'f') return static_cast<uint8_t>(c - 'a' + 10);
    Fail("field '" + std::string(key) + "' is not lowercase hex");
  };
  if (hex.size() % 2 != 0) Fail("field '" + std::string(key) + "' has odd-length hex");
  Bytes out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<uint8_t>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  }
  return out;
}

std::optional<Bytes> OptionalHex(const Json& object, std::string_view key) {
  if (!object.contains(key)) return std::nullopt;
  return Hex(object, key);
}

std::optional<int64_t> OptionalInteger(const Json& object, std::string_view key) {
  if (!object.contains(key)) return std::nullopt;
  return Integer(object, key);
}

bool IsValid(const Json& test) {
  const std::string& result = String(test, "result");
  if (result == "valid") return true;
  if (result == "invalid") return false;
  Fail("tcId " + std::to_string(Integer(test, "tcId")) + ": unexpected result '" + result + "'");
}

std::string Describe(const Json& test) {
  std::string s = "tcId " + std::to_string(Integer(test, "tcId"));
  if (test.contains("comment")) s.append(" (").append(String(test, "comment")).append(")");
  if (test.contains("flags")) s.append(" ").append(test.at("flags").dump());
  return s;
}

std::string ToHex(ByteSpan bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

}  // namespace hmod::testing::wycheproof
