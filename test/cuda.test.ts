import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { cuda, info } from '../src/index.js';
import type { Info } from '../src/info.js';
import { root } from './helpers.js';
import { checks, loadFashion } from '../scripts/gpu/checks.mjs';

const hasGpu = cuda.isAvailable();
if (!hasGpu) console.log('CUDA tests skipped: no GPU visible to this LibTorch (scripts/gpu-check.sh runs them on a GPU machine).');

describe.skipIf(!hasGpu)('CUDA', () => {
  let fashion: Awaited<ReturnType<typeof loadFashion>>;
  beforeAll(async () => {
    fashion = await loadFashion();
  });
  for (const [name, check] of Object.entries(checks)) {
    it(
      name,
      async () => {
        await check({ fashion });
      },
      600_000,
    );
  }
});

// LibTorch's CUDA kernels are loaded at run time (native/core/device.cc); these run without a GPU.
describe('CUDA support loading', () => {
  const infoWith = (setting: string) =>
    JSON.parse(
      execFileSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import { info } from '${pathToFileURL(join(root, 'dist/index.js')).href}'; const i = info(); console.log(JSON.stringify({ ...i, rssMb: process.memoryUsage().rss / 2 ** 20 }))`,
        ],
        { encoding: 'utf8', env: { ...process.env, LENET5_CUDA: setting } },
      ),
    ) as Info & { rssMb: number };
  const builtWithCuda = info().cudaSupport !== 'not built';

  it.skipIf(!builtWithCuda)('LENET5_CUDA=1 loads libtorch_cuda and LibTorch finds its CUDA hooks (the runtime version is theirs)', () => {
    const forced = infoWith('1');
    expect(forced.cudaSupport).toBe('loaded');
    expect(forced.cudaRuntime).toMatch(/^\d+\.\d+$/);
    const disabled = infoWith('0');
    expect(disabled).toMatchObject({ cudaSupport: 'disabled', cudaRuntime: null, cudaAvailable: false });
    // The reason for loading it only where a driver exists: resident memory.
    expect(forced.rssMb - disabled.rssMb).toBeGreaterThan(100);
  });

  it.skipIf(hasGpu)('without a GPU driver the CUDA part is not loaded and cuda is unavailable', () => {
    expect(info().cudaSupport).toBe(builtWithCuda ? 'no driver' : 'not built');
    expect(info().cudaRuntime).toBeNull();
    expect(cuda.isAvailable()).toBe(false);
  });
});
