#!/usr/bin/env node
// Builds the native addon; the npm install hook, `npm run build` and `lenet5 build` all run it.
//  1. Resolves LibTorch (scripts/find-libtorch.mjs: fetches PyPI's into the user cache when the
//     machine has none).
//  2. Keys the build on the package version, the native sources and the LibTorch chosen; when the
//     addon already matches the key it does nothing, so `npm rebuild` rebuilds exactly when the
//     choice changed. A CMake cache made for another LibTorch is wiped first.
//  3. Installed as a dependency (inside node_modules), it reuses an addon another project built
//     with the same key (the user cache again), and afterwards deletes everything under build/
//     but the addon: no object files, nothing for a user to carry.
//
// Usage: build-addon.mjs [--force]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeLibtorch, findLibtorch } from './find-libtorch.mjs';
import { cacheRoot } from './libtorch/pypi.mjs';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = join(packageRoot, 'build/cmake');
const addonPath = join(buildDir, 'Release/lenet5_native.node');
/** Beside the addon: the key it was built for and the LibTorch it links (read by `lenet5 info`). */
const recordPath = join(buildDir, 'Release/lenet5_native.json');
const installedAsDependency = packageRoot.split(sep).includes('node_modules');

/** @param {string} message */
function say(message) {
  process.stderr.write(`lenet5: ${message}\n`);
}

/** Every file the addon is compiled from, hashed in a stable order. */
function hashSources(hash) {
  const files = ['CMakeLists.txt'];
  const walk = (dir) => {
    for (const entry of readdirSync(join(packageRoot, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else files.push(path);
    }
  };
  walk('native');
  for (const file of files.sort())
    hash
      .update(file)
      .update('\0')
      .update(readFileSync(join(packageRoot, file)));
}

/** @param {ReturnType<typeof findLibtorch>} libtorch */
function buildKey(libtorch) {
  const require = createRequire(import.meta.url);
  const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8'));
  const hash = createHash('sha256');
  hash.update(
    JSON.stringify({ version: pkg.version, platform: process.platform, arch: process.arch, libtorch: libtorchIdentity(libtorch) }),
  );
  hash.update(require('node-addon-api/package.json').version);
  hashSources(hash);
  return hash.digest('hex').slice(0, 32);
}

/** What makes two LibTorch choices the same for the compiler and the linker. @param {ReturnType<typeof findLibtorch>} libtorch */
function libtorchIdentity({ root, libDir, version, cuda, cxx11Abi, cxxStandard }) {
  return { root, libDir, version, cuda, cxx11Abi, cxxStandard };
}

function readRecord() {
  try {
    return JSON.parse(readFileSync(recordPath, 'utf8'));
  } catch {
    return undefined;
  }
}

function compile() {
  const cmakeJs = join(dirname(createRequire(import.meta.url).resolve('cmake-js/package.json')), 'bin/cmake-js');
  const started = Date.now();
  const result = spawnSync(process.execPath, [cmakeJs, 'compile', '--out', 'build/cmake'], { cwd: packageRoot, stdio: ['ignore', 2, 2] });
  if (result.status !== 0) {
    throw new Error(
      `Building the addon failed (cmake-js exit ${result.status ?? result.signal}); the compiler's message is above.\n` +
        'It needs cmake >= 3.18 and a C++ compiler (g++ >= 10; Debian/Ubuntu: sudo apt-get install cmake g++).',
    );
  }
  say(`built the addon in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

/** Copies `from` to `to` through a temporary name, so a reader never sees half a file. */
function copyAtomically(from, to) {
  mkdirSync(dirname(to), { recursive: true });
  const temp = `${to}.tmp-${process.pid}`;
  copyFileSync(from, temp);
  renameSync(temp, to);
}

/** Leaves only the addon and its record under build/. */
function removeBuildLeftovers() {
  for (const entry of readdirSync(join(packageRoot, 'build'))) {
    if (entry !== 'cmake') rmSync(join(packageRoot, 'build', entry), { recursive: true, force: true });
  }
  for (const entry of readdirSync(buildDir)) {
    if (entry !== 'Release') rmSync(join(buildDir, entry), { recursive: true, force: true });
  }
  for (const entry of readdirSync(dirname(addonPath))) {
    const path = join(dirname(addonPath), entry);
    if (path !== addonPath && path !== recordPath) rmSync(path, { recursive: true, force: true });
  }
}

function main(argv) {
  const force = argv.includes('--force');
  const libtorch = findLibtorch();
  const key = buildKey(libtorch);
  const record = readRecord();
  if (!force && record?.key === key && existsSync(addonPath)) {
    say(`the addon is up to date (${describeLibtorch(libtorch)})`);
    return;
  }
  say(`building the addon against ${describeLibtorch(libtorch)}`);
  if (!libtorch.cuda && existsSync('/proc/driver/nvidia/version')) {
    say(
      'this machine has an NVIDIA driver, but this LibTorch is CPU-only. For the GPU: LENET5_CUDA=1 npx lenet5 build --force ' +
        "(PyPI's CUDA libraries: about 2.2 GB more to download), or a Python PyTorch with CUDA (LENET5_PYTHON=...).",
    );
  }
  const cached = join(cacheRoot(), 'addons', key, 'lenet5_native.node');
  if (installedAsDependency && !force && existsSync(cached)) {
    copyAtomically(cached, addonPath);
    say(`reused the addon another project built for the same LibTorch (${cached})`);
  } else {
    // CMake caches compiler flags and LibTorch's paths: a cache made for another LibTorch must go.
    const sameLibtorch = record && JSON.stringify(record.libtorch) === JSON.stringify(libtorchIdentity(libtorch));
    if (!sameLibtorch) rmSync(buildDir, { recursive: true, force: true });
    compile();
    if (installedAsDependency) copyAtomically(addonPath, cached);
  }
  const built = { key, libtorch: libtorchIdentity(libtorch), source: libtorch.source, builtAt: new Date().toISOString() };
  writeFileSync(recordPath, JSON.stringify(built, null, 2) + '\n');
  if (installedAsDependency) removeBuildLeftovers();
  say(`addon ready: ${relative(process.cwd(), addonPath) || addonPath} (${(statSync(addonPath).size / 1e6).toFixed(1)} MB)`);
}

try {
  main(process.argv.slice(2));
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
}
