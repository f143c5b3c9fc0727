#include "support/model_builder.h"

#include <algorithm>
#include <cstring>

#include <nlohmann/json.hpp>

namespace hmod::testing {

std::string SafetensorsHeader(const std::vector<SafetensorsTensor>& tensors,
                              const std::map<std::string, std::string>* metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (metadata != nullptr) header["__metadata__"] = *metadata;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  return header.dump();
}

Bytes FrameSafetensors(std::string_view header_json, ByteSpan data, bool pad) {
  std::string header(header_json);
  if (pad) header.append((8 - header.size() % 8) % 8, ' ');
  const uint64_t n = header.size();
  Bytes out(8 + header.size() + data.size());
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  std::copy(header.begin(), header.end(), out.begin() + 8);
  std::copy(data.begin(), data.end(), out.begin() + 8 + static_cast<ptrdiff_t>(header.size()));
  return out;
}

Bytes BuildSafetensors(const std::vector<SafetensorsTensor>& tensors,
                       const std::map<std::string, std::string>* metadata) {
  Bytes data;
  for (const auto& t : tensors) data.insert(data.end(), t.data.begin(), t.data.end());
  return FrameSafetensors(SafetensorsHeader(tensors, metadata), data);
}

GgufValue GgufValue::Scalar(GgufValueType t, uint64_t bits) {
  GgufValue v;
  v.type = t;
  v.bits = bits;
  return v;
}

GgufValue GgufValue::F32(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return Scalar(GgufValueType::kF32, bits);
}

GgufValue GgufValue::F64(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, 8);
  return Scalar(GgufValueType::kF64, bits);
}

GgufValue GgufValue::String(std::string s) {
  GgufValue v;
  v.type = GgufValueType::kString;
  v.str = std::move(s);
  return v;
}

GgufValue GgufValue::Array(GgufValueType elem, std::vector<GgufValue> items) {
  GgufValue v;
  v.type = GgufValueType::kArray;
  v.elem = elem;
  v.items = std::move(items);
  return v;
}

GgufWriter& GgufWriter::U8(uint8_t v) {
  out_.push_back(v);
  return *this;
}
GgufWriter& GgufWriter::U32(uint32_t v) {
  for (int i = 0; i < 4; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  return *this;
}
GgufWriter& GgufWriter::U64(uint64_t v) {
  for (int i = 0; i < 8; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  return *this;
}
GgufWriter& GgufWriter::Str(std::string_view s) {
  U64(s.size());
  out_.insert(out_.end(), s.begin(), s.end());
  return *this;
}
GgufWriter& GgufWriter::Raw(ByteSpan b) {
  out_.insert(out_.end(), b.begin(), b.end());
  return *this;
}
GgufWriter& GgufWriter::Zeros(size_t n) {
  out_.insert(out_.end(), n, 0);
  return *this;
}
GgufWriter& GgufWriter::PadTo(uint64_t alignment) {
  return Zeros(static_cast<size_t>((alignment - out_.size() % alignment) % alignment));
}
GgufWriter& GgufWriter::Header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
  Raw(AsBytes("GGUF"));
  U32(version);
  U64(n_tensors);
  return U64(n_kv);
}

GgufWriter& GgufWriter::Value(const GgufValue& v) {
  switch (v.type) {
    case GgufValueType::kU8:
    case GgufValueType::kI8:
    case GgufValueType::kBool:
      return U8(static_cast<uint8_t>(v.bits));
    case GgufValueType::kU16:
    case GgufValueType::kI16:
      U8(static_cast<uint8_t>(v.bits));
      return U8(static_cast<uint8_t>(v.bits >> 8));
    case GgufValueType::kU32:
    case GgufValueType::kI32:
    case GgufValueType::kF32:
      return U32(static_cast<uint32_t>(v.bits));
    case GgufValueType::kU64:
    case GgufValueType::kI64:
    case GgufValueType::kF64:
      return U64(v.bits);
    case GgufValueType::kString:
      return Str(v.str);
    case GgufValueType::kArray:
      U32(static_cast<uint32_t>(v.elem));
      U64(v.items.size());
      for (const auto& item : v.items) Value(item);
      return *this;
  }
  return *this;
}

GgufWriter& GgufWriter::Kv(const GgufKv& kv) {
  Str(kv.key);
  U32(static_cast<uint32_t>(kv.value.type));
  return Value(kv.value);
}

GgufWriter& GgufWriter::TensorInfo(std::string_view name, const std::vector<uint64_t>& ne, uint32_t type,
                                   uint64_t offset) {
  Str(name);
  U32(static_cast<uint32_t>(ne.size()));
  for (uint64_t d : ne) U64(d);
  U32(type);
  return U64(offset);
}

uint32_t GgufAlignment(const GgufSpec& spec) {
  for (const auto& kv : spec.kvs) {
    if (kv.key == "general.alignment" && kv.value.type == GgufValueType::kU32) {
      return static_cast<uint32_t>(kv.value.bits);
    }
  }
  return 32;
}

namespace {
uint64_t Pad(uint64_t n, uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

GgufWriter WriteHeader(const GgufSpec& spec, const std::vector<uint64_t>& offsets) {
  GgufWriter w;
  w.Header(spec.version, spec.tensors.size(), spec.kvs.size());
  for (const auto& kv : spec.kvs) w.Kv(kv);
  for (size_t i = 0; i < spec.tensors.size(); ++i) {
    const auto& t = spec.tensors[i];
    w.TensorInfo(t.name, t.ne, t.type, offsets[i]);
  }
  return w;
}
}  // namespace

std::vector<uint64_t> GgufOffsets(const GgufSpec& spec) {
  const uint32_t alignment = GgufAlignment(spec);
  std::vector<uint64_t> offsets;
  uint64_t running = 0;
  for (const auto& t : spec.tensors) {
    offsets.push_back(t.offset ? *t.offset : running);
    running = Pad(offsets.back() + t.data.size(), alignment);
  }
  return offsets;
}

uint64_t GgufHeaderBytes(const GgufSpec& spec) { return WriteHeader(spec, GgufOffsets(spec)).size(); }

Bytes BuildGguf(const GgufSpec& spec) {
  const uint32_t alignment = GgufAlignment(spec);
  const std::vector<uint64_t> offsets = GgufOffsets(spec);
  GgufWriter w = WriteHeader(spec, offsets);
  w.PadTo(alignment);
  Bytes out = std::move(w.bytes());
  const uint64_t data_start = out.size();
  uint64_t data_end = 0;
  for (size_t i = 0; i < spec.tensors.size(); ++i) {
    data_end = std::max(data_end, Pad(offsets[i] + spec.tensors[i].data.size(), alignment));
  }
  out.resize(data_start + data_end, 0);
  for (size_t i = 0; i < spec.tensors.size(); ++i) {
    const Bytes& d = spec.tensors[i].data;
    std::copy(d.begin(), d.end(), out.begin() + static_cast<ptrdiff_t>(data_start + offsets[i]));
  }
  return out;
}

}  // namespace hmod::testing
