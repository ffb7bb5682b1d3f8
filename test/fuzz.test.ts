import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Adam, LeNet5 } from '../src/index.js';
import { runFuzz } from './fuzz/fuzz.js';
import { syntheticDataset, tempDir } from './helpers.js';

// CI runs a few thousand inputs; `npm run fuzz` runs 20,000 (FUZZ_INPUTS, FUZZ_SEED to replay).
const inputs = Number(process.env.FUZZ_INPUTS ?? 3000);
const seed = Number(process.env.FUZZ_SEED ?? 20261127);

describe(`fuzzing the .pth and IDX parsers (${inputs} inputs, seed ${seed})`, () => {
  it('every input parses or is rejected with a coded Lenet5Error; memory stays bounded', async () => {
    const dir = tempDir();
    const model = new LeNet5({ seed: 1 });
    const optimizer = new Adam();
    await model.train(syntheticDataset(64, 10), { epochs: 1, batchSize: 32, optimizer });
    await model.save(join(dir, 'state.pth'));
    await model.saveCheckpoint(join(dir, 'checkpoint.pth'), { optimizer, epoch: 1, loss: 0.5 });
    const result = await runFuzz(seed, inputs, [join(dir, 'state.pth'), join(dir, 'checkpoint.pth')]);
    const maxRssMb = process.resourceUsage().maxRSS / 1024;
    console.log(
      `fuzz: ${result.inputs} inputs, ${result.parsed} parsed, rejected by code: ${JSON.stringify(result.rejected)}, peak RSS ${Math.round(maxRssMb)} MB`,
    );
    expect(result.failures, `replay with FUZZ_SEED=${seed}: ${JSON.stringify(result.failures.slice(0, 5))}`).toEqual([]);
    expect(Object.values(result.rejected).reduce((a, b) => a + b, 0) + result.parsed).toBe(inputs);
    expect(result.rejected.ERR_LENET5_PTH_FORMAT).toBeGreaterThan(inputs / 10);
    expect(maxRssMb).toBeLessThan(1500);
  }, 600_000);
});
