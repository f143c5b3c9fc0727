// Key files (FORMAT.md §5.1): a 32-byte key-encryption key in a small text file, mode 0600.
#pragma once

#include <string>

#include "hmod/crypto.h"
#include "hmod/result.h"

namespace hmod {

inline constexpr size_t kKekBytes = 32;

// Public identifier of a key: 32 lowercase hex digits of
// SHA-256("hmod/v1 key fingerprint" ‖ 0x00 ‖ key), truncated to 16 bytes.
std::string KeyFingerprint(const SecretBytes& key);

// The file's text: comment lines and one "hmod-key-v1 <64 hex digits>" line.
std::string EncodeKeyFile(const SecretBytes& key);
// Parses the text strictly (kKeyFile on anything else).
Result<SecretBytes> DecodeKeyFile(std::string_view text);

// Refuses files readable by group or others, then parses.
Result<SecretBytes> LoadKeyFile(const std::string& path);
// Creates a new random key at `path` with mode 0600; refuses to overwrite.
// Returns the key's fingerprint.
Result<std::string> GenerateKeyFile(const std::string& path);

}  // namespace hmod
