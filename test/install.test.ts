// A user's install, end to end: the package as `npm pack` makes it (its prepack step builds the
// prebuilt addon, scripts/prebuild.mjs), installed into an empty project with an empty LibTorch
// cache and the PyPI fetch forced (as on a machine with no LibTorch), uses the prebuilt addon and
// trains an epoch from a Node script, having fetched LibTorch's libraries only; a second project
// then compiles the addon from source (LENET5_PREBUILT=0), which fetches the cached LibTorch again
// with its headers. Slow (a 550 MB download and one addon build, two with the prebuilt's), so not
// in test:unit.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { root, tempDir } from './helpers.js';
import { libtorchName } from './libtorch-fixtures.js';

// Under qemu (npm run check:arm64) the epoch alone takes about 11 minutes.
const INSTALL_TIMEOUT = (process.env.LENET5_TEST_EMULATED ? 60 : 20) * 60_000;

function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? folderBytes(path) : statSync(path).size;
  }
  return total;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

describe('npm install into an empty project', () => {
  const work = tempDir();
  const cache = join(work, 'cache');
  // Only PyPI's LibTorch: neither this checkout's .venv nor the system LibTorch may be used, and the
  // projects load the addon they installed (not one LENET5_ADDON names for this checkout's tests).
  const env = { ...process.env, LENET5_CACHE_DIR: cache, LENET5_LIBTORCH: 'pypi', LENET5_PYTHON: '', LIBTORCH: '', LENET5_ADDON: '' };
  let tarball = '';

  function installInto(name: string, extraEnv: Record<string, string> = {}): { dir: string; log: string; seconds: number } {
    const dir = join(work, name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
    const started = Date.now();
    const result = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--foreground-scripts', tarball], {
      cwd: dir,
      env: { ...env, ...extraEnv },
      encoding: 'utf8',
    });
    const log = `${result.stdout}\n${result.stderr}`;
    expect(result.status, log).toBe(0);
    return { dir, log, seconds: (Date.now() - started) / 1000 };
  }

  beforeAll(() => {
    const packed = execFileSync('npm', ['pack', '--pack-destination', work, '--silent'], { cwd: root, encoding: 'utf8' });
    tarball = join(work, packed.trim().split('\n').pop() ?? '');
  }, INSTALL_TIMEOUT);

  it(
    'fetches LibTorch into the cache, uses the prebuilt addon, leaves only the addon and its link, and trains an epoch',
    () => {
      const first = installInto('first');
      console.log(`first install: ${first.seconds.toFixed(0)} s`);
      expect(first.log).toMatch(
        new RegExp(
          `fetching LibTorch 2\\.\\d+\\.\\d+ \\(CPU, linux-${process.arch}\\) from PyPI.*; its libraries only, as the prebuilt addon needs no headers`,
        ),
      );
      expect(first.log).toMatch(/SHA-256 of each wheel checked/);
      expect(readdirSync(cache).filter((name) => name.startsWith('.tmp-'))).toEqual([]);
      expect(first.log).toMatch(/using the prebuilt addon \(built on .*\): nothing to compile/);
      expect(readdirSync(join(cache, libtorchName))).toEqual(['lenet5-libtorch.json', 'lib']);

      const installed = join(first.dir, 'node_modules/lenet5-libtorch');
      expect(filesUnder(join(installed, 'build'))).toEqual(['cmake/Release/lenet5_native.json', 'cmake/Release/lenet5_native.node']);
      expect(readlinkSync(join(installed, 'build/cmake/Release/libtorch')).startsWith(cache)).toBe(true);
      const megabytes = folderBytes(installed) / 1e6;
      console.log(`installed package: ${megabytes.toFixed(1)} MB`);
      expect(megabytes).toBeLessThan(30);

      writeFileSync(
        join(first.dir, 'train.mjs'),
        `import { LeNet5, Adam, datasets, info } from 'lenet5-libtorch';
const [train, test] = [await datasets.fashionMnist('train'), await datasets.fashionMnist('test')];
const model = new LeNet5({ seed: 0 });
await model.train(train, { epochs: 1, optimizer: new Adam({ lr: 1e-3 }), seed: 0 });
const { accuracy } = await model.evaluate(test);
const { libtorchSource, libtorchDir } = info();
console.log(JSON.stringify({ accuracy, libtorchSource, libtorchDir }));`,
      );
      const run = JSON.parse(execFileSync(process.execPath, ['train.mjs'], { cwd: first.dir, env, encoding: 'utf8' })) as {
        accuracy: number;
        libtorchSource: string;
        libtorchDir: string;
      };
      expect(run.libtorchSource).toBe('pypi');
      expect(run.libtorchDir.startsWith(cache)).toBe(true);
      // One epoch of the seed's settings reaches about 85% on Fashion-MNIST's test set; chance is 10%.
      expect(run.accuracy).toBeGreaterThan(0.8);

      const second = installInto('second', { LENET5_PREBUILT: '0' });
      console.log(`second install (compiled): ${second.seconds.toFixed(0)} s`);
      expect(second.log).toContain('not using a prebuilt addon: LENET5_PREBUILT=0 asks for a compile');
      expect(second.log).toContain('holds its libraries only (fetched for the prebuilt addon), and compiling needs its headers too.');
      expect(existsSync(join(cache, libtorchName, 'include/torch/csrc/api/include/torch/torch.h'))).toBe(true);
      expect(second.log).toMatch(/built the addon in \d+ s/);
      const info = JSON.parse(
        execFileSync(process.execPath, [join(second.dir, 'node_modules/.bin/lenet5'), 'info', '--json'], { env, encoding: 'utf8' }),
      ) as { libtorchSource: string; libtorchDir: string };
      expect(info.libtorchDir).toBe(run.libtorchDir);
      expect(existsSync(join(second.dir, 'node_modules/lenet5-libtorch/build/cmake/CMakeCache.txt'))).toBe(false);
    },
    INSTALL_TIMEOUT,
  );
});
