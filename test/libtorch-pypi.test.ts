// The LibTorch choice rule (scripts/find-libtorch.mjs) and the PyPI fetch's refusals
// (scripts/libtorch/pypi.mjs), on folders and a stand-in pip made here. The real download, build
// and install run in install.test.ts.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { root, tempDir } from './helpers.js';

const dir = tempDir();
const pins = JSON.parse(readFileSync(join(root, 'scripts/libtorch/wheels.json'), 'utf8')) as {
  version: string;
  arches: Record<string, { cpu: { file: string }[] }>;
};
// No LibTorch anywhere unless a test provides one: no LIBTORCH, no Python torch.
const bare = { ...process.env, LIBTORCH: '', LENET5_PYTHON: '', LIBTORCH_USE_PYTORCH: '0', LENET5_CUDA: '' };

function resolver(env: Record<string, string>) {
  const result = spawnSync(process.execPath, [join(root, 'scripts/find-libtorch.mjs'), '--json'], {
    env: { ...bare, ...env },
    encoding: 'utf8',
  });
  return { status: result.status, stderr: result.stderr, found: result.status === 0 ? JSON.parse(result.stdout) : undefined };
}

/** A cache holding a complete PyPI LibTorch folder as the fetch leaves it (headers and manifest only). */
function cacheWithLibtorch(name: string): string {
  const cache = join(dir, name);
  const libtorch = join(cache, `libtorch-${pins.version}-linux-${process.arch}-cpu`);
  mkdirSync(join(libtorch, 'include/torch/csrc/api/include/torch'), { recursive: true });
  mkdirSync(join(libtorch, 'lib'), { recursive: true });
  writeFileSync(join(libtorch, 'lenet5-libtorch.json'), JSON.stringify({ version: pins.version, cxx11Abi: true }));
  return cache;
}

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
      'LENET5_PYTHON=/path/to/python npm rebuild lenet5-libtorch',
      'LIBTORCH=/path/to/libtorch',
      'apt-get install libtorch-dev',
      'python3-pip',
    ]) {
      expect(stderr).toContain(way);
    }
  });
});

describe('fetching from PyPI', () => {
  /** A stand-in for python: `-m pip --version` works, `-m pip download -d DIR` writes the pinned file names with `content`. */
  function fakePython(name: string, content: string): string {
    const files = pins.arches[process.arch].cpu.map((wheel) => wheel.file);
    const script = join(dir, name);
    writeFileSync(
      script,
      `#!/bin/sh
[ "$3" = "--version" ] && exit 0
while [ $# -gt 0 ]; do [ "$1" = "-d" ] && out="$2"; shift; done
for f in ${files.join(' ')}; do printf '%s' '${content}' > "$out/$f"; done
`,
    );
    chmodSync(script, 0o755);
    return script;
  }

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
