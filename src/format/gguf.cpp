// GGUF parsing (ggml docs/gguf.md; checks after ggml src/gguf.cpp gguf_init_from_file_impl
// and llama.cpp's "data is not within the file bounds").
//
// One deliberate difference from ggml: ggml requires each offset to equal the running sum
// of the previous tensors' padded sizes. We require only what slicing needs (aligned,
// inside the file, no overlaps), so infos in any order and gaps between tensors are fine.
#include <algorithm>
#include <array>
#include <cstring>
#include <unordered_set>

#include "format/model_file_internal.h"
#include "hmod/model_file.h"

namespace hmod {
namespace {

using model_internal::Quote;
using model_internal::ShapeString;

Error Malformed(const std::string& what) { return MakeError(ErrorCode::kFormat, "GGUF: " + what); }

// KV value types (docs/gguf.md gguf_metadata_value_type).
enum ValueType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};
constexpr uint32_t kValueTypeCount = 13;

// Bytes of a fixed-size value type; 0 for string and array.
uint64_t FixedSize(uint32_t type) {
  switch (type) {
    case kU8: case kI8: case kBool: return 1;
    case kU16: case kI16: return 2;
    case kU32: case kI32: case kF32: return 4;
    case kU64: case kI64: case kF64: return 8;
    default: return 0;
  }
}

// The smallest encoding of one value of `type` (for count sanity checks).
uint64_t MinSize(uint32_t type) {
  if (type == kString) return 8;       // u64 length
  if (type == kArray) return 4 + 8;    // element type + count
  return FixedSize(type);
}

// Nested arrays are legal in the spec; bound the recursion.
constexpr int kMaxArrayDepth = 8;

// ggml type table (ggml.h enum ggml_type; block sizes and bytes from ggml.c type_traits /
// ggml-common.h, at ggml d99724f; see shared/research/formats.md §3.3). Ids 4, 5, 31-33
// and 36-38 were removed from ggml and are unknown here.
struct TypeRow {
  uint32_t id;
  GgmlTypeTraits traits;
};
constexpr std::array<TypeRow, 35> kGgmlTypes = {{
    {0, {"F32", 1, 4}},         {1, {"F16", 1, 2}},         {2, {"Q4_0", 32, 18}},
    {3, {"Q4_1", 32, 20}},      {6, {"Q5_0", 32, 22}},      {7, {"Q5_1", 32, 24}},
    {8, {"Q8_0", 32, 34}},      {9, {"Q8_1", 32, 40}},      {10, {"Q2_K", 256, 84}},
    {11, {"Q3_K", 256, 110}},   {12, {"Q4_K", 256, 144}},   {13, {"Q5_K", 256, 176}},
    {14, {"Q6_K", 256, 210}},   {15, {"Q8_K", 256, 292}},   {16, {"IQ2_XXS", 256, 66}},
    {17, {"IQ2_XS", 256, 74}},  {18, {"IQ3_XXS", 256, 98}}, {19, {"IQ1_S", 256, 50}},
    {20, {"IQ4_NL", 32, 18}},   {21, {"IQ3_S", 256, 110}},  {22, {"IQ2_S", 256, 82}},
    {23, {"IQ4_XS", 256, 136}}, {24, {"I8", 1, 1}},         {25, {"I16", 1, 2}},
    {26, {"I32", 1, 4}},        {27, {"I64", 1, 8}},        {28, {"F64", 1, 8}},
    {29, {"IQ1_M", 256, 56}},   {30, {"BF16", 1, 2}},       {34, {"TQ1_0", 256, 54}},
    {35, {"TQ2_0", 256, 66}},   {39, {"MXFP4", 32, 17}},    {40, {"NVFP4", 64, 36}},
    {41, {"Q1_0", 128, 18}},    {42, {"Q2_0", 64, 18}},
}};

// Sequential little-endian reads over a PositionalSource through a 1 MiB window.
// `context` names what is being read, for truncation messages.
class Reader {
 public:
  static constexpr uint64_t kWindow = 1 << 20;

  explicit Reader(const PositionalSource& src) : src_(src), size_(src.size()) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }
  std::string context;

  // Returns a pointer to the next n (≤ kWindow) bytes and moves past them.
  Result<const uint8_t*> Take(uint64_t n, const char* what) {
    if (n > remaining()) return Truncated(n, what);
    if (pos_ < win_off_ || pos_ + n > win_off_ + win_.size()) {
      win_off_ = pos_;
      win_.resize(std::min<uint64_t>(kWindow, remaining()));
      HMOD_TRY(src_.ReadAt(win_off_, win_));
    }
    const uint8_t* p = win_.data() + (pos_ - win_off_);
    pos_ += n;
    return p;
  }
  Status Skip(uint64_t n, const char* what) {
    if (n > remaining()) return Truncated(n, what);
    pos_ += n;
    return OkStatus();
  }
  template <typename T>
  Result<T> Int(const char* what) {
    HMOD_ASSIGN_OR_RETURN(const uint8_t* p, Take(sizeof(T), what));
    T v = 0;
    for (size_t i = sizeof(T); i-- > 0;) v = static_cast<T>(v << 8 | p[i]);
    return v;
  }
  // Reads a gguf_string of at most `max` bytes.
  Result<std::string> String(uint64_t max, const char* what) {
    HMOD_ASSIGN_OR_RETURN(uint64_t n, Int<uint64_t>(what));
    if (n > max) {
      return Malformed(context + ": " + what + " is " + std::to_string(n) + " bytes, over the limit of " +
                       std::to_string(max));
    }
    HMOD_ASSIGN_OR_RETURN(const uint8_t* p, Take(n, what));
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  Status SkipString(const char* what) {
    HMOD_ASSIGN_OR_RETURN(uint64_t n, Int<uint64_t>(what));
    if (n > kMaxGgufStringBytes) {
      return Malformed(context + ": " + what + " is " + std::to_string(n) + " bytes, over the 1 GiB limit");
    }
    return Skip(n, what);
  }

  Error Truncated(uint64_t n, const char* what) const {
    return Malformed("file truncated in " + context + ": " + what + " needs " + std::to_string(n) +
                     " bytes at offset " + std::to_string(pos_) + ", file has " + std::to_string(size_));
  }

 private:
  const PositionalSource& src_;
  uint64_t size_;
  uint64_t pos_ = 0;
  Bytes win_;
  uint64_t win_off_ = 0;
};

Status CheckBools(Reader& r, uint64_t count) {
  while (count > 0) {
    const uint64_t n = std::min(count, Reader::kWindow);
    HMOD_ASSIGN_OR_RETURN(const uint8_t* p, r.Take(n, "bool array"));
    for (uint64_t i = 0; i < n; ++i) {
      if (p[i] > 1) return Malformed(r.context + ": bool value " + std::to_string(p[i]) + " is not 0 or 1");
    }
    count -= n;
  }
  return OkStatus();
}

// Checks and skips one value of `type`.
Status SkipValue(Reader& r, uint32_t type, int depth) {
  if (type >= kValueTypeCount) return Malformed(r.context + ": unknown value type " + std::to_string(type));
  if (type == kBool) return CheckBools(r, 1);
  if (type == kString) return r.SkipString("string value");
  if (type != kArray) return r.Skip(FixedSize(type), "value");

  if (depth >= kMaxArrayDepth) {
    return Malformed(r.context + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth));
  }
  HMOD_ASSIGN_OR_RETURN(uint32_t elem, r.Int<uint32_t>("array element type"));
  HMOD_ASSIGN_OR_RETURN(uint64_t count, r.Int<uint64_t>("array length"));
  if (elem >= kValueTypeCount) {
    return Malformed(r.context + ": unknown array element type " + std::to_string(elem));
  }
  if (count > r.remaining() / MinSize(elem)) {
    return Malformed(r.context + ": array of " + std::to_string(count) +
                     " elements runs past the end of the file");
  }
  if (elem == kBool) return CheckBools(r, count);
  if (FixedSize(elem) != 0) return r.Skip(count * FixedSize(elem), "array data");
  for (uint64_t i = 0; i < count; ++i) HMOD_TRY(SkipValue(r, elem, depth + 1));
  return OkStatus();
}

struct GgufTensor {
  TensorInfo info;
  uint64_t rel_offset = 0;
};

// Reads one tensor info and computes its byte size.
Result<GgufTensor> ReadTensorInfo(Reader& r) {
  GgufTensor t;
  HMOD_ASSIGN_OR_RETURN(t.info.name, r.String(kMaxGgufTensorNameBytes, "tensor name"));
  const std::string who = "tensor " + Quote(t.info.name);
  r.context = who;
  HMOD_ASSIGN_OR_RETURN(uint32_t n_dims, r.Int<uint32_t>("n_dims"));
  if (n_dims > kMaxGgufDims) {
    return Malformed(who + ": n_dims " + std::to_string(n_dims) + " exceeds " + std::to_string(kMaxGgufDims));
  }
  std::array<uint64_t, kMaxGgufDims> ne = {1, 1, 1, 1};
  for (uint32_t d = 0; d < n_dims; ++d) {
    HMOD_ASSIGN_OR_RETURN(ne[d], r.Int<uint64_t>("dimension"));
    t.info.shape.push_back(ne[d]);
  }
  HMOD_ASSIGN_OR_RETURN(uint32_t type_id, r.Int<uint32_t>("ggml type"));
  HMOD_ASSIGN_OR_RETURN(t.rel_offset, r.Int<uint64_t>("offset"));

  // ggml keeps ne[] as int64 and requires the element count to fit in int64.
  uint64_t elements = 1;
  for (uint64_t d : ne) {
    if (d > static_cast<uint64_t>(INT64_MAX)) {
      return Malformed(who + ": dimension " + std::to_string(static_cast<int64_t>(d)) + " is negative");
    }
    if (__builtin_mul_overflow(elements, d, &elements) || elements > static_cast<uint64_t>(INT64_MAX)) {
      return Malformed(who + ": shape " + ShapeString(t.info.shape) + " overflows: element count exceeds 2^63");
    }
  }
  const auto type = GgmlType(type_id);
  if (!type) return Malformed(who + ": unknown ggml type " + std::to_string(type_id));
  t.info.dtype = type->name;
  if (ne[0] % type->block_elements != 0) {
    return Malformed(who + ": ne[0] = " + std::to_string(ne[0]) + " is not a multiple of the " + type->name +
                     " block size " + std::to_string(type->block_elements));
  }
  // nbytes = ne0 / blck * type_size * ne1 * ne2 * ne3.
  uint64_t size = ne[0] / type->block_elements;
  bool overflow = __builtin_mul_overflow(size, uint64_t{type->block_bytes}, &size);
  for (size_t d = 1; d < ne.size(); ++d) overflow = overflow || __builtin_mul_overflow(size, ne[d], &size);
  if (overflow) return Malformed(who + ": shape " + ShapeString(t.info.shape) + " overflows: byte size exceeds 2^64");
  t.info.size = size;
  return t;
}

}  // namespace

std::optional<GgmlTypeTraits> GgmlType(uint32_t id) {
  for (const auto& row : kGgmlTypes) {
    if (row.id == id) return row.traits;
  }
  return std::nullopt;
}

Result<ModelLayout> ParseGguf(const PositionalSource& file) {
  Reader r(file);
  const uint64_t file_size = file.size();
  r.context = "the header";
  if (file_size < 4) return Malformed("bad magic: file is too short");
  HMOD_ASSIGN_OR_RETURN(const uint8_t* magic, r.Take(4, "magic"));
  if (std::memcmp(magic, "GGUF", 4) != 0) return Malformed("bad magic: expected \"GGUF\"");
  HMOD_ASSIGN_OR_RETURN(uint32_t version, r.Int<uint32_t>("version"));
  if (version != 2 && version != 3) {
    if (version != 0 && (version & 0xFFFF) == 0) {
      return Malformed("unsupported version " + std::to_string(version) +
                       ": byte-swapped, big-endian GGUF is not supported");
    }
    if (version == 1) return Malformed("unsupported version 1: GGUF v1 is no longer supported");
    return Malformed("unsupported version " + std::to_string(version) + " (expected 2 or 3)");
  }
  HMOD_ASSIGN_OR_RETURN(uint64_t n_tensors, r.Int<uint64_t>("tensor count"));
  HMOD_ASSIGN_OR_RETURN(uint64_t n_kv, r.Int<uint64_t>("KV count"));
  // Smallest KV: 8-byte key length, 4-byte type, 1-byte value. Smallest tensor info:
  // 8-byte name length, n_dims, type, offset.
  constexpr uint64_t kMinKv = 8 + 4 + 1, kMinInfo = 8 + 4 + 4 + 8;
  if (n_kv > r.remaining() / kMinKv) {
    return Malformed("KV count " + std::to_string(n_kv) + " is impossible in a file of " +
                     std::to_string(file_size) + " bytes");
  }
  if (n_tensors > r.remaining() / kMinInfo || n_kv * kMinKv + n_tensors * kMinInfo > r.remaining()) {
    return Malformed("tensor count " + std::to_string(n_tensors) + " (with " + std::to_string(n_kv) +
                     " KVs) is impossible in a file of " + std::to_string(file_size) + " bytes");
  }

  uint32_t alignment = kDefaultGgufAlignment;
  std::unordered_set<std::string> keys;
  for (uint64_t i = 0; i < n_kv; ++i) {
    r.context = "KV #" + std::to_string(i);
    HMOD_ASSIGN_OR_RETURN(std::string key, r.String(kMaxGgufKeyBytes, "key"));
    if (key.empty()) return Malformed(r.context + " has an empty key");
    r.context = "KV " + Quote(key);
    if (!keys.insert(key).second) return Malformed("duplicate KV key " + Quote(key));
    HMOD_ASSIGN_OR_RETURN(uint32_t type, r.Int<uint32_t>("value type"));
    if (key == "general.alignment") {
      if (type != kU32) {
        return Malformed("general.alignment must be of type UINT32 (4), not " + std::to_string(type));
      }
      HMOD_ASSIGN_OR_RETURN(alignment, r.Int<uint32_t>("value"));
      if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
        return Malformed("general.alignment " + std::to_string(alignment) + " is not a power of two");
      }
      continue;
    }
    HMOD_TRY(SkipValue(r, type, 0));
  }

  // The count is only bounded by the file size so far: do not reserve on its word alone.
  const size_t reserve = static_cast<size_t>(std::min<uint64_t>(n_tensors, 1 << 16));
  std::vector<TensorInfo> tensors;
  tensors.reserve(reserve);
  std::unordered_set<std::string> names;
  std::vector<uint64_t> rel_offsets;
  rel_offsets.reserve(reserve);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    r.context = "tensor info #" + std::to_string(i);
    HMOD_ASSIGN_OR_RETURN(GgufTensor t, ReadTensorInfo(r));
    if (!names.insert(t.info.name).second) return Malformed("duplicate tensor name " + Quote(t.info.name));
    rel_offsets.push_back(t.rel_offset);
    tensors.push_back(std::move(t.info));
  }

  // The data section starts at the aligned end of the tensor infos (GGML_PAD).
  uint64_t data_start = (r.pos() + alignment - 1) / alignment * alignment;
  if (data_start > file_size) {
    if (!tensors.empty()) {
      return Malformed("file truncated: the data section would start at offset " + std::to_string(data_start) +
                       ", past the end of the file (" + std::to_string(file_size) + " bytes)");
    }
    data_start = file_size;  // no tensors and no padding after the infos: nothing to slice
  }

  for (size_t i = 0; i < tensors.size(); ++i) {
    TensorInfo& t = tensors[i];
    const uint64_t rel = rel_offsets[i];
    if (rel % alignment != 0) {
      return Malformed("tensor " + Quote(t.name) + ": offset " + std::to_string(rel) +
                       " is not a multiple of the alignment " + std::to_string(alignment));
    }
    const uint64_t room = file_size - data_start;
    if (rel > room || t.size > room - rel) {
      return Malformed("tensor " + Quote(t.name) + ": data [" + std::to_string(rel) + ", +" +
                       std::to_string(t.size) + ") of the data section runs past the end of the file (" +
                       std::to_string(file_size) + " bytes)");
    }
    t.offset = data_start + rel;
  }
  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    if (a.offset != b.offset) return a.offset < b.offset;
    if (a.size != b.size) return a.size < b.size;
    return a.name < b.name;
  });
  // An empty tensor covers no byte, so it overlaps nothing.
  const TensorInfo* furthest = nullptr;
  for (const TensorInfo& t : tensors) {
    if (t.size == 0) continue;
    if (furthest != nullptr && t.offset < furthest->offset + furthest->size) {
      return Malformed("tensor " + Quote(t.name) + " [" + std::to_string(t.offset) + ", " +
                       std::to_string(t.offset + t.size) + ") overlaps tensor " + Quote(furthest->name) + " [" +
                       std::to_string(furthest->offset) + ", " + std::to_string(furthest->offset + furthest->size) +
                       ")");
    }
    if (furthest == nullptr || t.offset + t.size > furthest->offset + furthest->size) furthest = &t;
  }

  ModelLayout layout;
  layout.format = ModelFormat::kGguf;
  layout.file_size = file_size;
  layout.data_start = data_start;
  layout.tensors = std::move(tensors);
  layout.alignment = alignment;
  layout.version = version;
  return layout;
}

}  // namespace hmod
