// Model-file parsers: where each tensor's bytes lie in a safetensors or GGUF file.
//
// The parsers read only the header and tables, never tensor data. They validate strictly,
// so a layout they return is safe to slice: every tensor lies inside the file, no two
// tensors share a byte, and sizes agree with dtype and shape. Every malformed input is a
// kFormat error whose message names the format, the tensor or key, and the problem.
// I/O failures from the source are passed through unchanged. Nothing here throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hmod/io.h"
#include "hmod/result.h"

namespace hmod {

enum class ModelFormat { kSafetensors, kGguf };

// "safetensors" or "gguf".
const char* ModelFormatName(ModelFormat f);

struct TensorInfo {
  std::string name;
  std::string dtype;            // safetensors dtype string ("F32", "BF16", ...) or GGUF type name ("F32", "Q4_0", ...)
  std::vector<uint64_t> shape;  // as the file states it (GGUF: ne[] in file order)
  uint64_t offset = 0;          // absolute byte offset of the tensor data in the file
  uint64_t size = 0;            // byte size of the tensor data
};

struct ModelLayout {
  ModelFormat format;
  uint64_t file_size = 0;
  // Absolute offset where the tensor data section begins. For a GGUF file with no tensors
  // whose header is not padded out to the alignment, this is the file size.
  uint64_t data_start = 0;
  // Sorted by offset (ties by size, then name). The bytes not covered by tensors are the
  // "skeleton": header, metadata, padding.
  std::vector<TensorInfo> tensors;
  uint32_t alignment = 0;  // GGUF general.alignment (default 32); safetensors: 0
  uint32_t version = 0;    // GGUF version (2 or 3); safetensors: 0
};

// Limits, from the reference implementations.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;  // safetensors MAX_HEADER_SIZE
inline constexpr uint64_t kMaxGgufStringBytes = uint64_t{1} << 30;    // GGUF_MAX_STRING_LENGTH
inline constexpr uint64_t kMaxGgufKeyBytes = 65535;                   // docs/gguf.md
inline constexpr uint64_t kMaxGgufTensorNameBytes = 63;               // GGML_MAX_NAME - 1
inline constexpr uint32_t kMaxGgufDims = 4;                           // GGML_MAX_DIMS
inline constexpr uint32_t kDefaultGgufAlignment = 32;                 // GGUF_DEFAULT_ALIGNMENT

// Recognises a model by content (magic / header shape), not by extension. Returns nullopt
// for anything else, including a file too short to tell. Fails only if reading fails.
// Recognition is a cheap sniff: a recognised file may still fail to parse.
Result<std::optional<ModelFormat>> DetectModelFormat(const PositionalSource& file);

// Parses a safetensors file: [u64 LE N][N bytes of JSON header][data]. Checks everything the
// reference reader checks (huggingface/safetensors tensor.rs), plus: the header begins with
// '{', and no JSON object has a duplicate key.
Result<ModelLayout> ParseSafetensors(const PositionalSource& file);

// Parses a GGUF v2 or v3 little-endian file: header, every KV (values are checked and skipped),
// tensor infos. Tensor offsets must be multiples of the alignment; tensors may be listed in
// any order and may leave gaps, but must not overlap and must lie inside the file.
Result<ModelLayout> ParseGguf(const PositionalSource& file);

// Dispatches to ParseSafetensors or ParseGguf.
Result<ModelLayout> ParseModel(const PositionalSource& file, ModelFormat format);

// Bit width of a safetensors dtype ("F32" -> 32, "F4" -> 4); nullopt if unknown.
std::optional<uint32_t> SafetensorsDtypeBits(std::string_view dtype);

// Block size (elements) and block bytes of a ggml type; nullopt if the id is unknown.
struct GgmlTypeTraits {
  const char* name;
  uint32_t block_elements;
  uint32_t block_bytes;
};
std::optional<GgmlTypeTraits> GgmlType(uint32_t id);

}  // namespace hmod
