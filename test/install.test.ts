// A user's install, end to end: the package as `npm pack` makes it (its prepack step builds the
// prebuilt addon, scripts/prebuild.mjs), installed into an empty project with an empty LibTorch
// cache and the PyPI fetch forced (as on a machine with no LibTorch), uses the prebuilt addon and
// trains an epoch from a Node script, having fetched LibTorch's libraries only; another project
// compiles the addon from source (LENET5_PREBUILT=0) against LibTorch fetched with its headers.
// Slow (a 550 MB download, twice, and one addon build, two with the prebuilt's), so not in test:unit.
// A compile after a fetch without headers (the folder fetched again) is tested on fixtures in
// build-addon.test.ts.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { beforeAll, describe, it } from 'vitest';
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

// The two projects install at once, each with its own LibTorch cache: the compile's CPU time
// overlaps the other's downloads, extraction and epoch (in CI the two used to run one after the other).
describe.concurrent('npm install into empty projects', () => {
  const work = tempDir();
  // Only PyPI's LibTorch: neither this checkout's .venv nor the system LibTorch may be used, and the
  // projects load the addon they installed (not one LENET5_ADDON names for this checkout's tests).
  const env = { ...process.env, LENET5_LIBTORCH: 'pypi', LENET5_PYTHON: '', LIBTORCH: '', LENET5_ADDON: '' };
  let tarball = '';

  /** Runs a command without blocking, so that the two projects' commands run at once; resolves with its exit status and output. */
  function run(command: string, args: string[], cwd: string, extraEnv: Record<string, string>) {
    return new Promise<{ status: number | null; stdout: string; log: string }>((resolve, reject) => {
      const child = spawn(command, args, { cwd, env: { ...env, ...extraEnv } });
      let [stdout, stderr] = ['', ''];
      child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
      child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
      child.on('error', reject);
      child.on('close', (status) => resolve({ status, stdout, log: `${stdout}\n${stderr}` }));
    });
  }

  /** `npm install` of the tarball into a new project `name` whose LibTorch cache is its own; returns the project. */
  async function installInto(name: string, extraEnv: Record<string, string> = {}) {
    const dir = join(work, name);
    const cache = join(work, `cache-${name}`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
    const started = Date.now();
    const projectEnv = { LENET5_CACHE_DIR: cache, ...extraEnv };
    const { status, log } = await run('npm', ['install', '--no-audit', '--no-fund', '--foreground-scripts', tarball], dir, projectEnv);
    if (status !== 0) throw new Error(`npm install into ${name} failed (exit ${status}):\n${log}`);
    console.log(`${name} install: ${((Date.now() - started) / 1000).toFixed(0)} s`);
    return { dir, cache, log, env: projectEnv };
  }

  beforeAll(() => {
    const packed = execFileSync('npm', ['pack', '--pack-destination', work, '--silent'], { cwd: root, encoding: 'utf8' });
    tarball = join(work, packed.trim().split('\n').pop() ?? '');
  }, INSTALL_TIMEOUT);

  it(
    "fetches LibTorch's libraries only into the cache, uses the prebuilt addon, leaves only the addon and its link, and trains an epoch",
    async ({ expect }) => {
      const first = await installInto('prebuilt');
      const { cache } = first;
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
      const training = await run(process.execPath, ['train.mjs'], first.dir, first.env);
      expect(training.status, training.log).toBe(0);
      const trained = JSON.parse(training.stdout) as { accuracy: number; libtorchSource: string; libtorchDir: string };
      expect(trained.libtorchSource).toBe('pypi');
      expect(trained.libtorchDir.startsWith(cache)).toBe(true);
      // One epoch of the seed's settings reaches about 85% on Fashion-MNIST's test set; chance is 10%.
      expect(trained.accuracy).toBeGreaterThan(0.8);
    },
    INSTALL_TIMEOUT,
  );

  it(
    'compiles from source where asked (LENET5_PREBUILT=0), against LibTorch fetched with its headers, and leaves no build files',
    async ({ expect }) => {
      const second = await installInto('compiled', { LENET5_PREBUILT: '0' });
      expect(second.log).toContain('not using a prebuilt addon: LENET5_PREBUILT=0 asks for a compile');
      expect(second.log).toMatch(/fetching LibTorch .* from PyPI/);
      expect(second.log).not.toContain('its libraries only');
      expect(existsSync(join(second.cache, libtorchName, 'include/torch/csrc/api/include/torch/torch.h'))).toBe(true);
      expect(second.log).toMatch(/built the addon in \d+ s/);
      const info = JSON.parse(
        execFileSync(process.execPath, [join(second.dir, 'node_modules/.bin/lenet5'), 'info', '--json'], {
          env: { ...env, ...second.env },
          encoding: 'utf8',
        }),
      ) as { libtorchSource: string; libtorchDir: string };
      expect(info).toMatchObject({ libtorchSource: 'pypi', libtorchDir: join(second.cache, libtorchName, 'lib') });
      expect(existsSync(join(second.dir, 'node_modules/lenet5-libtorch/build/cmake/CMakeCache.txt'))).toBe(false);
    },
    INSTALL_TIMEOUT,
  );
});
