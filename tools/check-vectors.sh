#!/bin/sh
# Regenerates the .hmod conformance kit into a fresh directory and compares it, byte for
# byte, with the committed one (CTest: vectors_reproducible).
# Usage: check-vectors.sh GEN_VECTORS_BINARY KIT_DIR
set -eu
gen=$1
kit=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hmod-vectors.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
"$gen" "$tmp/hmod" >/dev/null
if ! diff -r "$tmp/hmod" "$kit"; then
  echo "check-vectors: $kit differs from what gen-vectors writes now;" >&2
  echo "  regenerate with: gen-vectors --clean $kit (and say why in the commit)" >&2
  exit 1
fi
echo "check-vectors: $(ls "$kit" | wc -l) cases regenerate byte-identically"
