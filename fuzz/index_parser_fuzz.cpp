// Fuzzes the tensor-index parser (FORMAT.md §6.3) and the tensor-layout extension decoder.
// Whatever parses must satisfy the invariants the reader relies on, and re-encode exactly.
#include <cstdlib>
#include <cstring>

#include "hmod/tensor_index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < hmod::kTensorLayoutExtensionBytes) return 0;
  auto info = hmod::DecodeTensorLayoutInfo(hmod::ByteSpan(data, hmod::kTensorLayoutExtensionBytes));
  if (!info.ok()) return 0;
  const hmod::ByteSpan body(data + hmod::kTensorLayoutExtensionBytes, size - hmod::kTensorLayoutExtensionBytes);
  auto index = hmod::ParseIndex(body, *info, 4096);
  if (!index.ok()) return 0;
  const hmod::Bytes again = hmod::EncodeIndex(*index);
  if (again.size() != body.size() || std::memcmp(again.data(), body.data(), body.size()) != 0 ||
      hmod::IndexPlaintextSize(*index) != again.size()) {
    std::abort();  // accepted a non-canonical index
  }
  for (const auto& e : index->entries) {
    if (e.offset % hmod::kEntryAlign || e.offset < 4096 || e.offset + e.stored_length > info->index_offset) {
      std::abort();  // an entry outside its allowed place
    }
  }
  return 0;
}
