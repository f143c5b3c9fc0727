// Writing a re-wrapped header: in place (one page, journaled) or into a whole new file.
#pragma once

#include <string>

#include "hmod/header.h"
#include "hmod/io.h"
#include "hmod/signature.h"

namespace hmod::rotate {

// Overwrites the first page of `fd` (the file at `path`) with `new_region`, which must be
// exactly one 4096-byte page like the region it replaces. The journal is written first and
// removed after the page is on disk.
Status RewriteHeaderInPlace(const std::string& path, int fd, ByteSpan old_region, ByteSpan new_region);

// Writes `path` anew (temporary name, fsync, rename): `new_region`, then the payload of `in`
// as it is, then, for a signed per-tensor file, a new signature trailer by `sign_key` over a
// body digest computed from the bytes copied. Returns the bytes written. `mode` is the file's.
Result<uint64_t> RewriteFileWithHeader(const std::string& path, const InputFile& in,
                                       const ParsedHeader& parsed, ByteSpan new_region,
                                       const SigningKey* sign_key, unsigned mode);

// Test hook for crash tests: when $HMOD_TEST_CRASH_AT equals `point`, the process kills
// itself with SIGKILL right there.
void CrashPointForTesting(const char* point);

}  // namespace hmod::rotate
