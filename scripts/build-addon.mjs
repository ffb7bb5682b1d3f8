#!/usr/bin/env node
// Builds the native addon; the npm install hook, `npm run build` and `lenet5 build` all run it.
//  1. Resolves LibTorch (scripts/find-libtorch.mjs: fetches PyPI's into the user cache when the
//     machine has none).
//  2. Keys the build on the native sources and the LibTorch chosen (not the package version: a
//     release that changes no native code reuses the addon); when the addon already matches the
//     key, is the file that was built (size and SHA-256) and loads in a child process, it does
//     nothing, so `npm rebuild` rebuilds exactly when the choice changed or the addon is damaged.
//     A CMake cache made for another LibTorch is wiped first.
//  3. Uses the package's prebuilt addon (prebuilds/, scripts/libtorch/prebuilt.mjs) when it fits
//     that LibTorch and this machine and passes the same load test, pointing its `libtorch` link at
//     the LibTorch's libraries; else says why and compiles (LENET5_PREBUILT=0 always compiles).
//  4. Installed as a dependency (inside node_modules), it reuses an addon another project built
//     with the same key (the user cache again, checked the same way, one writer at a time), and
//     afterwards deletes everything under build/ but the addon: nothing for a user to carry.
//
// Usage: build-addon.mjs [--force]   (--force: install the prebuilt addon again, or compile again)
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkBuildTools, describeLibtorch, findLibtorch, retryCommand } from './find-libtorch.mjs';
import { makeTemp, removeAbandonedTemps, say, sha256OfFile, withLock } from './libtorch/cache.mjs';
import { fittingPrebuilt, sourcesHash } from './libtorch/prebuilt.mjs';
import { cacheRoot, libtorchDamage, librariesOnly, provisionLibtorch } from './libtorch/pypi.mjs';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = join(packageRoot, 'build/cmake');
const addonPath = join(buildDir, 'Release/lenet5_native.node');
/** Beside the addon: the key it was built for and the LibTorch it links (read by `lenet5 info`). */
const recordPath = join(buildDir, 'Release/lenet5_native.json');
/** Beside a prebuilt addon: the link to the LibTorch libraries it loads (its rpath is $ORIGIN/libtorch). */
const LIBTORCH_LINK = 'libtorch';
const installedAsDependency = packageRoot.split(sep).includes('node_modules');

/** @param {ReturnType<typeof findLibtorch>} libtorch */
function buildKey(libtorch) {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ platform: process.platform, arch: process.arch, libtorch: libtorchIdentity(libtorch) }));
  hash.update(sourcesHash());
  return hash.digest('hex').slice(0, 32);
}

/** What makes two LibTorch choices the same for the compiler and the linker. @param {ReturnType<typeof findLibtorch>} libtorch */
function libtorchIdentity({ root, libDir, version, cuda, cxx11Abi, cxxStandard }) {
  return { root, libDir, version, cuda, cxx11Abi, cxxStandard };
}

/** @param {string} path the JSON record beside an addon */
function readRecord(path) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

/** How long loading the addon in a child may take (LibTorch's libraries are large to map on a cold disk). */
const LOAD_TEST_TIMEOUT_MS = 120_000;

/**
 * Why the addon at `path` does not load, or undefined when it does, loaded in a child process that
 * takes the crash (a Bus error from a truncated library) so that this process can say what
 * happened. Every symbol is bound at load (RTLD_NOW): an addon compiled against the headers of
 * another LibTorch than the libraries it finds fails here with the missing symbol named, instead of
 * at its first call with "symbol lookup error" (exit 127).
 * @param {string} path
 */
function loadFailure(path) {
  const load = 'process.dlopen({ exports: {} }, process.argv[1], require("node:os").constants.dlopen.RTLD_NOW)';
  const child = spawnSync(process.execPath, ['-e', load, path], {
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: LOAD_TEST_TIMEOUT_MS,
  });
  if (child.status === 0) return undefined;
  const reason = child.signal ?? `exit ${child.status}`;
  const message = child.stderr
    .split('\n')
    .find((line) => /error/i.test(line))
    ?.trim();
  return `${reason}${message ? `: ${message}` : ''}`;
}

/**
 * What is wrong with the addon at `path` against its record, or undefined when it is the file that
 * was built (size and SHA-256) and loads (loadFailure).
 * @param {string} path @param {{ size?: number, sha256?: string } | undefined} record
 */
function addonDamage(path, record) {
  if (!existsSync(path)) return 'it is not there';
  if (!record?.sha256) return 'its record has no size and SHA-256 (built by an older lenet5-libtorch)';
  const size = statSync(path).size;
  if (size !== record.size) return `it has ${size} bytes, expected ${record.size}`;
  if (sha256OfFile(path) !== record.sha256) return 'it has changed since it was built (its SHA-256 differs)';
  const failure = loadFailure(path);
  return failure && `it does not load (${failure})`;
}

/**
 * Throws when the addon just compiled does not load: with an undefined symbol, the usual cause is a
 * LIBTORCH whose headers and libraries come from different LibTorch builds (the compile reads one,
 * the loader the other), so both are named.
 * @param {ReturnType<typeof findLibtorch>} libtorch
 */
function checkCompiledAddonLoads(libtorch) {
  const failure = loadFailure(addonPath);
  if (!failure) return;
  const mismatch = /undefined symbol/.test(failure)
    ? `\nIts headers (${libtorch.includeDirs[0]}, LibTorch ${libtorch.version}) declare a symbol its libraries (${libtorch.libDir}) lack: ` +
      'they look like parts of different LibTorch builds. Point LIBTORCH at one unpacked LibTorch whose include/ and lib/ belong together ' +
      '(or unset it to let the install fetch one).'
    : '';
  throw new Error(`The addon compiled against ${describeLibtorch(libtorch)} does not load (${failure}).${mismatch}`);
}

/** @param {string} addon @returns {{ size: number, sha256: string }} */
function fingerprint(addon) {
  return { size: statSync(addon).size, sha256: sha256OfFile(addon) };
}

/**
 * Compiles into build/cmake/Release with cmake-js, or with node-gyp (scripts/build-gyp.mjs, into
 * build/Release, then copied) where cmake is missing; without blocking the event loop, so that the
 * cache lock stays fresh meanwhile.
 * @param {'cmake-js' | 'node-gyp'} tool
 */
async function compile(tool) {
  const args =
    tool === 'cmake-js'
      ? [join(dirname(createRequire(import.meta.url).resolve('cmake-js/package.json')), 'bin/cmake-js'), 'compile', '--out', 'build/cmake']
      : [join(packageRoot, 'scripts/build-gyp.mjs')];
  if (tool === 'node-gyp') say('no cmake >= 3.19: compiling with node-gyp (binding.gyp) instead');
  const started = Date.now();
  const status = await new Promise((ok, fail) => {
    const child = spawn(process.execPath, args, { cwd: packageRoot, stdio: ['ignore', 2, 2] });
    child.on('error', fail);
    child.on('close', (code, signal) => ok(code ?? signal));
  });
  if (status !== 0) {
    throw new Error(
      `Building the addon failed (${tool} exit ${status}); the compiler's message is above.\n` +
        'It needs cmake >= 3.19 (or node-gyp with make and python3) and a C++ compiler (g++ >= 10; Debian/Ubuntu: sudo apt-get install cmake g++), and CXX, if set, must name one.\n' +
        `Once they are there, run "${retryCommand()}" again.`,
    );
  }
  if (tool === 'node-gyp') copyAtomically(join(packageRoot, 'build/Release/lenet5_native.node'), addonPath);
  say(`built the addon in ${((Date.now() - started) / 1000).toFixed(0)} s (${tool})`);
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
    if (path !== addonPath && path !== recordPath && entry !== LIBTORCH_LINK) rmSync(path, { recursive: true, force: true });
  }
}

/** The user cache's copy of the addon for `key`: a folder with the addon and its record. @param {string} key */
function sharedAddon(key) {
  const dir = join(cacheRoot(), 'addons', key);
  return { entry: `addon-${key}`, dir, addon: join(dir, 'lenet5_native.node'), record: join(dir, 'lenet5_native.json') };
}

/**
 * Puts this build's addon into the user cache for other projects: staged in a temp folder, renamed
 * into place whole. A cache this user may not write costs only the sharing, never the install.
 * @param {ReturnType<typeof sharedAddon>} shared @param {object} record
 */
function shareAddon(shared, record) {
  const temp = makeTemp(cacheRoot(), shared.entry);
  try {
    copyFileSync(addonPath, join(temp, 'lenet5_native.node'));
    writeFileSync(join(temp, 'lenet5_native.json'), JSON.stringify(record, null, 2) + '\n');
    mkdirSync(dirname(shared.dir), { recursive: true });
    rmSync(shared.dir, { recursive: true, force: true });
    renameSync(temp, shared.dir);
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

/**
 * The addon for `key`: another project's from the user cache when it checks out, else compiled
 * here (and shared), one install per key at a time.
 * @param {string} key @param {ReturnType<typeof findLibtorch>} libtorch @param {boolean} force
 */
async function reuseOrCompile(key, libtorch, force) {
  const shared = sharedAddon(key);
  const fresh = () => ({ key, libtorch: libtorchIdentity(libtorch), source: libtorch.source, builtAt: new Date().toISOString() });
  if (!installedAsDependency) {
    await compileHere(libtorch);
    return { ...fresh(), ...fingerprint(addonPath) };
  }
  const work = async () => {
    const cachedRecord = readRecord(shared.record);
    const damage = force ? 'a build was forced' : addonDamage(shared.addon, cachedRecord);
    if (!damage) {
      copyAtomically(shared.addon, addonPath);
      say(`reused the addon another project built for the same LibTorch (${shared.addon})`);
      return cachedRecord;
    }
    if (existsSync(shared.dir)) say(`not reusing the cached addon ${shared.addon}: ${damage}. Building it again.`);
    await compileHere(libtorch);
    const record = { ...fresh(), ...fingerprint(addonPath) };
    try {
      shareAddon(shared, record);
    } catch (error) {
      say(
        `could not share the addon through the cache ${cacheRoot()} (${/** @type {Error} */ (error).message}); this project's addon is fine.`,
      );
    }
    return record;
  };
  try {
    return await withLock(cacheRoot(), shared.entry, work);
  } catch (error) {
    // Taking the lock (a mkdir) is the first write to the cache: failing there means a cache this user cannot write.
    const { code, syscall, path } = /** @type {NodeJS.ErrnoException} */ (error);
    if (syscall !== 'mkdir' || !path?.startsWith(cacheRoot())) throw error;
    say(`the cache ${cacheRoot()} is not writable (${code}): building without sharing the addon.`);
    await compileHere(libtorch);
    return { ...fresh(), ...fingerprint(addonPath) };
  }
}

/**
 * Compares the cached LibTorch's files with the SHA-256 recorded when it was fetched, and fetches it
 * again when they differ, or when it was fetched without its headers (for a prebuilt addon). The
 * resolver compares sizes only (it runs often, and hashing 500 MB takes seconds); a compile links
 * against the libraries, so it checks them whole first, rather than fail after a minute with a
 * linker message that blames the compiler.
 * @param {string} dir
 */
async function checkLibtorchContents(dir) {
  const damage =
    libtorchDamage(dir, true) ??
    (librariesOnly(dir) ? 'it holds the libraries only (fetched for the prebuilt addon), without the headers a compile needs' : undefined);
  if (!damage) return;
  if (process.env.LENET5_LIBTORCH_DOWNLOAD === '0') {
    throw new Error(
      `The cached LibTorch ${dir} cannot be compiled against: ${damage}.\n` +
        'LENET5_LIBTORCH_DOWNLOAD=0 forbids fetching it again: allow it, or remove that folder and provide a LibTorch another way (LIBTORCH, LENET5_PYTHON).',
    );
  }
  await provisionLibtorch({ hashes: true });
}

/**
 * Compiles into build/cmake, then load-tests the result. The addon already there is set aside first
 * and put back when the compile or the load test fails (cmake-js deletes the build folder to "try a
 * full rebuild"), so a failed `lenet5 build --force` leaves the working addon in place.
 * @param {ReturnType<typeof findLibtorch>} libtorch
 */
async function compileHere(libtorch) {
  // Before anything is fetched for it: a compile this machine cannot do must not download first.
  const tool = checkBuildTools('before compiling');
  if (libtorch.source === 'pypi') await checkLibtorchContents(libtorch.root);
  const record = readRecord(recordPath);
  const kept = join(packageRoot, 'build/previous-addon');
  rmSync(kept, { recursive: true, force: true });
  if (existsSync(addonPath) && record) {
    mkdirSync(kept, { recursive: true });
    copyFileSync(addonPath, join(kept, 'lenet5_native.node'));
    copyFileSync(recordPath, join(kept, 'lenet5_native.json'));
  }
  // CMake caches compiler flags and LibTorch's paths: a cache made for another LibTorch must go.
  const sameLibtorch = record && JSON.stringify(record.libtorch) === JSON.stringify(libtorchIdentity(libtorch));
  if (!sameLibtorch) rmSync(buildDir, { recursive: true, force: true });
  try {
    await compile(tool);
    checkCompiledAddonLoads(libtorch);
    // A compiled addon finds LibTorch through the path recorded at build time: a prebuilt's link is stale now.
    rmSync(join(dirname(addonPath), LIBTORCH_LINK), { force: true });
  } catch (error) {
    if (existsSync(kept)) {
      copyAtomically(join(kept, 'lenet5_native.node'), addonPath);
      copyAtomically(join(kept, 'lenet5_native.json'), recordPath);
      /** @type {Error} */ (error).message += `\nThe addon that was there before is kept: ${addonPath}.`;
    } else {
      rmSync(addonPath, { force: true }); // one that does not load must not be found by the next run
    }
    throw error;
  } finally {
    rmSync(kept, { recursive: true, force: true });
  }
}

/**
 * Puts the package's prebuilt addon in place for `libtorch`, when it fits: staged beside the
 * addon with its `libtorch` link and load-tested there, then moved into place, so that a prebuilt
 * that does not load here never replaces a working addon.
 * @param {ReturnType<typeof findLibtorch>} libtorch @param {string} key
 * @returns {{ record: object } | { reason: string }}
 */
function installPrebuilt(libtorch, key) {
  const prebuilt = fittingPrebuilt(libtorch);
  if ('reason' in prebuilt) return prebuilt;
  const staging = join(buildDir, 'prebuilt-staging');
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  try {
    const staged = join(staging, 'lenet5_native.node');
    copyFileSync(prebuilt.addon, staged);
    symlinkSync(libtorch.libDir, join(staging, LIBTORCH_LINK));
    const record = {
      key,
      libtorch: libtorchIdentity(libtorch),
      source: libtorch.source,
      prebuilt: { glibc: prebuilt.record.glibc, glibcxx: prebuilt.record.glibcxx, builtOn: prebuilt.record.builtOn },
      ...fingerprint(staged),
    };
    const damage = addonDamage(staged, record);
    if (damage) return { reason: `the prebuilt addon ${prebuilt.addon} ${damage}` };
    mkdirSync(dirname(addonPath), { recursive: true });
    renameSync(staged, addonPath);
    rmSync(join(dirname(addonPath), LIBTORCH_LINK), { force: true });
    renameSync(join(staging, LIBTORCH_LINK), join(dirname(addonPath), LIBTORCH_LINK));
    return { record };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

async function main(argv) {
  const force = argv.includes('--force');
  removeAbandonedTemps(cacheRoot());
  const libtorch = findLibtorch();
  const key = buildKey(libtorch);
  const record = readRecord(recordPath);
  if (!force && record?.key === key) {
    const damage = addonDamage(addonPath, record);
    if (!damage) {
      say(`the addon is up to date (${describeLibtorch(libtorch)})`);
      return;
    }
    say(`the addon ${addonPath} is damaged: ${damage}. Building it again.`);
  }
  say(`building the addon against ${describeLibtorch(libtorch)}`);
  if (!libtorch.cuda && existsSync('/proc/driver/nvidia/version')) {
    say(
      'this machine has an NVIDIA driver, but this LibTorch is CPU-only. For the GPU: LENET5_CUDA=1 npx lenet5 build --force ' +
        "(PyPI's CUDA libraries: about 2.2 GB more to download), or a Python PyTorch with CUDA (LENET5_PYTHON=...).",
    );
  }
  const prebuilt = installPrebuilt(libtorch, key);
  let built;
  if ('record' in prebuilt) {
    built = prebuilt.record;
    say(`using the prebuilt addon (built on ${built.prebuilt.builtOn}; needs glibc >= ${built.prebuilt.glibc}): nothing to compile`);
  } else {
    say(`not using a prebuilt addon: ${prebuilt.reason}`);
    built = await reuseOrCompile(key, libtorch, force);
  }
  writeFileSync(recordPath, JSON.stringify(built, null, 2) + '\n');
  if (installedAsDependency) removeBuildLeftovers();
  say(`addon ready: ${relative(process.cwd(), addonPath) || addonPath} (${(statSync(addonPath).size / 1e6).toFixed(1)} MB)`);
}

try {
  await main(process.argv.slice(2));
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
}
