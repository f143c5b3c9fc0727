// Helpers shared by the safetensors and GGUF parsers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hmod::model_internal {

// A name from the file, made safe for a one-line error message: quoted, control bytes and
// (if the name is not UTF-8) non-ASCII bytes as \xNN, cut after 120 bytes.
std::string Quote(std::string_view name);

// "[2, 3, 4]".
std::string ShapeString(const std::vector<uint64_t>& shape);

}  // namespace hmod::model_internal
