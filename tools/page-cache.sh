# shellcheck shell=bash
# Sourced by the tools/bench* scripts.
#
# cache_fresh FILE...: drop each file's cached pages, then read it back sequentially, so every
# file under test is page-cached the same way (in readahead's large folios). How a file came
# to be cached matters here: cached by small scattered reads, or read back while the memory
# freed by a large write is still in small pieces, it re-reads up to 2x slower (cat of 1 GiB:
# 0.18 s instead of 0.09 s), which would swing every ratio. Dirty pages cannot be dropped:
# `sync` first.
cache_fresh() {
  local f
  for f in "$@"; do
    dd if="$f" iflag=nocache count=0 status=none
    cat "$f" >/dev/null
  done
}
