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
// Usage: prebuild.mjs [--root DIR] [--if-stale]   --if-stale: nothing to do when the record matches the sources
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { say, sha256OfFile } from './libtorch/cache.mjs';
import { prebuiltDir, sourcesHash } from './libtorch/prebuilt.mjs';
import { PINS, provisionLibtorch } from './libtorch/pypi.mjs';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = prebuiltDir('linux', process.arch);
const buildOut = join(packageRoot, `build/prebuild-${process.arch}`);

/** @param {string[]} argv */
function options(argv) {
  const at = argv.indexOf('--root');
  const root = at >= 0 ? argv[at + 1] : process.env.LENET5_PREBUILD_ROOT || undefined;
  if (at >= 0 && !root) throw new Error('--root needs a folder: the userland to compile in.');
  return { root: root && resolve(root), ifStale: argv.includes('--if-stale') };
}

/** @returns {boolean} whether prebuilds/ already holds the addon of these sources, intact */
function upToDate() {
  const addon = join(outDir, 'lenet5_native.node');
  try {
    const record = JSON.parse(readFileSync(join(outDir, 'lenet5_native.json'), 'utf8'));
    return record.sources === sourcesHash() && record.libtorch.version === PINS.version && sha256OfFile(addon) === record.sha256;
  } catch {
    return false;
  }
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
 * Runs cmake-js for the prebuilt, here or inside `root`. In the root, the package, its
 * dependencies (node_modules may be a link elsewhere) and the LibTorch appear at their own paths
 * through bind mounts in a private mount namespace, gone when the build ends.
 * @param {string | undefined} root @param {string} libtorch
 */
function compile(root, libtorch) {
  const cmakeJs = join(dirname(createRequire(import.meta.url).resolve('cmake-js/package.json')), 'bin/cmake-js');
  const args = [cmakeJs, 'compile', '--out', buildOut, '--directory', packageRoot, '--CDLENET5_PREBUILT=ON'];
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

/** The newest version of each symbol family the file needs, e.g. GLIBC 2.29. @param {string} file @param {string} family */
function newestSymbolVersion(file, family) {
  const dump = spawnSync('objdump', ['-T', file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (dump.status !== 0) throw new Error(`objdump -T ${file} failed: binutils is needed to record the glibc the addon needs.`);
  const versions = [...dump.stdout.matchAll(new RegExp(`\\b${family}_([0-9.]+)\\b`, 'g'))].map((match) => match[1]);
  return versions.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).pop() ?? '0';
}

/** The userland's name, for the record: PRETTY_NAME of its os-release. @param {string} root */
function systemName(root) {
  const osRelease = readFileSync(join(root, 'etc/os-release'), 'utf8');
  return osRelease.match(/^PRETTY_NAME="?([^"\n]*)"?$/m)?.[1] ?? 'unknown Linux';
}

async function main(argv) {
  const { root, ifStale } = options(argv);
  if (ifStale && upToDate()) {
    say(`the prebuilt addon in ${outDir} matches the native sources`);
    return;
  }
  const libtorch = await provisionLibtorch({ variant: 'cpu' });
  say(
    `building the prebuilt addon for linux-${process.arch} against LibTorch ${PINS.version} (${libtorch}) ${root ? `inside ${root}` : 'on this machine'}`,
  );
  // Hashed before the compile: sources edited while it runs must not be recorded as what it built.
  const sources = sourcesHash();
  rmSync(buildOut, { recursive: true, force: true });
  compile(root, libtorch);
  const built = join(buildOut, 'Release/lenet5_native.node');
  const record = {
    libtorch: { version: PINS.version, cuda: false, cxx11Abi: true },
    sources,
    glibc: newestSymbolVersion(built, 'GLIBC'),
    glibcxx: newestSymbolVersion(built, 'GLIBCXX'),
    builtOn: systemName(root ?? '/'),
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

try {
  await main(process.argv.slice(2));
} catch (error) {
  say(error instanceof Error ? error.message : String(error));
  process.exit(1);
}
