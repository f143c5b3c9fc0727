// The journal that makes an in-place header rewrite safe against power loss
// (docs/ROTATION.md, "Crash safety"). Before the header page is overwritten, the old and the
// new region are written and fsynced to ".NAME.hmod-rewrap" beside the file; the next
// rotation of NAME finishes the write (or finds it done) and removes the journal.
#pragma once

#include <string>

#include "hmod/crypto.h"
#include "hmod/result.h"

namespace hmod::rotate {

std::string JournalPath(const std::string& path);

// Writes and fsyncs the journal (and its directory) for `fd`, the file at `path`.
Status WriteJournal(const std::string& path, int fd, ByteSpan old_region, ByteSpan new_region);

// Removes the journal, and fsyncs the directory if asked.
Status RemoveJournal(const std::string& path, bool sync_directory = true);

// Finishes an interrupted rewrite of `fd` if a journal is present: returns true if the
// header was written (or found torn and rewritten) from it. A journal that is incomplete,
// damaged or for another file (inode or size differ) is discarded: the write it announced
// never started.
Result<bool> RecoverJournal(const std::string& path, int fd);

// Removes ".NAME.hmod-tmp-*" files that a killed run left beside `path`. Call only while
// holding the file's rotation lock.
void RemoveStaleTemporaries(const std::string& path);

}  // namespace hmod::rotate
