// Audit log of key use (issue: key management): every wrap and unwrap appends one JSON line
// {time, operation, provider, key_id, file, context, outcome}. Key bytes never appear.
#pragma once

#include <memory>
#include <string>

#include "hmod/key_provider.h"

namespace hmod {

class AuditLog {
 public:
  // Appends to `path` (created 0600 if missing). kIo if it cannot be opened.
  static Result<std::shared_ptr<AuditLog>> Open(const std::string& path);
  ~AuditLog();
  void Record(const std::string& operation, const KeyProvider& provider, const std::string& file,
              const EncryptionContext* context, const std::string& outcome);

 private:
  AuditLog() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Replaces every provider in `providers` by one that records each wrap and unwrap of the
// file `file` in `log`, then forwards to the original.
void AuditProviders(ProviderList& providers, std::shared_ptr<AuditLog> log, const std::string& file);

}  // namespace hmod
