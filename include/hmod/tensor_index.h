// The per-tensor layout's extension and index (FORMAT.md §6.2, §6.3).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hmod/crypto.h"
#include "hmod/header.h"
#include "hmod/result.h"

namespace hmod {

inline constexpr uint16_t kTensorLayoutExtension = 0x8001;
inline constexpr size_t kTensorLayoutExtensionBytes = 25;
inline constexpr uint64_t kEntryAlign = 4096;
inline constexpr size_t kMaxIndexEntries = 1'000'000;
inline constexpr size_t kMaxRank = 8;
inline constexpr size_t kMaxTensorNameBytes = 4096;
inline constexpr uint32_t kIndexEntryNumber = 0xFFFFFFFF;
inline constexpr std::string_view kIndexEntryName = "hmod.index";
inline constexpr size_t kSignatureTrailerBytes = 133;

enum class IndexMode : uint8_t { kEncrypted = 1, kPublic = 2 };
enum class SourceFormat : uint8_t { kSafetensors = 1, kGguf = 2 };

// Value of extension 0x8001 (FORMAT.md §6.2).
struct TensorLayoutInfo {
  IndexMode index_mode = IndexMode::kEncrypted;
  SourceFormat source_format = SourceFormat::kSafetensors;
  uint64_t source_size = 0;
  uint64_t index_offset = 0;
  uint32_t index_length = 0;
  bool is_signed = false;
};
Bytes EncodeTensorLayoutInfo(const TensorLayoutInfo& info);
Result<TensorLayoutInfo> DecodeTensorLayoutInfo(ByteSpan value);
// Finds and decodes the extension in a layout-2 header (kFormat if absent).
Result<TensorLayoutInfo> TensorLayoutOf(const Header& header);

struct Segment {
  uint64_t source_offset = 0;
  uint64_t length = 0;
};

enum class EntryKind : uint8_t { kSkeleton = 0, kTensor = 1 };

struct IndexEntry {
  EntryKind kind = EntryKind::kTensor;
  bool encrypted = true;
  std::string name, dtype;
  std::vector<uint64_t> shape;
  uint64_t offset = 0;         // absolute file offset, multiple of 4096
  uint64_t stored_length = 0;  // bytes in the file
  uint64_t size = 0;           // bytes in the source
  std::vector<Segment> segments;
  std::array<uint8_t, 32> sha256{};  // of the source bytes; meaningful for plain entries
};

struct TensorIndex {
  std::vector<IndexEntry> entries;  // entries[0] is the skeleton
};

Bytes EncodeIndex(const TensorIndex& index);
// Parses and validates against the layout (FORMAT.md §6.3): tiling, alignment, lengths.
Result<TensorIndex> ParseIndex(ByteSpan bytes, const TensorLayoutInfo& info, uint32_t region_bytes);
// Exact size of EncodeIndex's output, without encoding.
uint64_t IndexPlaintextSize(const TensorIndex& index);

}  // namespace hmod
