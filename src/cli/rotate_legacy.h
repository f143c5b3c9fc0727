// rotate --from-legacy: one ENCMODEL/ENVMODEL file to .hmod, reported like a rotation.
#pragma once

#include <string>

#include "hmod/legacy.h"
#include "hmod/rotate.h"

namespace hmod::cli {

struct LegacyRotateOptions {
  LegacyKeys keys;
  bool keep_legacy = false;
  bool dry_run = false;
  StreamOptions stream;
};

// Migrates `path` to PATH.hmod wrapped for `new_keks` (docs/LEGACY.md). A path that is
// already migrated (gone, with PATH.hmod in its place) or that is an .hmod file is skipped.
// A dry run authenticates the legacy file and writes nothing.
Result<RotateResult> RotateLegacyFile(const std::string& path, ProviderList& new_keks,
                                      const LegacyRotateOptions& options);

}  // namespace hmod::cli
