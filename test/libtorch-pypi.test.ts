// The LibTorch choice rule (scripts/find-libtorch.mjs) and the PyPI fetch's refusals
// (scripts/libtorch/pypi.mjs), on folders and a stand-in pip made here. The real download, build
// and install run in install.test.ts.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { root, tempDir } from './helpers.js';
import { libtorchName, pins, writeFakePython, writeLibtorchCache } from './libtorch-fixtures.js';

const dir = tempDir();
// No LibTorch anywhere unless a test provides one: no LIBTORCH, no Python torch.
const bare = { ...process.env, LIBTORCH: '', LENET5_PYTHON: '', LIBTORCH_USE_PYTORCH: '0', LENET5_CUDA: '' };

function resolver(env: Record<string, string>) {
  const result = spawnSync(process.execPath, [join(root, 'scripts/find-libtorch.mjs'), '--json'], {
    env: { ...bare, ...env },
    encoding: 'utf8',
  });
  return { status: result.status, stderr: result.stderr, found: result.status === 0 ? JSON.parse(result.stdout) : undefined };
}

const cacheWithLibtorch = (name: string) => writeLibtorchCache(join(dir, name));
const fakePython = (name: string, content: string) => writeFakePython(join(dir, name), content);

describe('the LibTorch choice', () => {
  it("takes PyPI's cached LibTorch when there is no Python torch, before the system one", () => {
    const cache = cacheWithLibtorch('cached');
    const { found } = resolver({ LENET5_CACHE_DIR: cache });
    expect(found).toMatchObject({
      source: 'pypi',
      version: pins.version,
      libDir: join(cache, `libtorch-${pins.version}-linux-${process.arch}-cpu/lib`),
    });
  });

  it('refuses a cached LibTorch without headers to a compile (CMake, node-gyp) rather than let /usr/include stand in', () => {
    const cache = writeLibtorchCache(join(dir, 'libraries-only'), { headers: false });
    const { status, stderr } = resolver({ LENET5_CACHE_DIR: cache, LENET5_LIBTORCH: 'pypi' });
    expect(status).toBe(1);
    expect(stderr).toContain(
      `the cached LibTorch ${join(cache, libtorchName)} holds its libraries only (fetched for the prebuilt addon), without the headers a compile needs.`,
    );
    expect(stderr).toContain('Build with "npm run build", which fetches it again with its headers first.');
  });

  it('LENET5_LIBTORCH=system takes only the system one; LIBTORCH wins over everything', () => {
    const cache = cacheWithLibtorch('cached-too');
    const system = resolver({ LENET5_CACHE_DIR: cache, LENET5_LIBTORCH: 'system' });
    if (existsSync('/usr/include/torch/csrc/api/include/torch/torch.h')) expect(system.found).toMatchObject({ source: 'system' });
    else expect(system.stderr).toMatch(/the system LibTorch \(libtorch-dev\): not installed/);
    const libtorch = join(cache, `libtorch-${pins.version}-linux-${process.arch}-cpu`);
    expect(resolver({ LENET5_CACHE_DIR: cache, LENET5_LIBTORCH: 'system', LIBTORCH: libtorch }).found).toMatchObject({
      source: 'LIBTORCH',
    });
  });

  it('an unknown LENET5_LIBTORCH is refused with the sources it can name', () => {
    const { status, stderr } = resolver({ LENET5_LIBTORCH: 'conda' });
    expect(status).toBe(1);
    expect(stderr).toContain('LENET5_LIBTORCH=conda is not a LibTorch source: expected one of pypi, python, system');
  });

  it('with fetching forbidden and nothing cached, says what it tried and every way that works', () => {
    const { status, stderr } = resolver({ LENET5_CACHE_DIR: join(dir, 'empty'), LENET5_LIBTORCH: 'pypi', LENET5_LIBTORCH_DOWNLOAD: '0' });
    expect(status).toBe(1);
    expect(stderr).toContain('no LibTorch to build against. Tried, in order:');
    expect(stderr).toContain('LENET5_LIBTORCH_DOWNLOAD=0 forbids fetching it');
    for (const way of [
      'LENET5_PYTHON=/path/to/python npm run build',
      'LIBTORCH=/path/to/libtorch',
      'apt-get install libtorch-dev',
      'python3-pip',
    ]) {
      expect(stderr).toContain(way);
    }
  });
});

describe('fetching from PyPI', () => {
  it('refuses a wheel whose SHA-256 differs from the pinned one, and leaves no folder behind', () => {
    const cache = join(dir, 'tampered');
    const result = spawnSync(process.execPath, [join(root, 'scripts/libtorch/pypi.mjs')], {
      env: { ...bare, LENET5_CACHE_DIR: cache, LENET5_PYTHON: fakePython('python-tampered', 'not a wheel') },
      encoding: 'utf8',
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/has SHA-256 [0-9a-f]{64}, expected [0-9a-f]{64}: refusing it/);
    expect(readdirSync(cache)).toEqual([]);
  });

  it('says how to get pip when the Python has none', () => {
    const noPip = join(dir, 'python-without-pip');
    writeFileSync(noPip, '#!/bin/sh\nexit 1\n');
    chmodSync(noPip, 0o755);
    const result = spawnSync(process.execPath, [join(root, 'scripts/libtorch/pypi.mjs')], {
      env: { ...bare, LENET5_CACHE_DIR: join(dir, 'no-pip'), LENET5_PYTHON: noPip },
      encoding: 'utf8',
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('pip is needed to fetch LibTorch from PyPI');
    expect(result.stderr).toContain('sudo apt-get install python3-pip');
  });
});

describe('the LibTorch cache, checked rather than trusted', () => {
  /** pypi.mjs run on `cache` with a pip whose wheels never match their pins: how far it gets shows what it decided. */
  function fetchWith(cache: string, options: { cwd?: string } = {}) {
    return spawnSync(process.execPath, [join(root, 'scripts/libtorch/pypi.mjs')], {
      env: { ...bare, LENET5_CACHE_DIR: cache, LENET5_PYTHON: fakePython(`python-${Math.random()}`, 'not a wheel') },
      encoding: 'utf8',
      cwd: options.cwd,
    });
  }

  it('a truncated library in the cache is reported with the cache named, and fetched again', () => {
    const cache = cacheWithLibtorch('truncated-lib');
    const libtorch = join(cache, libtorchName);
    truncateSync(join(libtorch, 'lib/libc10.so'), 3);
    const resolved = resolver({ LENET5_CACHE_DIR: cache, LENET5_LIBTORCH: 'pypi', LENET5_LIBTORCH_DOWNLOAD: '0' });
    expect(resolved.status).toBe(1);
    expect(resolved.stderr).toContain(`in ${libtorch}: lib/libc10.so has 3 bytes, expected 17`);
    const fetched = fetchWith(cache);
    expect(fetched.stderr).toContain(
      `the cached LibTorch ${libtorch} is damaged: lib/libc10.so has 3 bytes, expected 17. Fetching it again.`,
    );
    expect(fetched.stderr).toContain('refusing it'); // the stand-in pip's wheels: the fetch did start
    expect(readdirSync(cache)).toEqual([]);
  });

  it('a folder without its manifest (half removed) is replaced, not renamed onto', () => {
    const cache = cacheWithLibtorch('no-manifest');
    rmSync(join(cache, libtorchName, 'lenet5-libtorch.json'));
    const fetched = fetchWith(cache);
    expect(fetched.stderr).toContain(
      'it has no readable manifest (lenet5-libtorch.json): a half-written or half-removed folder. Fetching it again.',
    );
    expect(fetched.stderr).not.toContain('ENOTEMPTY');
  });

  it("removes only its own abandoned temp folders: never one without its marker, nor a live install's", () => {
    const cache = cacheWithLibtorch('reaper');
    const marked = (name: string, entry: string) => {
      mkdirSync(join(cache, name));
      writeFileSync(join(cache, name, 'lenet5-temp.json'), JSON.stringify({ entry }));
    };
    mkdirSync(join(cache, '.tmp-99999-notes')); // the user's, named like ours
    marked('.tmp-addon-abc-dead', 'addon-abc'); // a killed install's: its entry is not locked
    marked('.tmp-addon-def-live', 'addon-def'); // a live install's, maybe in another PID namespace: its entry is locked
    mkdirSync(join(cache, 'addon-def.lock'));
    const result = fetchWith(cache);
    expect(result.status, result.stderr).toBe(0);
    expect(readdirSync(cache).sort()).toEqual(['.tmp-99999-notes', '.tmp-addon-def-live', 'addon-def.lock', libtorchName]);
  });

  it('waits for the install that holds the lock, and takes over a lock whose holder died', async () => {
    const cache = join(dir, 'locked');
    const lock = join(cache, `${libtorchName}.lock`);
    mkdirSync(lock, { recursive: true });
    const child = spawn(process.execPath, [join(root, 'scripts/libtorch/pypi.mjs')], {
      env: { ...bare, LENET5_CACHE_DIR: cache, LENET5_PYTHON: fakePython('python-locked', 'not a wheel') },
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const exited = new Promise((ok) => child.on('close', ok));
    await expect
      .poll(() => stderr, { timeout: 30_000 })
      .toContain(`waiting for another install that is writing ${join(cache, libtorchName)}`);
    expect(stderr).not.toContain('fetching');
    // The holder stops refreshing its lock (it was killed): after a minute the lock is stale.
    const old = new Date(Date.now() - 120_000);
    utimesSync(lock, old, old);
    await exited;
    expect(stderr).toContain('refusing it');
    expect(existsSync(lock)).toBe(false);
  });
});

describe('the Pythons the install asks', () => {
  it("never runs the caller's json.py: the torch probe runs isolated, from a neutral folder", () => {
    const caller = join(dir, 'caller');
    mkdirSync(caller);
    writeFileSync(join(caller, 'json.py'), 'open("RAN", "w")\n');
    spawnSync(process.execPath, [join(root, 'scripts/find-libtorch.mjs'), '--json'], {
      cwd: caller,
      env: { ...process.env, LIBTORCH: '', LENET5_LIBTORCH: 'python', LENET5_PYTHON: 'python3' },
    });
    expect(existsSync(join(caller, 'RAN'))).toBe(false);
  });

  it('a LENET5_PYTHON that is not a Python with pip is refused with what it answered', () => {
    const result = spawnSync(process.execPath, [join(root, 'scripts/libtorch/pypi.mjs')], {
      env: { ...bare, LENET5_CACHE_DIR: join(dir, 'ls-pip'), LENET5_PYTHON: '/bin/ls' },
      encoding: 'utf8',
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('/bin/ls is not a Python with pip (it answered');
  });
});

describe('the cache folder', () => {
  const where = (env: Record<string, string>, cwd?: string) =>
    spawnSync(process.execPath, [join(root, 'scripts/libtorch/pypi.mjs'), '--where'], {
      env: { ...bare, ...env },
      encoding: 'utf8',
      cwd,
    }).stdout.trim();

  it('is never relative: not with an empty HOME, a relative XDG_CACHE_HOME or a relative LENET5_CACHE_DIR', () => {
    const home = userInfo().homedir;
    expect(where({ HOME: '', XDG_CACHE_HOME: '', LENET5_CACHE_DIR: '' })).toBe(join(home, '.cache/lenet5-libtorch', libtorchName));
    expect(where({ HOME: '', XDG_CACHE_HOME: 'relative', LENET5_CACHE_DIR: '' })).toBe(join(home, '.cache/lenet5-libtorch', libtorchName));
    // npm runs the install inside the package; INIT_CWD is the folder the user ran npm in.
    expect(where({ LENET5_CACHE_DIR: 'my-cache', INIT_CWD: dir }, root)).toBe(join(dir, 'my-cache', libtorchName));
  });
});

describe('a disk without room', () => {
  // A 1 MB tmpfs in a private mount namespace stands in for a full disk, where unshare may make one.
  const canMount = spawnSync('unshare', ['-rm', 'sh', '-c', 'mount -t tmpfs -o size=1m none /mnt']).status === 0;

  it.skipIf(!canMount)('is refused before the download, with the folder and the room it needs', () => {
    const cache = join(dir, 'small-disk');
    mkdirSync(cache);
    const script = 'mount -t tmpfs -o size=1m none "$0" && exec "$@"';
    const result = spawnSync('unshare', ['-rm', 'sh', '-c', script, cache, process.execPath, join(root, 'scripts/libtorch/pypi.mjs')], {
      env: { ...bare, LENET5_CACHE_DIR: cache, LENET5_PYTHON: fakePython('python-small-disk', 'not a wheel') },
      encoding: 'utf8',
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      new RegExp(`Fetching LibTorch needs about \\d\\.\\d\\d GB free in ${cache} while it runs, and it has 0\\.00 GB`),
    );
    expect(result.stderr).not.toContain('fetching LibTorch');
  });
});
