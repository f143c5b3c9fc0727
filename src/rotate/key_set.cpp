#include "rotate/key_set.h"

#include <algorithm>

namespace hmod::rotate {
namespace {

bool SameKey(const std::string& pid, const std::string& kid, const KeyProvider& p) {
  return pid == p.provider_id() && kid == p.key_id();
}

// A --remove-kek value names a key by provider URI ("file:old.key") or by key id alone.
bool RemoveMatches(const std::string& spec, const WrappedKey& record) {
  if (spec == record.key_id) return true;
  return spec == record.provider_id + ":" + record.key_id;
}

}  // namespace

std::string DescribeSlot(const KeySlot& s) { return s.provider_id + ":" + s.key_id; }

Result<KeySetPlan> PlanKeySet(const Header& header, const KeySetChange& change) {
  KeySetPlan plan;
  const auto& old = header.wrapped_keys;
  auto find_old = [&](const KeyProvider& p) -> const WrappedKey* {
    for (const auto& r : old) {
      if (SameKey(r.provider_id, r.key_id, p)) return &r;
    }
    return nullptr;
  };
  auto already_planned = [&](const KeyProvider& p) {
    return std::any_of(plan.slots.begin(), plan.slots.end(),
                       [&](const KeySlot& s) { return SameKey(s.provider_id, s.key_id, p); });
  };
  if (!change.replace) {
    for (const auto& r : old) {
      const bool removed = std::any_of(change.remove.begin(), change.remove.end(),
                                       [&](const std::string& spec) { return RemoveMatches(spec, r); });
      if (!removed) plan.slots.push_back({&r, nullptr, r.provider_id, r.key_id});
    }
  }
  for (const auto& p : change.add) {
    if (already_planned(*p)) continue;
    plan.slots.push_back({find_old(*p), p.get(), p->provider_id(), p->key_id()});
  }
  if (plan.slots.empty()) {
    return MakeError(ErrorCode::kUsage, "refusing to remove every key that can open the file",
                     "keep at least one KEK, or add the new one in the same run (--add-kek)");
  }
  if (plan.slots.size() > kMaxWrappedKeys) {
    return MakeError(ErrorCode::kLimit, "the new key set has more than 64 keys");
  }
  // Changed unless the new set is the old one (same records, any order).
  plan.changed = plan.slots.size() != old.size() ||
                 std::any_of(plan.slots.begin(), plan.slots.end(), [](const KeySlot& s) { return s.kept == nullptr; });
  return plan;
}

Status AssignProvidersForReencrypt(KeySetPlan& plan, const ProviderList& available) {
  for (auto& slot : plan.slots) {
    if (slot.wrap_with) continue;
    for (const auto& p : available) {
      if (SameKey(slot.provider_id, slot.key_id, *p)) slot.wrap_with = p.get();
    }
    if (!slot.wrap_with) {
      return MakeError(ErrorCode::kUsage,
                       "re-encrypting needs every KEK of the new set, and " + DescribeSlot(slot) +
                           " was not given",
                       "pass it with --kek URI, or drop it with --remove-kek " + slot.key_id);
    }
  }
  return OkStatus();
}

Result<std::vector<WrappedKey>> BuildRecords(const KeySetPlan& plan, const SecretBytes& data_key,
                                             const WrapContext& ctx, bool fresh_data_key) {
  std::vector<WrappedKey> records;
  records.reserve(plan.slots.size());
  for (const auto& slot : plan.slots) {
    if (slot.kept && !fresh_data_key) {
      records.push_back(*slot.kept);  // bound to this file id and context: still valid
      continue;
    }
    HMOD_ASSIGN_OR_RETURN(WrappedKey wk, slot.wrap_with->Wrap(data_key, ctx));
    records.push_back(std::move(wk));
  }
  return records;
}

}  // namespace hmod::rotate
