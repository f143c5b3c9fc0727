// The envelope (FORMAT.md §3): a fresh data key per file, wrapped to every key provider;
// header MAC and payload key derived from it.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "hmod/header.h"
#include "hmod/key_provider.h"

namespace hmod {

inline constexpr size_t kDataKeyBytes = 32;

// Keys derived from a data key and a file id (FORMAT.md §3.1).
struct FileKeys {
  SecretBytes mac_key;
  SecretBytes payload_key;
  SecretBytes index_mac_key;  // public tensor index MAC (FORMAT.md §6.3)
};
Result<FileKeys> DeriveFileKeys(const SecretBytes& data_key, ByteSpan file_id);

// A new header, sealed: wrapped to every provider, encoded, MAC'd.
struct SealedHeader {
  Header header;
  Bytes region;
  SecretBytes data_key;
  SecretBytes payload_key;
  std::array<uint8_t, 32> core_digest{};
};

// Re-encodes `sealed.region` and the core digest after a change to core fields that the
// wrapped keys do not depend on (extensions), keeping the same data key and wrapped keys.
Status ResealHeader(SealedHeader& sealed);

// Draws a data key and a file id, wraps the key for each provider (at least one), and
// encodes the header region.
Result<SealedHeader> SealNewHeader(Layout layout, Suite suite, const EncryptionContext& context,
                                   std::vector<Extension> extensions, ProviderList& providers);
// As above with a given data key and file id (tests and vectors only).
Result<SealedHeader> SealHeaderWithKey(Header header, const SecretBytes& data_key,
                                       ProviderList& providers);

// A header whose MAC has been checked with an unwrapped data key.
struct OpenedHeader {
  ParsedHeader parsed;
  SecretBytes data_key;
  SecretBytes payload_key;
  std::array<uint8_t, 32> core_digest{};
  std::string opened_by;  // description of the provider that unwrapped the key
};

// Tries each provider (in the given order) on each wrapped key that names it. The first
// data key found is used to check the header MAC in constant time. Errors: kNoMatchingKey
// if no provider could unwrap any record; kAuthFailed if the MAC does not verify or a
// matching record failed to open.
Result<OpenedHeader> OpenHeader(ParsedHeader parsed, ProviderList& providers);

// One `--context` requirement on decrypt: `key=value` must match, bare `key` must exist.
struct ContextRequirement {
  std::string key;
  std::optional<std::string> value;
};
Result<ContextRequirement> ParseContextRequirement(const std::string& text);
// kContextMismatch naming the first requirement that fails.
Status CheckContext(const EncryptionContext& context,
                    const std::vector<ContextRequirement>& required);

}  // namespace hmod
