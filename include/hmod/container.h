// Whole-file encryption and decryption of .hmod containers (FORMAT.md §2-§4).
#pragma once

#include <string>
#include <vector>

#include "hmod/chunked_stream.h"
#include "hmod/envelope.h"

namespace hmod {

// The Cobblestone context of entry `index` named `name` (FORMAT.md §4.2):
// "hmod/v1 entry" ‖ 0x00 ‖ core_digest(32) ‖ BE32(index) ‖ name.
Bytes EntryContext(const std::array<uint8_t, 32>& core_digest, uint32_t index,
                   std::string_view name);

struct EncryptOptions {
  Suite suite = DefaultSuite();
  EncryptionContext context;
  StreamOptions stream;
};

struct EncryptSummary {
  Header header;
  uint64_t plaintext_bytes = 0;
};

// Writes a stream-layout .hmod of everything `in` yields to `out`.
Result<EncryptSummary> EncryptToContainer(ByteSource& in, ByteSink& out, ProviderList& providers,
                                          const EncryptOptions& options);

struct DecryptOptions {
  std::vector<ContextRequirement> required_context;
  StreamOptions stream;
};

struct DecryptSummary {
  Header header;
  std::string opened_by;
  uint64_t plaintext_bytes = 0;
};

// Reads a .hmod from `in`, opens it with `providers`, and writes the plaintext to `out`
// (pass a NullSink to verify). Only authenticated chunks reach `out`; any failure is
// returned and nothing more is written. The header MAC and the context requirements are
// checked before the first payload byte is read.
Result<DecryptSummary> DecryptContainer(ByteSource& in, ByteSink& out, ProviderList& providers,
                                        const DecryptOptions& options);

struct ReencryptSummary {
  Header header;          // the new file's
  std::string opened_by;  // the provider that opened the old one
  uint64_t plaintext_bytes = 0;
};

// Re-encrypts a stream-layout .hmod read from `in` (opened with `open`) into a new one on
// `out` under a new data key wrapped for `wrap`, keeping the suite and the encryption
// context. Every chunk is authenticated and sealed again in one pass; only chunks that
// authenticated reach `out`, and any failure is returned.
Result<ReencryptSummary> ReencryptStreamContainer(ByteSource& in, ByteSink& out, ProviderList& open,
                                                  ProviderList& wrap, const StreamOptions& stream);

}  // namespace hmod
