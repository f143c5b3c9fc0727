// KeyProvider: one key-encryption key (KEK) that wraps and unwraps data keys.
// Tiny by design (age's Recipient/Identity, Tink's KmsClient): id, wrap, unwrap.
// Policy (which providers, in which order) lives in envelope.h, not here.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "hmod/crypto.h"
#include "hmod/header.h"
#include "hmod/result.h"

namespace hmod {

// What a wrapped key is bound to: the file it belongs to and its encryption context.
struct WrapContext {
  ByteSpan file_id;
  const EncryptionContext* context = nullptr;
};

class KeyProvider {
 public:
  virtual ~KeyProvider() = default;
  // Provider id on the wire ("file", "pass").
  virtual std::string provider_id() const = 0;
  // Key id on the wire (a fingerprint, ARN, ...). Never secret.
  virtual std::string key_id() const = 0;
  // The URI the user gave, minus anything secret; for messages.
  virtual std::string description() const = 0;
  // True for providers that need no network (tried first by default).
  virtual bool is_local() const = 0;

  virtual Result<WrappedKey> Wrap(const SecretBytes& data_key, const WrapContext& ctx) = 0;
  // kNoMatchingKey: this record is not for this provider ("not mine").
  // kAuthFailed: it is, but it does not open (tampered or wrong secret).
  virtual Result<SecretBytes> Unwrap(const WrappedKey& record, const WrapContext& ctx) = 0;
  // Records this provider brings along instead of finding them in the header (a device
  // license blob, FORMAT.md §5.7). Tried after the header's records.
  virtual std::vector<WrappedKey> ExternalRecords() const { return {}; }
};

using ProviderList = std::vector<std::unique_ptr<KeyProvider>>;

// Builds a provider from its URI: "file:PATH", "pass:", "pass:env=VAR", "pass:fd=N".
Result<std::unique_ptr<KeyProvider>> ProviderFromUri(const std::string& uri);

}  // namespace hmod
