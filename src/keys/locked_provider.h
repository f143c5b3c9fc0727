// A provider shared between threads: every Wrap and Unwrap of the inner provider runs under
// one lock (a PKCS#11 session or an HTTP handle is not safe to use from two threads).
#pragma once

#include <memory>
#include <mutex>

#include "hmod/key_provider.h"

namespace hmod {

class LockedProvider final : public KeyProvider {
 public:
  LockedProvider(KeyProvider& inner, std::mutex& mu) : inner_(inner), mu_(mu) {}
  std::string provider_id() const override { return inner_.provider_id(); }
  std::string key_id() const override { return inner_.key_id(); }
  std::string description() const override { return inner_.description(); }
  bool is_local() const override { return inner_.is_local(); }
  std::vector<WrappedKey> ExternalRecords() const override { return inner_.ExternalRecords(); }
  Result<WrappedKey> Wrap(const SecretBytes& k, const WrapContext& c) override {
    std::lock_guard lock(mu_);
    return inner_.Wrap(k, c);
  }
  Result<SecretBytes> Unwrap(const WrappedKey& r, const WrapContext& c) override {
    std::lock_guard lock(mu_);
    return inner_.Unwrap(r, c);
  }

 private:
  KeyProvider& inner_;
  std::mutex& mu_;
};

// Borrows every provider of `list` behind `mu`. The list must outlive the result.
inline ProviderList LockEach(const ProviderList& list, std::mutex& mu) {
  ProviderList out;
  for (const auto& p : list) out.push_back(std::make_unique<LockedProvider>(*p, mu));
  return out;
}

}  // namespace hmod
