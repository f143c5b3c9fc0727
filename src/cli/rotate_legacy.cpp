#include "cli/rotate_legacy.h"

#include <sys/stat.h>

#include "hmod/header.h"
#include "hmod/model_file.h"

namespace hmod::cli {

Result<RotateResult> RotateLegacyFile(const std::string& path, ProviderList& new_keks,
                                      const LegacyRotateOptions& options) {
  RotateResult result;
  result.method = "legacy migration";
  struct stat st {};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists) {
    HMOD_ASSIGN_OR_RETURN(bool legacy, IsLegacyFile(path));
    if (!legacy) {
      result.outcome = RotateOutcome::kSkipped;
      result.reason = "not a legacy ENCMODEL/ENVMODEL file";
      return result;
    }
  }
  for (const auto& p : new_keks) result.keys_after.push_back(p->provider_id() + ":" + p->key_id());
  if (options.dry_run && exists) {
    HMOD_ASSIGN_OR_RETURN(auto in, InputFile::Open(path));
    HMOD_ASSIGN_OR_RETURN(auto file, LegacyFile::Open(*in, options.keys));
    HMOD_TRY(file->Authenticate());
    result.opened_by = file->opened_by();
    result.outcome = RotateOutcome::kWouldRotate;
    result.reason = std::string(LegacyFormatName(file->info().format)) + " authenticated; would write " + path + ".hmod";
    return result;
  }
  LegacyMigrationOptions mo;
  mo.keep_legacy = options.keep_legacy;
  mo.stream = options.stream;
  HMOD_ASSIGN_OR_RETURN(LegacyMigration m, MigrateLegacyFile(path, options.keys, new_keks, mo));
  if (m.already_migrated) {
    result.outcome = RotateOutcome::kSkipped;
    result.reason = "already migrated to " + m.output;
    return result;
  }
  result.outcome = RotateOutcome::kRotated;
  result.opened_by = m.opened_by;
  result.keys_after.clear();
  for (const auto& k : m.header.wrapped_keys) result.keys_after.push_back(DescribeWrappedKey(k));
  result.reason = std::string(LegacyFormatName(m.format)) + " -> " + m.output + " (" +
                  (m.layout == Layout::kTensors ? "per-tensor " + std::string(ModelFormatName(*m.model_format)) + ", " +
                                                      std::to_string(m.tensors) + " tensors"
                                                : std::string("whole file")) +
                  "; SHA-256 checked" + (m.legacy_removed ? "; legacy file removed)" : ")");
  struct stat out {};
  if (::stat(m.output.c_str(), &out) == 0) result.bytes_written = static_cast<uint64_t>(out.st_size);
  return result;
}

}  // namespace hmod::cli
