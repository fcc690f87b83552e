#!/usr/bin/env bash
# Builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer into
# build-asan/ (never touching build/, which the normal tests use). Load it
# with KERNEL_LOCK_PREBUILD=<repo>/build-asan: node-gyp-build looks for
# $KERNEL_LOCK_PREBUILD/build/Release/*.node before the default build.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/build-asan"
mkdir -p "$out"
# node-gyp builds the binding.gyp of its working directory into ./build, so
# the sanitizer build gets its own copy of binding.gyp and a link to the
# sources; node-addon-api resolves upward to the repo's node_modules.
cp "$root/binding.gyp" "$out/binding.gyp"
ln -sfn "$root/native" "$out/native"
node_gyp="$(npm root -g 2>/dev/null)/npm/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$node_gyp" ] || node_gyp="$(command -v node-gyp)"
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
# Node's headers: the same ones `npm run build:native` uses (npm's nodedir
# setting, else the headers installed next to the node binary).
nodedir="$(npm config get nodedir 2>/dev/null | tail -1)"
if [ -z "$nodedir" ] || [ "$nodedir" = undefined ] || [ "$nodedir" = null ]; then
  nodedir="$(dirname "$(dirname "$(command -v node)")")"
fi
cd "$out"
# -O1 keeps stacks readable; -fno-sanitize-recover makes any UB abort the
# process (non-zero exit) instead of only printing a line.
CFLAGS="$sanitize" CXXFLAGS="$sanitize" LDFLAGS="-fsanitize=address,undefined" \
  node "$node_gyp" rebuild --nodedir="$nodedir" >"$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }
ls "$out/build/Release/kernel_lock.node" >/dev/null
echo "asan addon: $out/build/Release/kernel_lock.node"
