#!/usr/bin/env node
// npm run build:prebuilt (and npm pack, through prepack): builds prebuilds/linux-<arch>/lenet5_native.node,
// the addon the package ships, against the pinned PyPI LibTorch (scripts/libtorch/wheels.json),
// with a `libtorch` link beside it as its rpath (CMakeLists.txt, LENET5_PREBUILT), and its record
// (scripts/libtorch/prebuilt.mjs says what the install does with both).
//
// An addon needs the newest glibc and libstdc++ of the machine that compiled it. Built on an old
// userland it runs on everything newer: --root DIR (or LENET5_PREBUILD_ROOT) compiles inside that
// root with chroot (root only; docs/development.md makes a Debian 11 one: glibc 2.31). Without
// one it compiles here and records this machine's floor, which the install then enforces.
//
// Another arch is cross-compiled with its CMake toolchain file (scripts/arm64/toolchain.cmake),
// whose compiler must run where the compile does (here, or in the root), against that arch's pinned
// LibTorch; the same record, read from the file by readelf, which reads any arch's ELF.
//
// Usage: prebuild.mjs [--arch x64|arm64|all] [--root DIR] [--if-stale]
//   --arch: the arch to build, this machine's by default; all: every arch wheels.json pins, where an
//     arch other than this machine's without its cross compiler is left out of prebuilds/ (its folder
//     removed, so that a binary of older sources is never packed) instead of failing: npm pack's way
//   --if-stale: nothing to do for an arch whose record matches the sources
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { say, sha256OfFile } from './libtorch/cache.mjs';
import { prebuiltDir, sourcesHash } from './libtorch/prebuilt.mjs';
import { PINS, provisionLibtorch } from './libtorch/pypi.mjs';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The CMake toolchain file that cross-compiles for each arch (from any other). */
const TOOLCHAINS = { arm64: 'scripts/arm64/toolchain.cmake' };

/** @param {string[]} argv */
function options(argv) {
  const at = argv.indexOf('--root');
  const root = at >= 0 ? argv[at + 1] : process.env.LENET5_PREBUILD_ROOT || undefined;
  if (at >= 0 && !root) throw new Error('--root needs a folder: the userland to compile in.');
  const archAt = argv.indexOf('--arch');
  const arch = archAt >= 0 ? argv[archAt + 1] : process.arch;
  const pinned = Object.keys(PINS.arches);
  if (arch !== 'all' && !pinned.includes(arch)) throw new Error(`--arch must be ${pinned.join(', ')} or all, not ${arch}.`);
  return {
    root: root && resolve(root),
    ifStale: argv.includes('--if-stale'),
    arches: arch === 'all' ? pinned : [arch],
    all: arch === 'all',
  };
}

/** @param {string} arch @returns {boolean} whether prebuilds/ already holds the addon of these sources for `arch`, intact */
function upToDate(arch) {
  const outDir = prebuiltDir('linux', arch);
  try {
    const record = JSON.parse(readFileSync(join(outDir, 'lenet5_native.json'), 'utf8'));
    return (
      record.arch === arch &&
      record.sources === sourcesHash() &&
      record.libtorch.version === PINS.version &&
      sha256OfFile(join(outDir, 'lenet5_native.node')) === record.sha256
    );
  } catch {
    return false;
  }
}

/**
 * How `arch` is compiled here (or in `root`): natively, or with the cross compiler its toolchain
 * file names; `missing` says why it cannot be.
 * @param {string} arch @param {string | undefined} root
 * @returns {{ toolchain?: string, compiler?: string, missing?: string }}
 */
function crossCompile(arch, root) {
  if (arch === process.arch) return {};
  const file = TOOLCHAINS[/** @type {keyof typeof TOOLCHAINS} */ (arch)];
  if (!file) return { missing: `no CMake toolchain file cross-compiles for ${arch} here` };
  const toolchain = join(packageRoot, file);
  const compiler = readFileSync(toolchain, 'utf8').match(/^set\(CMAKE_CXX_COMPILER (\S+)\)/m)?.[1] ?? '';
  const probe = root
    ? spawnSync('chroot', [root, '/usr/bin/env', 'PATH=/usr/local/bin:/usr/bin:/bin', compiler, '--version'], { stdio: 'ignore' })
    : spawnSync(compiler, ['--version'], { stdio: 'ignore' });
  if (probe.status !== 0) {
    return {
      missing: `${root ? `the root ${root}` : 'this machine'} has no ${compiler} (Debian/Ubuntu: apt-get install g++-${compiler.replace(/-g\+\+$/, '')})`,
    };
  }
  return { toolchain, compiler };
}

/** @param {string} command @param {string[]} args @param {NodeJS.ProcessEnv} [env] */
function run(command, args, env = process.env) {
  const result = spawnSync(command, args, { stdio: ['ignore', 2, 2], env });
  if (result.status !== 0)
    throw new Error(
      `${command} ${args.slice(0, 3).join(' ')} ... failed (${result.error?.message ?? `exit ${result.status ?? result.signal}`})`,
    );
}

/**
 * Runs cmake-js for the prebuilt, here or inside `root`, with `toolchain` when it cross-compiles. In
 * the root, the package, its dependencies (node_modules may be a link elsewhere) and the LibTorch
 * appear at their own paths through bind mounts in a private mount namespace, gone when the build ends.
 * @param {string | undefined} root @param {string} libtorch @param {string} buildOut @param {string | undefined} toolchain
 */
function compile(root, libtorch, buildOut, toolchain) {
  const cmakeJs = join(dirname(createRequire(import.meta.url).resolve('cmake-js/package.json')), 'bin/cmake-js');
  const args = [cmakeJs, 'compile', '--out', buildOut, '--directory', packageRoot, '--CDLENET5_PREBUILT=ON'];
  if (toolchain) args.push(`--CDCMAKE_TOOLCHAIN_FILE=${toolchain}`);
  if (!root) {
    run(process.execPath, args, { ...process.env, LIBTORCH: libtorch });
    return;
  }
  for (const tool of ['unshare', 'chroot']) {
    if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).status !== 0) throw new Error(`--root needs ${tool} (util-linux, coreutils).`);
  }
  const shared = [packageRoot, realpathSync(join(packageRoot, 'node_modules')), libtorch];
  const script = [
    'set -e; root="$1"; shift 1',
    'for dir in /dev /proc "$@"; do mkdir -p "$root$dir"; mount --rbind "$dir" "$root$dir"; done',
    `exec chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LIBTORCH="${libtorch}" node ${args.map((arg) => `'${arg}'`).join(' ')}`,
  ].join('\n');
  run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', root, ...shared]);
}

/**
 * The newest version of each symbol family the file needs, e.g. GLIBC 2.29: its version needs
 * (readelf -V, which reads any arch's ELF, where objdump reads only its own).
 * @param {string} file @param {string} family
 */
function newestSymbolVersion(file, family) {
  const dump = spawnSync('readelf', ['-V', '-W', file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (dump.status !== 0) throw new Error(`readelf -V ${file} failed: binutils is needed to record the glibc the addon needs.`);
  const versions = [...dump.stdout.matchAll(new RegExp(`\\bName: ${family}_([0-9.]+)\\b`, 'g'))].map((match) => match[1]);
  return versions.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).pop() ?? '0';
}

/** The userland's name, for the record: PRETTY_NAME of its os-release. @param {string} root */
function systemName(root) {
  const osRelease = readFileSync(join(root, 'etc/os-release'), 'utf8');
  return osRelease.match(/^PRETTY_NAME="?([^"\n]*)"?$/m)?.[1] ?? 'unknown Linux';
}

/**
 * Builds prebuilds/linux-`arch`/ and its record.
 * @param {string} arch @param {string | undefined} root @param {{ toolchain?: string, compiler?: string }} cross
 */
async function buildPrebuilt(arch, root, { toolchain, compiler }) {
  const outDir = prebuiltDir('linux', arch);
  const buildOut = join(packageRoot, `build/prebuild-${arch}`);
  const libtorch = await provisionLibtorch({ arch, variant: 'cpu' });
  const how = `${root ? `inside ${root}` : 'on this machine'}${compiler ? ` with ${compiler}` : ''}`;
  say(`building the prebuilt addon for linux-${arch} against LibTorch ${PINS.version} (${libtorch}) ${how}`);
  // Hashed before the compile: sources edited while it runs must not be recorded as what it built.
  const sources = sourcesHash();
  rmSync(buildOut, { recursive: true, force: true });
  compile(root, libtorch, buildOut, toolchain);
  const built = join(buildOut, 'Release/lenet5_native.node');
  const record = {
    arch,
    libtorch: { version: PINS.version, cuda: false, cxx11Abi: true },
    sources,
    glibc: newestSymbolVersion(built, 'GLIBC'),
    glibcxx: newestSymbolVersion(built, 'GLIBCXX'),
    builtOn: `${systemName(root ?? '/')}${compiler ? ` (cross-compiled with ${compiler})` : ''}`,
    size: statSync(built).size,
    sha256: sha256OfFile(built),
  };
  mkdirSync(outDir, { recursive: true });
  copyFileSync(built, join(outDir, 'lenet5_native.node'));
  writeFileSync(join(outDir, 'lenet5_native.json'), JSON.stringify(record, null, 2) + '\n');
  rmSync(buildOut, { recursive: true, force: true });
  say(
    `prebuilt addon ready: ${outDir} (${(record.size / 1e6).toFixed(1)} MB; needs glibc >= ${record.glibc}, libstdc++ GLIBCXX_${record.glibcxx})`,
  );
}

async function main(argv) {
  const { root, ifStale, arches, all } = options(argv);
  const kept = [];
  const left = [];
  for (const arch of arches) {
    if (ifStale && upToDate(arch)) {
      say(`linux-${arch}: the prebuilt addon in ${prebuiltDir('linux', arch)} matches the native sources`);
      kept.push(`linux-${arch}`);
      continue;
    }
    const cross = crossCompile(arch, root);
    if (cross.missing && !all) throw new Error(`Cannot build the prebuilt addon for linux-${arch}: ${cross.missing}.`);
    if (cross.missing) {
      // A folder left from older sources would be packed and refused by every install: it goes.
      const stale = existsSync(prebuiltDir('linux', arch));
      rmSync(prebuiltDir('linux', arch), { recursive: true, force: true });
      left.push(`linux-${arch} (${cross.missing}${stale ? '; its out-of-date prebuilt addon removed' : ''})`);
      continue;
    }
    await buildPrebuilt(arch, root, cross);
    kept.push(`linux-${arch}`);
  }
  if (all) say(`prebuilt addons in prebuilds/: ${kept.join(', ') || 'none'}${left.length ? `; none for ${left.join(', ')}` : ''}`);
}

try {
  await main(process.argv.slice(2));
} catch (error) {
  say(error instanceof Error ? error.message : String(error));
  process.exit(1);
}
