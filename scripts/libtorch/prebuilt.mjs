// Prebuilt addons inside the package, one per platform and arch (prebuilds/linux-x64/), made by
// scripts/prebuild.mjs against the pinned PyPI LibTorch, the way prebuildify and sharp ship
// binaries: an install that resolves a LibTorch of that build uses the file and compiles nothing.
// A prebuilt addon finds LibTorch through a `libtorch` link beside it (its rpath is
// $ORIGIN/libtorch), which the install points at the LibTorch it picked.
//
// Each one has a record beside it (lenet5_native.json): its arch, the LibTorch it was built for, the hash of
// the native sources it was built from, and the newest glibc and libstdc++ symbol versions it
// needs (readelf of the file), so that an install can tell before loading it whether it can fit.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The folder of the prebuilt addon for a platform and arch (this machine's by default). @param {string} [platform] @param {string} [arch] */
export function prebuiltDir(platform = process.platform, arch = process.arch) {
  return join(packageRoot, 'prebuilds', `${platform}-${arch}`);
}

/**
 * The SHA-256 of everything the addon is compiled from (CMakeLists.txt, native/, the version of
 * node-addon-api's headers), in a stable order: equal hashes mean the same addon, whatever the
 * package version.
 */
export function sourcesHash() {
  const files = ['CMakeLists.txt'];
  const walk = (/** @type {string} */ dir) => {
    for (const entry of readdirSync(join(packageRoot, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else files.push(path);
    }
  };
  walk('native');
  const hash = createHash('sha256');
  hash.update(createRequire(import.meta.url)('node-addon-api/package.json').version);
  for (const file of files.sort())
    hash
      .update(file)
      .update('\0')
      .update(readFileSync(join(packageRoot, file)));
  return hash.digest('hex');
}

/** @param {string} a @param {string} b @returns {number} <0, 0 or >0 as version a is older, equal or newer */
export function compareVersions(a, b) {
  const [x, y] = [a, b].map((version) => version.split('.').map(Number));
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const difference = (x[i] ?? 0) - (y[i] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

/** The glibc this process runs on ("2.36"), or undefined where the C library is not glibc (musl). */
function runtimeGlibc() {
  const header = /** @type {{ header: { glibcVersionRuntime?: string } }} */ (process.report.getReport()).header;
  return header.glibcVersionRuntime;
}

/**
 * @typedef {{ arch: string, libtorch: { version: string, cuda: boolean, cxx11Abi: boolean }, sources: string, glibc: string,
 *   glibcxx: string, builtOn: string, size: number, sha256: string }} PrebuiltRecord
 */

/**
 * The prebuilt addon for this machine when it fits a LibTorch with `libtorch`'s version, CUDA and
 * ABI, else why not (a sentence for the install's log). Only the load test (scripts/build-addon.mjs)
 * can tell the rest, such as a libstdc++ older than the record's.
 * @param {{ version: string, cuda: boolean, cxx11Abi: boolean }} libtorch
 * @returns {{ addon: string, record: PrebuiltRecord } | { reason: string }}
 */
export function fittingPrebuilt(libtorch) {
  if (process.env.LENET5_PREBUILT === '0') return { reason: 'LENET5_PREBUILT=0 asks for a compile' };
  const dir = prebuiltDir();
  /** @type {PrebuiltRecord} */
  let record;
  try {
    record = JSON.parse(readFileSync(join(dir, 'lenet5_native.json'), 'utf8'));
  } catch {
    return { reason: `this package has no prebuilt addon for ${process.platform}-${process.arch}` };
  }
  if (record.arch !== process.arch) return { reason: `the prebuilt addon in ${dir} was built for linux-${record.arch}` };
  const built = record.libtorch;
  if (built.version !== libtorch.version || built.cuda !== libtorch.cuda || built.cxx11Abi !== libtorch.cxx11Abi) {
    const describe = (/** @type {typeof libtorch} */ l) =>
      `LibTorch ${l.version}${l.cuda ? ' with CUDA' : ''}${l.cxx11Abi ? '' : ' (old C++ ABI)'}`;
    return { reason: `the prebuilt addon is for ${describe(built)}, and this build links ${describe(libtorch)}` };
  }
  if (record.sources !== sourcesHash()) return { reason: 'the native sources differ from those the prebuilt addon was built from' };
  const glibc = runtimeGlibc();
  if (!glibc) return { reason: `the prebuilt addon needs glibc ${record.glibc} or newer, and this system's C library is not glibc` };
  if (compareVersions(glibc, record.glibc) < 0) {
    return { reason: `the prebuilt addon needs glibc ${record.glibc} or newer, and this system has ${glibc}` };
  }
  return { addon: join(dir, 'lenet5_native.node'), record };
}
