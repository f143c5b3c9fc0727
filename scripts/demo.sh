#!/usr/bin/env bash
# The main job end to end on the embedded default (a local key file, no cloud):
# install what is missing, build, keygen, encrypt a generated sample model, inspect,
# verify, decrypt, compare.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DHMOD_BUILD_TESTS=OFF >/dev/null
ninja -C build hmodctl
hmodctl=$PWD/build/hmodctl

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
set -x
python3 "$OLDPWD/scripts/make_sample_model.py" model.safetensors 16
"$hmodctl" keygen -o team.key
"$hmodctl" encrypt --kek file:team.key --context model=demo --context version=1 -o model.hmod model.safetensors
"$hmodctl" inspect model.hmod
"$hmodctl" verify --kek file:team.key --context model=demo model.hmod
"$hmodctl" decrypt --kek file:team.key --context model=demo -o restored.safetensors model.hmod
cmp model.safetensors restored.safetensors
set +x
echo "demo: OK - model.safetensors encrypted, verified, decrypted and byte-identical"
