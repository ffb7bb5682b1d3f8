import { beforeAll, describe, it } from 'vitest';
import { cuda } from '../src/index.js';
import { checks, loadFashion } from '../scripts/gpu/checks.mjs';

const hasGpu = cuda.isAvailable();
if (!hasGpu) console.log('CUDA tests skipped: no GPU visible to this LibTorch (scripts/gpu-check.sh runs them on a GPU machine).');

describe.skipIf(!hasGpu)('CUDA', () => {
  let fashion: Awaited<ReturnType<typeof loadFashion>>;
  beforeAll(async () => {
    fashion = await loadFashion();
  });
  for (const [name, check] of Object.entries(checks)) {
    it(name, async () => {
      await check({ fashion });
    }, 600_000);
  }
});
