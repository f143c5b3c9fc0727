// The .hmod container header (FORMAT.md §2): canonical binary, parsed strictly.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "hmod/crypto.h"
#include "hmod/io.h"
#include "hmod/result.h"

namespace hmod {

inline constexpr std::array<uint8_t, 8> kMagic = {0x89, 'H', 'M', 'O', 'D', 0x0D, 0x0A, 0x1A};
inline constexpr uint8_t kFormatVersion = 1;
inline constexpr size_t kFileIdBytes = 32;
inline constexpr size_t kHeaderMacBytes = 32;
inline constexpr uint32_t kRegionAlign = 4096;
inline constexpr uint32_t kMaxRegionBytes = 16u << 20;
inline constexpr size_t kMaxContextPairs = 64;
inline constexpr size_t kMaxContextKeyBytes = 256;
inline constexpr size_t kMaxContextValueBytes = 4096;
inline constexpr size_t kMaxExtensions = 64;
inline constexpr size_t kMaxWrappedKeys = 64;
inline constexpr size_t kMaxProviderIdBytes = 32;
inline constexpr size_t kMaxKeyIdBytes = 1024;
inline constexpr size_t kMaxWrappedKeyBytes = 4096;
inline constexpr uint16_t kCriticalExtension = 0x8000;

// FORMAT.md §2.1. Values are on the wire.
enum class Layout : uint8_t {
  kStream = 1,   // the payload is one chunked message: a whole file
  kTensors = 2,  // per-tensor layout (FORMAT.md §6, reserved)
};

// Sorted by key bytes (std::string compares as unsigned char), as the format requires.
using EncryptionContext = std::map<std::string, std::string>;

struct WrappedKey {
  std::string provider_id;  // "file", "pass", ...
  std::string key_id;       // fingerprint, ARN, PKCS#11 URI ...
  Bytes wrapped;            // provider-specific record (FORMAT.md §5)
};

struct Extension {
  uint16_t type = 0;  // bit 15 set = critical
  Bytes value;
};

struct Header {
  Layout layout = Layout::kStream;
  Suite suite = Suite::kAes256Gcm;
  std::array<uint8_t, kFileIdBytes> file_id{};
  EncryptionContext context;
  std::vector<Extension> extensions;  // strictly ascending types
  std::vector<WrappedKey> wrapped_keys;
  uint32_t region_bytes = 0;  // header region incl. padding; payload starts here
};

// A header as read from a file: the fields plus the exact bytes they came from.
struct ParsedHeader {
  Header header;
  Bytes region;            // all region_bytes bytes as read
  size_t core_bytes = 0;   // [0, core_bytes) is the core (FORMAT.md §2.2)
  size_t mac_offset = 0;   // the MAC covers [0, mac_offset)
  std::array<uint8_t, kHeaderMacBytes> mac{};

  ByteSpan core() const { return ByteSpan(region).first(core_bytes); }
  ByteSpan authenticated() const { return ByteSpan(region).first(mac_offset); }
};

// Reads and parses one header region from the start of `in`, rejecting anything
// non-canonical (FORMAT.md §2.6). Reads exactly region_bytes bytes; nothing is trusted
// until the MAC is checked (envelope.h).
Result<ParsedHeader> ReadHeader(ByteSource& in);
Result<ParsedHeader> ParseHeader(ByteSpan bytes);  // `bytes` may extend past the region

// Encodes the core (magic .. extensions). Validates limits.
Result<Bytes> EncodeCore(const Header& header);
// Encodes the whole region; `mac_key` keys the header MAC. region_bytes is the larger of
// header.region_bytes and the smallest multiple of 4096 that fits.
Result<Bytes> EncodeHeaderRegion(const Header& header, const SecretBytes& mac_key);

// Checks a context against the format's rules (UTF-8, sizes, count).
Status ValidateContext(const EncryptionContext& context);
bool IsValidUtf8(std::string_view s);

}  // namespace hmod
