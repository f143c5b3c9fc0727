// Which files a rotation works on: paths and directories (-r), or one shard of a manifest.
#pragma once

#include <string>
#include <vector>

#include "hmod/result.h"

namespace hmod::cli {

struct TargetOptions {
  bool recursive = false;
  bool include_legacy = false;   // --from-legacy: ENCMODEL/ENVMODEL files too
  std::string manifest;          // one path per line; '#' comments and blank lines ignored
  std::string shard;             // "I/N": lines whose 0-based number is I modulo N
};

// Expands `paths` (and the manifest shard) into a sorted list of files. Directories need
// `recursive`; inside them only files that start with the .hmod magic (or a legacy magic)
// are taken, and rotation temporaries and journals are never. A file named explicitly is
// always taken (and fails later if it is not an .hmod file).
Result<std::vector<std::string>> CollectTargets(const std::vector<std::string>& paths, const TargetOptions& o);

// Parses "I/N" (0 <= I < N).
Result<std::pair<size_t, size_t>> ParseShard(const std::string& text);

}  // namespace hmod::cli
