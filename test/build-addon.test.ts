// scripts/build-addon.mjs as an install runs it, on a package laid out here inside a node_modules
// folder (so it shares addons through the cache) with a LibTorch folder that has only the files the
// resolver reads, and a stand-in cmake-js that "compiles" by copying this checkout's built addon.
// The real compile runs in install.test.ts.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sourcesHash } from '../scripts/libtorch/prebuilt.mjs';
import { root, tempDir } from './helpers.js';
import { libtorchName, pins, writeFakePython, writeLibtorchCache, writeUnboundAddon } from './libtorch-fixtures.js';

const dir = tempDir();
const builtAddon = join(root, 'build/cmake/Release/lenet5_native.node');
const libtorch = join(dir, 'libtorch');
mkdirSync(join(libtorch, 'include/torch'), { recursive: true });
mkdirSync(join(libtorch, 'lib'), { recursive: true });

/** A project with this package installed in node_modules; returns the package folder. */
function installedPackage(project: string): string {
  const pkg = join(dir, project, 'node_modules/lenet5-libtorch');
  mkdirSync(pkg, { recursive: true });
  for (const path of [
    'scripts/build-addon.mjs',
    'scripts/build-gyp.mjs',
    'scripts/find-libtorch.mjs',
    'scripts/libtorch',
    'CMakeLists.txt',
    'binding.gyp',
    'native',
    'package.json',
  ]) {
    cpSync(join(root, path), join(pkg, path), { recursive: true });
  }
  mkdirSync(join(pkg, 'node_modules'));
  for (const dependency of ['yauzl', 'node-addon-api']) {
    symlinkSync(join(root, 'node_modules', dependency), join(pkg, 'node_modules', dependency), 'dir');
  }
  const cmakeJs = join(pkg, 'node_modules/cmake-js');
  mkdirSync(join(cmakeJs, 'bin'), { recursive: true });
  writeFileSync(join(cmakeJs, 'package.json'), '{ "name": "cmake-js", "version": "0.0.0" }');
  writeFileSync(
    join(cmakeJs, 'bin/cmake-js'),
    `const { cpSync, mkdirSync } = require('node:fs');
if (process.env.FAKE_COMPILE_FAIL) {
  // What cmake-js does when a compile fails: "trying to do a full rebuild" deletes the build folder.
  require('node:fs').rmSync('build/cmake', { recursive: true, force: true });
  console.error('fake compiler error');
  process.exit(1);
}
mkdirSync('build/cmake/Release', { recursive: true });
cpSync(process.env.FAKE_COMPILE_OUTPUT || ${JSON.stringify(builtAddon)}, 'build/cmake/Release/lenet5_native.node');
console.error('fake cmake-js: compiled');
`,
  );
  return pkg;
}

function build(pkg: string, cache: string, args: string[] = [], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [join(pkg, 'scripts/build-addon.mjs'), ...args], {
    env: { ...process.env, LIBTORCH: libtorch, LENET5_CACHE_DIR: cache, ...env },
    encoding: 'utf8',
  });
  return { status: result.status, log: result.stderr + result.stdout };
}

const addonOf = (pkg: string) => join(pkg, 'build/cmake/Release/lenet5_native.node');
const sharedAddons = (cache: string) => readdirSync(join(cache, 'addons')).map((key) => join(cache, 'addons', key));

describe('the addon cache', () => {
  it('reuses a cached addon only after checking it: a truncated one is rebuilt and replaced, with the cache named', () => {
    const cache = join(dir, 'cache-truncated');
    const first = build(installedPackage('one'), cache);
    expect(first.log).toContain('fake cmake-js: compiled');
    expect(first.status, first.log).toBe(0);
    const [shared] = sharedAddons(cache);
    const second = build(installedPackage('two'), cache);
    expect(second.status, second.log).toBe(0);
    expect(second.log).toContain('reused the addon another project built');

    truncateSync(join(shared, 'lenet5_native.node'), 4096);
    const third = build(installedPackage('three'), cache);
    expect(third.status, third.log).toBe(0);
    expect(third.log).toContain(`not reusing the cached addon ${join(shared, 'lenet5_native.node')}: it has 4096 bytes, expected`);
    expect(third.log).toContain('fake cmake-js: compiled');
    expect(readFileSync(join(shared, 'lenet5_native.node')).equals(readFileSync(builtAddon))).toBe(true);
  });

  it('does not reuse a cached addon that does not load, even with its recorded size and hash', () => {
    const cache = join(dir, 'cache-unloadable');
    build(installedPackage('four'), cache);
    const [shared] = sharedAddons(cache);
    // A file that is not an addon, recorded as if it were the build.
    const garbage = Buffer.from('not an ELF file');
    writeFileSync(join(shared, 'lenet5_native.node'), garbage);
    const record = JSON.parse(readFileSync(join(shared, 'lenet5_native.json'), 'utf8'));
    record.size = garbage.length;
    record.sha256 = createHash('sha256').update(garbage).digest('hex');
    writeFileSync(join(shared, 'lenet5_native.json'), JSON.stringify(record));
    const next = build(installedPackage('five'), cache);
    expect(next.status, next.log).toBe(0);
    expect(next.log).toMatch(/not reusing the cached addon .*: it does not load \(exit 1/);
  });

  it("rebuilds the project's own addon when it is truncated, instead of calling it up to date", () => {
    const cache = join(dir, 'cache-own');
    const pkg = installedPackage('six');
    build(pkg, cache);
    expect(build(pkg, cache).log).toContain('the addon is up to date');
    truncateSync(addonOf(pkg), 4096);
    const again = build(pkg, cache);
    expect(again.status, again.log).toBe(0);
    expect(again.log).toContain(`the addon ${addonOf(pkg)} is damaged: it has 4096 bytes, expected`);
    expect(readFileSync(addonOf(pkg)).equals(readFileSync(builtAddon))).toBe(true);
  });

  it('a cache the user may not write costs the sharing, not the install', () => {
    // A path under a plain file: no user can write there, root included (as chmod would not stop root).
    writeFileSync(join(dir, 'a-file'), '');
    const cache = join(dir, 'a-file/cache');
    const result = build(installedPackage('seven'), cache);
    expect(result.status, result.log).toBe(0);
    expect(result.log).toMatch(new RegExp(`the cache ${cache} is not writable \\(ENOTDIR\\): building without sharing the addon`));
    expect(existsSync(addonOf(join(dir, 'seven/node_modules/lenet5-libtorch')))).toBe(true);
  });
});

describe('a failed build', () => {
  it('keeps the working addon when a forced rebuild fails, and says so', () => {
    const cache = join(dir, 'cache-failed');
    const pkg = installedPackage('eight');
    build(pkg, cache);
    const failed = build(pkg, cache, ['--force'], { FAKE_COMPILE_FAIL: '1' });
    expect(failed.status).toBe(1);
    expect(failed.log).toContain(`The addon that was there before is kept: ${addonOf(pkg)}`);
    expect(readFileSync(addonOf(pkg)).equals(readFileSync(builtAddon))).toBe(true);
    expect(build(pkg, cache).log).toContain('the addon is up to date');
  });

  it('inside npm install, says to run npm install again (npm removes the package), never npm rebuild or a bare npx lenet5', () => {
    const pkg = installedPackage('nine');
    const inInstall = {
      npm_lifecycle_event: 'install',
      LIBTORCH: '',
      LIBTORCH_USE_PYTORCH: '0',
      LENET5_LIBTORCH: 'pypi',
      LENET5_LIBTORCH_DOWNLOAD: '0',
    };
    const noLibtorch = build(pkg, join(dir, 'cache-none'), [], inInstall);
    expect(noLibtorch.status).toBe(1);
    expect(noLibtorch.log).toContain('then run "npm install lenet5-libtorch" again');
    expect(noLibtorch.log).toContain('LENET5_PYTHON=/path/to/python npm install lenet5-libtorch');
    const noCompiler = build(pkg, join(dir, 'cache-none'), [], { npm_lifecycle_event: 'install', FAKE_COMPILE_FAIL: '1' });
    expect(noCompiler.status).toBe(1);
    expect(noCompiler.log).toContain('Once they are there, run "npm install lenet5-libtorch" again.');
    for (const log of [noLibtorch.log, noCompiler.log]) {
      expect(log).not.toMatch(/npm rebuild|npx lenet5 build/);
    }
  });
});

describe('the build tools', () => {
  it('are checked before the LibTorch download that only a compile would use', () => {
    const emptyPath = join(dir, 'empty-bin');
    mkdirSync(emptyPath);
    const result = build(installedPackage('ten'), join(dir, 'cache-no-tools'), [], {
      PATH: emptyPath,
      LIBTORCH: '',
      LIBTORCH_USE_PYTORCH: '0',
      LENET5_LIBTORCH: 'pypi',
      CXX: '',
    });
    expect(result.status).toBe(1);
    expect(result.log).toContain('the addon has to be compiled on this machine, and it lacks cmake >= 3.19 (not found on PATH;');
    expect(result.log).toContain('and a C++ compiler (no c++ on PATH)');
    expect(result.log).toContain('checked before downloading LibTorch');
    expect(result.log).not.toContain('fetching LibTorch');
  });
});

describe('without cmake', () => {
  it('compiles with node-gyp (binding.gyp) when make, python3 and a compiler are there', () => {
    // Stand-ins on an otherwise empty PATH: a compiler, make and python3 that answer --version, and
    // npm's node-gyp (named by npm_config_node_gyp in npm scripts) that "compiles" by copying.
    const tools = join(dir, 'gyp-bin');
    mkdirSync(tools);
    for (const tool of ['c++', 'make', 'python3']) {
      writeFileSync(join(tools, tool), `#!/bin/sh\necho "${tool} 99.0 (a stand-in)"\n`, { mode: 0o755 });
    }
    const nodeGyp = join(dir, 'fake-node-gyp.js');
    writeFileSync(
      nodeGyp,
      `const { copyFileSync, mkdirSync } = require('node:fs');
mkdirSync('build/Release', { recursive: true });
copyFileSync(${JSON.stringify(builtAddon)}, 'build/Release/lenet5_native.node');
console.error('fake node-gyp: ' + process.argv.slice(2).join(' '));
`,
    );
    const pkg = installedPackage('gyp');
    const result = build(pkg, join(dir, 'cache-gyp'), [], { PATH: tools, npm_config_node_gyp: nodeGyp });
    expect(result.status, result.log).toBe(0);
    expect(result.log).toContain('no cmake >= 3.19: compiling with node-gyp (binding.gyp) instead');
    expect(result.log).toContain('fake node-gyp: configure build');
    expect(result.log).toMatch(/built the addon in \d+ s \(node-gyp\)/);
    expect(result.log).not.toContain('fake cmake-js: compiled');
    expect(readFileSync(addonOf(pkg)).equals(readFileSync(builtAddon))).toBe(true);
  });
});

describe('the compiled addon', () => {
  it('is load-tested with every symbol bound: headers and libraries of different LibTorch builds fail the build, both named', () => {
    const stub = writeUnboundAddon(dir);
    const mixed = join(dir, 'libtorch-mixed');
    mkdirSync(join(mixed, 'include/torch/csrc/api/include/torch'), { recursive: true });
    mkdirSync(join(mixed, 'lib'));
    writeFileSync(
      join(mixed, 'include/torch/csrc/api/include/torch/version.h'),
      '#define TORCH_VERSION_MAJOR 1\n#define TORCH_VERSION_MINOR 13\n#define TORCH_VERSION_PATCH 1\n',
    );
    const pkg = installedPackage('mixed-libtorch');
    const result = build(pkg, join(dir, 'cache-mixed'), [], { LIBTORCH: mixed, FAKE_COMPILE_OUTPUT: stub });
    expect(result.status).toBe(1);
    expect(result.log).toContain('fake cmake-js: compiled');
    expect(result.log).toContain(
      `The addon compiled against LibTorch 1.13.1 (CPU only) from LIBTORCH: ${join(mixed, 'lib')} does not load (exit 1:`,
    );
    expect(result.log).toContain('undefined symbol: lenet5_symbol_of_other_headers');
    expect(result.log).toContain(
      `Its headers (${join(mixed, 'include')}, LibTorch 1.13.1) declare a symbol its libraries (${join(mixed, 'lib')}) lack: they look like parts of different LibTorch builds.`,
    );
    expect(existsSync(addonOf(pkg))).toBe(false);
  });
});

describe('the addon at run time', () => {
  it('is loaded with every symbol bound: one whose LibTorch lacks a symbol is a clear load error, not exit 127 at a later call', () => {
    const result = spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), 'info'], {
      env: { ...process.env, LENET5_ADDON: writeUnboundAddon(dir) },
      encoding: 'utf8',
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('Could not load the lenet5 native addon');
    expect(result.stderr).toContain('undefined symbol: lenet5_symbol_of_other_headers');
  });

  it('is not loaded when a library of its cached LibTorch was cut short: a clear error, not a Bus error', () => {
    const cache = writeLibtorchCache(join(dir, 'cut-short-cache'), { headers: false });
    const folder = join(cache, libtorchName);
    const addonDir = join(dir, 'cut-short-addon');
    mkdirSync(addonDir);
    writeFileSync(join(addonDir, 'lenet5_native.node'), 'never loaded');
    writeFileSync(join(addonDir, 'lenet5_native.json'), JSON.stringify({ libtorch: { root: folder } }));
    truncateSync(join(folder, 'lib/libc10.so'), 3);
    const result = spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), 'info'], {
      env: { ...process.env, LENET5_ADDON: join(addonDir, 'lenet5_native.node') },
      encoding: 'utf8',
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      `the LibTorch it links, in this package's cache, is damaged: ${join(folder, 'lib/libc10.so')} has 3 bytes, 17 expected`,
    );
    expect(result.stderr).toContain('npx lenet5 build --force');
    expect(result.stderr).toContain('ERR_LENET5_ADDON_LOAD');
  });
});

describe('the cached LibTorch before a compile', () => {
  it('is checked whole (SHA-256), so a changed library is fetched again instead of failing the link', () => {
    const cache = writeLibtorchCache(join(dir, 'cache-bitrot'));
    const libtorch = join(cache, libtorchName);
    writeFileSync(join(libtorch, 'lib/libc10.so'), 'ELF and then sOme'); // same size, one byte changed
    const result = build(installedPackage('eleven'), cache, ['--force'], {
      LIBTORCH: '',
      LIBTORCH_USE_PYTORCH: '0',
      LENET5_LIBTORCH: 'pypi',
      LENET5_PYTHON: writeFakePython(join(dir, 'python-bitrot'), 'not a wheel'),
    });
    expect(result.log).toContain(
      `the cached LibTorch ${libtorch} is damaged: lib/libc10.so has changed since it was written (its SHA-256 differs). Fetching it again.`,
    );
    expect(result.log).not.toContain('fake cmake-js: compiled');
  });
});

describe('the prebuilt addon', () => {
  /** PyPI's LibTorch from the cache only: neither LIBTORCH nor a Python, as on a machine with no LibTorch. */
  const pypiOnly = { LIBTORCH: '', LIBTORCH_USE_PYTORCH: '0', LENET5_LIBTORCH: 'pypi' };

  /**
   * Gives the package a prebuilt addon for this machine (or `arch`) as scripts/prebuild.mjs leaves
   * it: this checkout's addon stands in for the file (it loads here), with a record that fits this
   * checkout's sources, the pinned LibTorch and any glibc, changed by `record`.
   */
  function withPrebuilt(pkg: string, record: Record<string, unknown> = {}, file = readFileSync(builtAddon), arch = process.arch): string {
    const prebuilt = join(pkg, 'prebuilds', `linux-${arch}`);
    mkdirSync(prebuilt, { recursive: true });
    writeFileSync(join(prebuilt, 'lenet5_native.node'), file);
    const fits = {
      arch,
      libtorch: { version: pins.version, cuda: false, cxx11Abi: true },
      sources: sourcesHash(),
      glibc: '2.17',
      glibcxx: '3.4.22',
      builtOn: 'a test',
      size: file.length,
      sha256: createHash('sha256').update(file).digest('hex'),
    };
    writeFileSync(join(prebuilt, 'lenet5_native.json'), JSON.stringify({ ...fits, ...record }));
    return pkg;
  }

  it('is used when it fits the LibTorch the rule picks: nothing compiled, no build tool on PATH, its libtorch link made', () => {
    const cache = writeLibtorchCache(join(dir, 'cache-prebuilt'));
    const pkg = withPrebuilt(installedPackage('prebuilt-fits'));
    const noTools = join(dir, 'prebuilt-empty-bin');
    mkdirSync(noTools);
    const result = build(pkg, cache, [], { ...pypiOnly, PATH: noTools });
    expect(result.status, result.log).toBe(0);
    expect(result.log).toContain('using the prebuilt addon (built on a test; needs glibc >= 2.17): nothing to compile');
    expect(result.log).not.toContain('fake cmake-js: compiled');
    expect(readFileSync(addonOf(pkg)).equals(readFileSync(builtAddon))).toBe(true);
    expect(readlinkSync(join(pkg, 'build/cmake/Release/libtorch'))).toBe(join(cache, libtorchName, 'lib'));
    expect(build(pkg, cache, [], { ...pypiOnly, PATH: noTools }).log).toContain('the addon is up to date');
  });

  it.each([
    [
      'needs a newer glibc than this system has',
      { glibc: '99.0' },
      /the prebuilt addon needs glibc 99\.0 or newer, and this system has 2\.\d+/,
    ],
    ['was built from other native sources', { sources: 'other' }, /the native sources differ from those the prebuilt addon was built from/],
    ['is a record of another arch', { arch: 'other' }, /the prebuilt addon in .*prebuilds\/linux-\w+ was built for linux-other/],
    [
      'was built for another LibTorch',
      { libtorch: { version: '9.9.9', cuda: false, cxx11Abi: true } },
      /the prebuilt addon is for LibTorch 9\.9\.9, and this build links LibTorch 2\./,
    ],
  ])('is not used, and the install says why and compiles, when it %s', (_, record, reason) => {
    const cache = writeLibtorchCache(join(dir, `cache-prebuilt-${Object.keys(record)[0]}`));
    const pkg = withPrebuilt(installedPackage(`prebuilt-${Object.keys(record)[0]}`), record);
    const result = build(pkg, cache, [], pypiOnly);
    expect(result.status, result.log).toBe(0);
    expect(result.log).toMatch(new RegExp(`not using a prebuilt addon: ${reason.source}`));
    expect(result.log).toContain('fake cmake-js: compiled');
  });

  it('is not used when it does not load here (the load test in a child), and never replaces a working addon', () => {
    const cache = writeLibtorchCache(join(dir, 'cache-prebuilt-unloadable'));
    const pkg = installedPackage('prebuilt-unloadable');
    expect(build(pkg, cache, [], pypiOnly).status).toBe(0); // compiled: no prebuilt yet
    withPrebuilt(pkg, {}, Buffer.from('not an ELF file'));
    const result = build(pkg, cache, ['--force'], { ...pypiOnly, FAKE_COMPILE_FAIL: '1' });
    expect(result.log).toMatch(/not using a prebuilt addon: the prebuilt addon .*lenet5_native\.node it does not load \(exit 1/);
    expect(result.status).toBe(1);
    expect(readFileSync(addonOf(pkg)).equals(readFileSync(builtAddon))).toBe(true);
  });

  it('lets a machine without cmake or a compiler fetch LibTorch, its libraries only, since nothing will be compiled', () => {
    const noTools = join(dir, 'prebuilt-no-tools-bin');
    mkdirSync(noTools);
    const pkg = withPrebuilt(installedPackage('prebuilt-no-tools'));
    const result = build(pkg, join(dir, 'cache-prebuilt-empty'), [], {
      ...pypiOnly,
      PATH: noTools,
      CXX: '',
      LENET5_PYTHON: writeFakePython(join(dir, 'python-prebuilt'), 'not a wheel'),
    });
    expect(result.log).not.toContain('the addon has to be compiled on this machine');
    expect(result.log).toMatch(/fetching LibTorch .*; its libraries only, as the prebuilt addon needs no headers/);
  });

  it('is left out of npm pack, rather than packed from older sources, for an arch this machine has no cross compiler for', () => {
    const pkg = withPrebuilt(installedPackage('pack-without-cross-compiler'));
    for (const path of ['scripts/prebuild.mjs', 'scripts/arm64']) cpSync(join(root, path), join(pkg, path), { recursive: true });
    const other = process.arch === 'arm64' ? 'x64' : 'arm64';
    withPrebuilt(pkg, { sources: 'older sources' }, readFileSync(builtAddon), other);
    const noTools = join(dir, 'pack-empty-bin');
    mkdirSync(noTools);
    // prepack's command; this machine's prebuilt matches the sources, so nothing is fetched or built.
    const result = spawnSync(process.execPath, [join(pkg, 'scripts/prebuild.mjs'), '--if-stale', '--arch', 'all'], {
      env: { ...process.env, PATH: noTools, LENET5_PREBUILD_ROOT: '', LENET5_CACHE_DIR: join(dir, 'cache-pack') },
      encoding: 'utf8',
    });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toMatch(
      new RegExp(
        `prebuilt addons in prebuilds/: linux-${process.arch}; none for linux-${other} \\(.*; its out-of-date prebuilt addon removed\\)`,
      ),
    );
    expect(readdirSync(join(pkg, 'prebuilds'))).toEqual([`linux-${process.arch}`]);
  });

  it("serves from a LibTorch fetched without headers, whose folder a compile fetches again with them; the addon's key is the same either way", () => {
    const cache = writeLibtorchCache(join(dir, 'cache-libraries-only'), { headers: false });
    const libtorch = join(cache, libtorchName);
    const pkg = withPrebuilt(installedPackage('prebuilt-libraries-only'));
    const served = build(pkg, cache, [], pypiOnly);
    expect(served.status, served.log).toBe(0);
    expect(served.log).toContain('using the prebuilt addon');

    const forbidden = build(pkg, cache, ['--force'], { ...pypiOnly, LENET5_PREBUILT: '0', LENET5_LIBTORCH_DOWNLOAD: '0' });
    expect(forbidden.status).toBe(1);
    expect(forbidden.log).toContain(
      `The cached LibTorch ${libtorch} cannot be compiled against: it holds the libraries only (fetched for the prebuilt addon), without the headers a compile needs.`,
    );
    const completed = build(pkg, cache, ['--force'], {
      ...pypiOnly,
      LENET5_PREBUILT: '0',
      LENET5_PYTHON: writeFakePython(join(dir, 'python-libraries-only'), 'not a wheel'),
    });
    expect(completed.log).toContain(
      `the cached LibTorch ${libtorch} holds its libraries only (fetched for the prebuilt addon), and compiling needs its headers too. Fetching it again with them.`,
    );
    expect(completed.log).not.toContain('its libraries only, as the prebuilt addon needs no headers');
    expect(completed.log).not.toContain('fake cmake-js: compiled');
    // The fetch failed (the stand-in pip's wheels): the folder the prebuilt addon uses is still there, whole.
    expect(build(pkg, cache, [], { ...pypiOnly, LENET5_LIBTORCH_DOWNLOAD: '0' }).log).toContain('the addon is up to date');

    // The folder as a full fetch leaves it: the addon already there still matches its key.
    writeLibtorchCache(cache);
    expect(build(pkg, cache, [], pypiOnly).log).toContain('the addon is up to date');
  });
});
