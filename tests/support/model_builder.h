// Writers for safetensors and GGUF files, so tests can generate models (valid ones, and
// raw pieces to assemble malformed ones). Independent of the parsers under test.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hmod/crypto.h"

namespace hmod::testing {

// ---- safetensors -------------------------------------------------------------------------

struct SafetensorsTensor {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
  Bytes data;  // written as is; its size sets data_offsets
};

// The JSON header for `tensors` laid out back to back in the given order (no padding).
std::string SafetensorsHeader(const std::vector<SafetensorsTensor>& tensors,
                              const std::map<std::string, std::string>* metadata = nullptr);

// A whole file: u64 LE length, `header_json` (space-padded to a multiple of 8 if `pad`), `data`.
Bytes FrameSafetensors(std::string_view header_json, ByteSpan data, bool pad = true);

// A valid file, as the reference writer lays it out apart from tensor order: header padded
// with spaces to a multiple of 8, then each tensor's data in the given order.
Bytes BuildSafetensors(const std::vector<SafetensorsTensor>& tensors,
                       const std::map<std::string, std::string>* metadata = nullptr);

// ---- GGUF --------------------------------------------------------------------------------

enum class GgufValueType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

// One KV value. Scalars keep their little-endian bit pattern in `bits`.
struct GgufValue {
  GgufValueType type = GgufValueType::kU8;
  uint64_t bits = 0;
  std::string str;
  GgufValueType elem = GgufValueType::kU8;  // arrays
  std::vector<GgufValue> items;             // arrays

  static GgufValue U8(uint8_t v) { return Scalar(GgufValueType::kU8, v); }
  static GgufValue I8(int8_t v) { return Scalar(GgufValueType::kI8, static_cast<uint8_t>(v)); }
  static GgufValue U16(uint16_t v) { return Scalar(GgufValueType::kU16, v); }
  static GgufValue I16(int16_t v) { return Scalar(GgufValueType::kI16, static_cast<uint16_t>(v)); }
  static GgufValue U32(uint32_t v) { return Scalar(GgufValueType::kU32, v); }
  static GgufValue I32(int32_t v) { return Scalar(GgufValueType::kI32, static_cast<uint32_t>(v)); }
  static GgufValue F32(float v);
  static GgufValue Bool(bool v) { return Scalar(GgufValueType::kBool, v ? 1 : 0); }
  static GgufValue String(std::string s);
  static GgufValue U64(uint64_t v) { return Scalar(GgufValueType::kU64, v); }
  static GgufValue I64(int64_t v) { return Scalar(GgufValueType::kI64, static_cast<uint64_t>(v)); }
  static GgufValue F64(double v);
  static GgufValue Array(GgufValueType elem, std::vector<GgufValue> items);

 private:
  static GgufValue Scalar(GgufValueType t, uint64_t bits);
};

struct GgufKv {
  std::string key;
  GgufValue value;
};

struct GgufTensorSpec {
  std::string name;
  std::vector<uint64_t> ne;  // ggml order, written as n_dims = ne.size()
  uint32_t type = 0;         // ggml type id
  Bytes data;                // written as is; the caller sizes it for ne and type
  // Offset in the data section; by default the running sum of the previous tensors'
  // sizes, each padded to the alignment (what ggml writes). Must be aligned if set.
  std::optional<uint64_t> offset;
};

struct GgufSpec {
  uint32_t version = 3;
  std::vector<GgufKv> kvs;  // a U32 "general.alignment" here sets the alignment (default 32)
  std::vector<GgufTensorSpec> tensors;
};

// Low-level little-endian GGUF pieces, for assembling malformed files.
class GgufWriter {
 public:
  GgufWriter& U8(uint8_t v);
  GgufWriter& U32(uint32_t v);
  GgufWriter& U64(uint64_t v);
  GgufWriter& Str(std::string_view s);  // u64 length + bytes
  GgufWriter& Raw(ByteSpan b);
  GgufWriter& Zeros(size_t n);
  GgufWriter& PadTo(uint64_t alignment);  // zero bytes up to a multiple of `alignment`
  // Magic "GGUF", version, tensor count, KV count.
  GgufWriter& Header(uint32_t version, uint64_t n_tensors, uint64_t n_kv);
  GgufWriter& Kv(const GgufKv& kv);
  GgufWriter& Value(const GgufValue& v);  // no type tag
  GgufWriter& TensorInfo(std::string_view name, const std::vector<uint64_t>& ne, uint32_t type,
                         uint64_t offset);
  size_t size() const { return out_.size(); }
  Bytes& bytes() { return out_; }

 private:
  Bytes out_;
};

// The alignment a spec's KVs select (general.alignment as U32, else 32).
uint32_t GgufAlignment(const GgufSpec& spec);
// Each tensor's offset in the data section, as BuildGguf places it.
std::vector<uint64_t> GgufOffsets(const GgufSpec& spec);
// Size of the header (magic .. tensor infos) before padding.
uint64_t GgufHeaderBytes(const GgufSpec& spec);
// A valid file: header, KVs, infos, zero padding to the alignment, then each tensor's data
// at its offset, zero-padded to the alignment (the last one too, as ggml does).
Bytes BuildGguf(const GgufSpec& spec);

}  // namespace hmod::testing
