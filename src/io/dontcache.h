// Internal: RWF_DONTCACHE, uncached buffered I/O for preadv2/pwritev2 (Linux 6.14+). Pages
// that a read or write brings into the page cache are dropped again once done with (after
// writeback, for writes). Kernels or filesystems without it fail the call with EOPNOTSUPP
// before doing anything, so callers fall back to plain I/O.
#pragma once

#include <sys/uio.h>

#ifndef RWF_DONTCACHE
#define RWF_DONTCACHE 0x00000080  // linux/fs.h (uapi); Debian 12's headers predate it
#endif
