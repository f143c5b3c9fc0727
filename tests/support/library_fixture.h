// Library-level helpers: a key provider set from a fresh key file, and in-memory
// encrypt/decrypt calls.
#pragma once

#include <gtest/gtest.h>

#include "hmod/container.h"
#include "hmod/key_file.h"
#include "support/test_util.h"

namespace hmod::testing {

inline ProviderList FileProviders(const std::string& key_path) {
  auto p = ProviderFromUri("file:" + key_path);
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
  ProviderList list;
  list.push_back(std::move(*p));
  return list;
}

inline std::string NewKeyFile(const TempDir& dir, const std::string& name = "k.key") {
  const std::string path = dir / name;
  auto fp = GenerateKeyFile(path);
  EXPECT_TRUE(fp.ok());
  return path;
}

inline Bytes EncryptBytes(ByteSpan plaintext, ProviderList& providers, Suite suite,
                          EncryptionContext context = {}, unsigned threads = 0) {
  MemorySource in(plaintext);
  MemorySink out;
  EncryptOptions options;
  options.suite = suite;
  options.context = std::move(context);
  options.stream.threads = threads;
  auto r = EncryptToContainer(in, out, providers, options);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return out.bytes;
}

struct DecryptOutcome {
  Result<DecryptSummary> result;
  Bytes released;
};

inline DecryptOutcome DecryptBytes(ByteSpan file, ProviderList& providers,
                                   std::vector<ContextRequirement> required = {},
                                   unsigned threads = 0) {
  MemorySource in(file);
  MemorySink out;
  DecryptOptions options;
  options.required_context = std::move(required);
  options.stream.threads = threads;
  auto r = DecryptContainer(in, out, providers, options);
  return {std::move(r), std::move(out.bytes)};
}

}  // namespace hmod::testing
