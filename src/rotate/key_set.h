// Which wrapped keys a rotated file carries (docs/ROTATION.md, "The new key set").
#pragma once

#include <string>
#include <vector>

#include "hmod/header.h"
#include "hmod/key_provider.h"
#include "hmod/rotate.h"

namespace hmod::rotate {

// One slot of the new key set: a record kept as it is, or a provider that must wrap.
struct KeySlot {
  const WrappedKey* kept = nullptr;  // points into the old header
  KeyProvider* wrap_with = nullptr;  // a provider of the new set, or of the old one (re-encrypt)
  std::string provider_id, key_id;
};

struct KeySetPlan {
  std::vector<KeySlot> slots;
  bool changed = false;  // false: the file already has exactly this set
};

std::string DescribeSlot(const KeySlot& slot);  // "provider:key-id"

// Applies `change` to the records of `header`. Removing a key the file does not have is not
// an error (a re-run after an interruption); leaving no key at all is (kUsage).
Result<KeySetPlan> PlanKeySet(const Header& header, const KeySetChange& change);

// Re-encryption wraps a new data key, so every slot needs a provider: kept records are
// matched against `available` (the --kek list). kUsage names the first one missing.
Status AssignProvidersForReencrypt(KeySetPlan& plan, const ProviderList& available);

// Wraps or copies each slot's record for `data_key` of the file `file_id`/`context`.
Result<std::vector<WrappedKey>> BuildRecords(const KeySetPlan& plan, const SecretBytes& data_key,
                                             const WrapContext& ctx, bool fresh_data_key);

}  // namespace hmod::rotate
