// safetensors parsing: the checks of huggingface/safetensors (safetensors/src/tensor.rs,
// read_metadata and Metadata::validate), plus the README's "begins with '{'" and
// "no duplicate keys" rules, which the reference leaves to serde.
#include <algorithm>
#include <array>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "format/model_file_internal.h"
#include "hmod/header.h"  // IsValidUtf8
#include "hmod/model_file.h"

namespace hmod {
namespace {

using model_internal::Quote;
using model_internal::ShapeString;

Error Malformed(const std::string& what) {
  return MakeError(ErrorCode::kFormat, "safetensors: " + what);
}

struct DtypeBits {
  std::string_view name;
  uint32_t bits;
};

// tensor.rs `enum Dtype` with `bitsize()`: 22 dtypes at safetensors 0.8.0-dev.
constexpr std::array<DtypeBits, 22> kDtypes = {{
    {"BOOL", 8},         {"F4", 4},           {"F6_E2M3", 6}, {"F6_E3M2", 6},
    {"U8", 8},           {"I8", 8},           {"F8_E5M2", 8}, {"F8_E4M3", 8},
    {"F8_E8M0", 8},      {"F8_E4M3FNUZ", 8},  {"F8_E5M2FNUZ", 8},
    {"I16", 16},         {"U16", 16},         {"F16", 16},    {"BF16", 16},
    {"I32", 32},         {"U32", 32},         {"F32", 32},    {"C64", 64},
    {"F64", 64},         {"I64", 64},         {"U64", 64},
}};

// What the header says about one tensor, before validation.
struct RawTensor {
  std::string name;
  std::optional<std::string> dtype;
  std::optional<std::vector<uint64_t>> shape;
  std::optional<std::vector<uint64_t>> offsets;
};

// A SAX handler that checks the header's shape while it is parsed:
//   {"__metadata__": {string: string, ...}?, NAME: {"dtype": s, "shape": [u...],
//    "data_offsets": [u, u], other fields ignored}, ...}
// and rejects duplicate keys in every object (nlohmann's DOM would keep the last one).
class HeaderHandler {
 public:
  using json = nlohmann::json;

  std::vector<RawTensor> tensors;
  std::optional<Error> error;

  bool null() { return Value(Kind::kOther); }
  bool boolean(bool) { return Value(Kind::kOther); }
  bool number_integer(json::number_integer_t) { return Value(Kind::kOther); }
  bool number_unsigned(json::number_unsigned_t v) { return Value(Kind::kUnsigned, v); }
  bool number_float(json::number_float_t, const json::string_t&) { return Value(Kind::kOther); }
  bool string(json::string_t& s) { return Value(Kind::kString, 0, &s); }
  bool binary(json::binary_t&) { return Value(Kind::kOther); }
  bool start_object(std::size_t) { return Value(Kind::kObject); }
  bool start_array(std::size_t) { return Value(Kind::kArray); }

  bool key(json::string_t& k) {
    Frame& f = stack_.back();
    if (!f.keys.insert(k).second) {
      switch (f.role) {
        case Role::kTop:
          return Fail("duplicate tensor name " + Quote(k));
        case Role::kMetadata:
          return Fail("duplicate __metadata__ key " + Quote(k));
        case Role::kTensor:
          return Fail("tensor " + Quote(tensors.back().name) + ": duplicate field " + Quote(k));
        default:
          return Fail("duplicate JSON key " + Quote(k));
      }
    }
    f.key = k;
    return true;
  }

  bool end_object() {
    if (stack_.back().role == Role::kTensor) {
      const RawTensor& t = tensors.back();
      const char* missing = !t.dtype ? "dtype" : !t.shape ? "shape" : !t.offsets ? "data_offsets" : nullptr;
      if (missing != nullptr) return Fail("tensor " + Quote(t.name) + ": missing " + missing);
    }
    stack_.pop_back();
    return true;
  }
  bool end_array() {
    stack_.pop_back();
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) {
    if (!error) error = Malformed(std::string("header is not valid JSON: ") + ex.what());
    return false;
  }

 private:
  static constexpr size_t kMaxDepth = 128;
  enum class Kind { kString, kUnsigned, kObject, kArray, kOther };
  enum class Role { kTop, kMetadata, kTensor, kShape, kOffsets, kSkip };
  struct Frame {
    Role role;
    std::unordered_set<std::string> keys;  // objects only
    std::string key;                       // the key whose value comes next
  };

  bool Fail(std::string what) {
    if (!error) error = Malformed(std::move(what));
    return false;
  }

  bool Push(Role role) {
    // serde_json's recursion limit; also bounds this stack for a 100 MB header of '['.
    if (stack_.size() >= kMaxDepth) return Fail("header nests deeper than " + std::to_string(kMaxDepth) + " levels");
    stack_.push_back(Frame{role, {}, {}});
    return true;
  }

  bool Value(Kind kind, uint64_t number = 0, std::string* text = nullptr) {
    if (stack_.empty()) {
      if (kind != Kind::kObject) return Fail("header is not a JSON object");
      return Push(Role::kTop);
    }
    Frame& f = stack_.back();
    switch (f.role) {
      case Role::kTop:
        if (f.key == "__metadata__") {
          if (kind != Kind::kObject) return Fail("__metadata__ must be an object of strings");
          return Push(Role::kMetadata);
        }
        if (kind != Kind::kObject) return Fail("tensor " + Quote(f.key) + ": entry is not an object");
        tensors.push_back(RawTensor{f.key, {}, {}, {}});
        return Push(Role::kTensor);
      case Role::kMetadata:
        if (kind != Kind::kString) {
          return Fail("__metadata__ must map strings to strings: value of " + Quote(f.key) +
                      " is not a string");
        }
        return true;
      case Role::kTensor: {
        RawTensor& t = tensors.back();
        if (f.key == "dtype") {
          if (kind != Kind::kString) return Fail("tensor " + Quote(t.name) + ": dtype is not a string");
          t.dtype = std::move(*text);
          return true;
        }
        if (f.key == "shape" || f.key == "data_offsets") {
          if (kind != Kind::kArray) {
            return Fail("tensor " + Quote(t.name) + ": " + f.key + " is not an array");
          }
          const bool shape = f.key == "shape";
          (shape ? t.shape : t.offsets).emplace();
          return Push(shape ? Role::kShape : Role::kOffsets);
        }
        // Unknown fields are ignored, as by the reference (no deny_unknown_fields).
        if (kind == Kind::kObject || kind == Kind::kArray) return Push(Role::kSkip);
        return true;
      }
      case Role::kShape:
      case Role::kOffsets: {
        RawTensor& t = tensors.back();
        const bool shape = f.role == Role::kShape;
        if (kind != Kind::kUnsigned) {
          return Fail("tensor " + Quote(t.name) + ": " + (shape ? "shape" : "data_offsets") +
                      " must hold only non-negative integers below 2^64");
        }
        (shape ? *t.shape : *t.offsets).push_back(number);
        return true;
      }
      case Role::kSkip:
        if (kind == Kind::kObject || kind == Kind::kArray) return Push(Role::kSkip);
        return true;
    }
    return Fail("internal parser state");
  }

  std::vector<Frame> stack_;
};

struct Checked {
  RawTensor* raw;
  uint64_t begin, end;
};

// Validates one entry on its own: dtype, offsets pair, and that the offsets hold exactly
// prod(shape) * bits / 8 bytes (tensor.rs Metadata::validate).
Status CheckEntry(RawTensor& t, Checked& out) {
  const std::string who = "tensor " + Quote(t.name);
  const auto bits = SafetensorsDtypeBits(*t.dtype);
  if (!bits) return Malformed(who + ": unknown dtype " + Quote(*t.dtype));
  if (t.offsets->size() != 2) return Malformed(who + ": data_offsets must be [begin, end]");
  const uint64_t begin = (*t.offsets)[0], end = (*t.offsets)[1];
  if (end < begin) {
    return Malformed(who + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                     "] end before begin");
  }
  // Fold in order like the reference, so a 0 after an overflowing prefix still overflows.
  uint64_t elements = 1;
  for (uint64_t d : *t.shape) {
    if (__builtin_mul_overflow(elements, d, &elements)) {
      return Malformed(who + ": shape " + ShapeString(*t.shape) + " overflows: element count exceeds 2^64");
    }
  }
  uint64_t total_bits;
  if (__builtin_mul_overflow(elements, uint64_t{*bits}, &total_bits)) {
    return Malformed(who + ": shape " + ShapeString(*t.shape) + " of " + *t.dtype +
                     " overflows: bit count exceeds 2^64");
  }
  if (total_bits % 8 != 0) {
    return Malformed(who + ": shape " + ShapeString(*t.shape) + " of " + *t.dtype + " is " +
                     std::to_string(total_bits) + " bits, not a whole number of bytes");
  }
  if (end - begin != total_bits / 8) {
    return Malformed(who + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                     "] hold " + std::to_string(end - begin) + " bytes, but shape " + ShapeString(*t.shape) +
                     " of " + *t.dtype + " needs " + std::to_string(total_bits / 8));
  }
  out = Checked{&t, begin, end};
  return OkStatus();
}

}  // namespace

std::optional<uint32_t> SafetensorsDtypeBits(std::string_view dtype) {
  for (const auto& d : kDtypes) {
    if (d.name == dtype) return d.bits;
  }
  return std::nullopt;
}

Result<ModelLayout> ParseSafetensors(const PositionalSource& file) {
  const uint64_t file_size = file.size();
  if (file_size < 8) {
    return Malformed("file is " + std::to_string(file_size) + " bytes, too short for the header length");
  }
  std::array<uint8_t, 8> len_bytes{};
  HMOD_TRY(file.ReadAt(0, len_bytes));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | len_bytes[i];
  if (n > kMaxSafetensorsHeaderBytes) {
    return Malformed("header length " + std::to_string(n) + " exceeds the limit of " +
                     std::to_string(kMaxSafetensorsHeaderBytes) + " bytes");
  }
  if (n > file_size - 8) {
    return Malformed("header length " + std::to_string(n) + " runs past the end of the file (" +
                     std::to_string(file_size) + " bytes)");
  }
  std::string header(n, '\0');
  HMOD_TRY(file.ReadAt(8, MutableByteSpan(reinterpret_cast<uint8_t*>(header.data()), header.size())));
  if (header.empty() || header[0] != '{') return Malformed("header does not begin with '{'");
  if (!IsValidUtf8(header)) return Malformed("header is not valid UTF-8");
  // JSON has no raw NUL anywhere, but nlohmann's lexer takes one as the end of input,
  // which would let anything after it through.
  if (header.find('\0') != std::string::npos) return Malformed("header is not valid JSON: it contains a NUL byte");

  HeaderHandler handler;
  try {
    // Strict: nothing but whitespace (the writer's space padding) may follow the object.
    const bool ok = nlohmann::json::sax_parse(header.begin(), header.end(), &handler,
                                              nlohmann::json::input_format_t::json, true, false);
    if (!ok || handler.error) {
      return handler.error ? *handler.error : Malformed("header is not valid JSON");
    }
  } catch (const std::exception& e) {  // allocation failure; the SAX path itself does not throw
    return Malformed(std::string("header could not be parsed: ") + e.what());
  }

  std::vector<Checked> entries(handler.tensors.size());
  for (size_t i = 0; i < handler.tensors.size(); ++i) {
    HMOD_TRY(CheckEntry(handler.tensors[i], entries[i]));
  }
  std::sort(entries.begin(), entries.end(), [](const Checked& a, const Checked& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    if (a.end != b.end) return a.end < b.end;
    return a.raw->name < b.raw->name;
  });

  // The buffer must be tiled exactly: no holes (polyglot files), no overlaps.
  uint64_t covered = 0;
  const Checked* prev = nullptr;
  for (const Checked& e : entries) {
    const std::string range = "[" + std::to_string(e.begin) + ", " + std::to_string(e.end) + ")";
    if (e.begin > covered) {
      if (prev == nullptr) {
        return Malformed("gap of " + std::to_string(e.begin) + " bytes before the first tensor " +
                         Quote(e.raw->name) + " " + range + ": data must start at offset 0");
      }
      return Malformed("gap of " + std::to_string(e.begin - covered) + " bytes between tensor " +
                       Quote(prev->raw->name) + " (ends at " + std::to_string(covered) + ") and tensor " +
                       Quote(e.raw->name) + " " + range);
    }
    if (e.begin < covered) {
      return Malformed("tensor " + Quote(e.raw->name) + " " + range + " overlaps tensor " +
                       Quote(prev->raw->name) + " [" + std::to_string(prev->begin) + ", " +
                       std::to_string(prev->end) + ")");
    }
    covered = e.end;
    prev = &e;
  }
  const uint64_t data_start = 8 + n;
  const uint64_t data_bytes = file_size - data_start;
  if (covered > data_bytes) {
    return Malformed("file truncated: tensors need " + std::to_string(covered) + " bytes of data but " +
                     std::to_string(data_bytes) + " follow the header");
  }
  if (covered < data_bytes) {
    return Malformed(std::to_string(data_bytes - covered) + " trailing bytes after the last tensor (data is " +
                     std::to_string(data_bytes) + " bytes, tensors cover " + std::to_string(covered) + ")");
  }

  ModelLayout layout;
  layout.format = ModelFormat::kSafetensors;
  layout.file_size = file_size;
  layout.data_start = data_start;
  layout.tensors.reserve(entries.size());
  for (const Checked& e : entries) {
    RawTensor& raw = *e.raw;  // owned by `handler`, not used again
    layout.tensors.push_back(TensorInfo{std::move(raw.name), std::move(*raw.dtype), std::move(*raw.shape),
                                        data_start + e.begin, e.end - e.begin});
  }
  return layout;
}

}  // namespace hmod
