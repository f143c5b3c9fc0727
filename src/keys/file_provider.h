// file:PATH — a 32-byte key-encryption key from a 0600 key file (FORMAT.md §5.2).
#pragma once

#include "hmod/key_provider.h"

namespace hmod {

Result<std::unique_ptr<KeyProvider>> MakeFileProvider(const std::string& path);

}  // namespace hmod
