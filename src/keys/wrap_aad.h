// The associated data every local wrap binds (FORMAT.md §5): label ‖ 0x00 ‖ file id ‖ extra.
#pragma once

#include <string_view>

#include "hmod/crypto.h"

namespace hmod {

inline constexpr size_t kWrappedDataKeyBytes = 32;

inline Bytes WrapAad(std::string_view label, ByteSpan file_id, ByteSpan extra) {
  Bytes aad(label.begin(), label.end());
  aad.push_back(0);
  aad.insert(aad.end(), file_id.begin(), file_id.end());
  aad.insert(aad.end(), extra.begin(), extra.end());
  return aad;
}

}  // namespace hmod
