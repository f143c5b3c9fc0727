#!/usr/bin/env bash
# Installs, builds and runs the whole test suite: the release build, the same suite under
# AddressSanitizer + UndefinedBehaviorSanitizer, and a bounded libFuzzer run on the header
# parser. Exits non-zero on the first failure. FUZZ_SECONDS (default 60) bounds the fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)

echo "== release build and tests"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DHMOD_BUILD_TESTS=ON >/dev/null
ninja -C build
ctest --test-dir build --output-on-failure -j "$jobs"

echo "== ASan + UBSan build and tests"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHMOD_SANITIZE=ON >/dev/null
ninja -C build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs"

echo "== libFuzzer: header parser (${FUZZ_SECONDS:-60}s)"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DHMOD_FUZZ=ON -DHMOD_BUILD_TESTS=OFF >/dev/null
ninja -C build-fuzz header_parser_fuzz model_parser_fuzz index_parser_fuzz
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
# Seeds: real headers, with and without context and with two wrapped keys.
build/hmodctl keygen -q -o "$corpus/k.key"
build/hmodctl keygen -q -o "$corpus/k2.key"
printf 'x' > "$corpus/p"
build/hmodctl encrypt -q --kek "file:$corpus/k.key" -o "$corpus/seed1" "$corpus/p"
build/hmodctl encrypt -q --kek "file:$corpus/k.key" --kek "file:$corpus/k2.key" --context a=b \
  --context model=x --suite chacha20-poly1305 -o "$corpus/seed2" "$corpus/p"
HMOD_PASSPHRASE=fuzz build/hmodctl encrypt -q --kek pass: -o "$corpus/seed3" "$corpus/p"
rm "$corpus/k.key" "$corpus/k2.key" "$corpus/p"
build-fuzz/fuzz/header_parser_fuzz -max_total_time="${FUZZ_SECONDS:-60}" -max_len=16384 \
  -print_final_stats=1 "$corpus"
echo "== libFuzzer: safetensors and GGUF parsers (${FUZZ_SECONDS:-60}s)"
models=$(mktemp -d)
trap 'rm -rf "$corpus" "$models"' EXIT
python3 scripts/make_sample_model.py "$models/seed.safetensors" 0.01
build-fuzz/fuzz/model_parser_fuzz -max_total_time="${FUZZ_SECONDS:-60}" -max_len=4096 \
  -print_final_stats=1 "$models"
echo "== libFuzzer: tensor index parser (${FUZZ_SECONDS:-60}s)"
index_corpus=$(mktemp -d)
trap 'rm -rf "$corpus" "$models" "$index_corpus"' EXIT
# Seed: a valid extension value and index (a skeleton and one tensor), FORMAT.md §6.2-6.3.
python3 - "$index_corpus/seed" <<'PY'
import struct, sys
ext = struct.pack(">BBQQIHB", 1, 1, 116, 12288, 0, 0, 0)
skel = struct.pack(">BBHBB", 0, 1, 0, 0, 0) + struct.pack(">QQQI", 4096, 172, 100, 1) + struct.pack(">QQ", 0, 100)
w = struct.pack(">BBH", 1, 1, 1) + b"w" + struct.pack(">B", 3) + b"F32" + struct.pack(">BQ", 1, 4)
w += struct.pack(">QQQI", 8192, 88, 16, 1) + struct.pack(">QQ", 100, 16)
open(sys.argv[1], "wb").write(ext + b"HMIX" + struct.pack(">BI", 1, 2) + skel + w)
PY
build-fuzz/fuzz/index_parser_fuzz -max_total_time="${FUZZ_SECONDS:-60}" -max_len=2048 \
  -print_final_stats=1 "$index_corpus"
echo "== all tests passed"
