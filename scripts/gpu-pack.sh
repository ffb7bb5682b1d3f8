#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a GPU machine that has Python PyTorch with CUDA, CMake
# and a compiler, but no Node.js and no network: the node binary (xz, about 25 MB), the runtime
# node_modules needed to build and run the addon (cmake-js and its dependencies, node-addon-api,
# node-api-headers, yauzl, protobufjs (dist/index.js imports it): a few MB), and the Fashion-MNIST files (30 MB). The compiled
# TypeScript (dist/) travels as it is. Output: gpu-bundle/ (git-ignored), under 64 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
out=gpu-bundle
rm -rf "$out" && mkdir -p "$out/data"
[ -f dist/index.js ] || npx tsc -p tsconfig.build.json
xz -T0 -6 -c "$(command -v node)" > "$out/node.xz"
modules=$(node -e "
  const fs = require('fs'); const seen = new Set();
  const walk = (name) => { if (seen.has(name)) return; seen.add(name);
    const pkg = JSON.parse(fs.readFileSync('node_modules/' + name + '/package.json'));
    Object.keys(pkg.dependencies || {}).forEach(walk); };
  ['cmake-js', 'node-addon-api', 'node-api-headers', 'yauzl', 'protobufjs'].forEach(walk);
  console.log([...seen].map((m) => 'node_modules/' + m).join(' '));")
# shellcheck disable=SC2086
tar czf "$out/node_modules.tgz" $modules
data="${LENET5_DATA:-/usr/share/datasets/fashion-mnist}"
cp "$data"/*-idx?-ubyte* "$out/data/"
du -sh "$out" dist
