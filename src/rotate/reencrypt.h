// Re-encryption: a new data key and file id, every payload byte re-encrypted, streaming in
// constant memory; the encryption context, the layout, the index mode and which tensors are
// in clear are kept.
#pragma once

#include "hmod/io.h"
#include "hmod/rotate.h"
#include "rotate/key_set.h"

namespace hmod::rotate {

// Re-encrypts the file at `path` (already parsed as `parsed`) into `out`, wrapping the new
// data key with the plan's providers. `out` is committed by the caller. Sets the new file
// id (hex).
Result<uint64_t> Reencrypt(const std::string& path, const ParsedHeader& parsed, const KeySetPlan& plan,
                           RotateRequest& request, ByteSink& out, std::string& opened_by,
                           std::string& new_file_id);

}  // namespace hmod::rotate
