import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LeNet5, inspect } from '../src/index.js';
import { rng, root, syntheticDataset, tempDir } from './helpers.js';

const dir = tempDir();
const child = (name: string) => join(root, 'test/children', name);

describe('faults', () => {
  it('SIGKILL in the middle of save() leaves the previous file intact and loadable, every time', async () => {
    const path = join(dir, 'killed.pth');
    const expected = await Promise.all(
      [1, 2].map(async (seed) => {
        const reference = join(dir, `reference-${seed}.pth`);
        await new LeNet5({ seed }).save(reference);
        return JSON.stringify(await (await LeNet5.load(reference)).predict(new Uint8Array(784)));
      }),
    );
    const random = rng(42);
    const kills = Number(process.env.KILL_ROUNDS ?? 12);
    for (let round = 0; round < kills; round++) {
      const proc = spawn(process.execPath, [child('save-loop.mjs'), path], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => proc.stdout.once('data', () => resolve()));
      await new Promise((resolve) => setTimeout(resolve, 20 + random() * 200));
      proc.kill('SIGKILL');
      await new Promise((resolve) => proc.once('exit', resolve));
      if (round === 0 && !readdirSync(dir).includes('killed.pth')) continue; // killed before its first save
      const loaded = await LeNet5.load(path);
      expect(expected, `round ${round}`).toContain(JSON.stringify(await loaded.predict(new Uint8Array(784))));
      expect((await inspect(path)).tensors).toHaveLength(10);
    }
  }, 300_000);

  for (const how of ['exit', 'throw']) {
    it(`process ${how === 'exit' ? 'exit()' : 'uncaught exception'} while training ends the process promptly, without a crash`, () => {
      const started = Date.now();
      const result = spawnSync(process.execPath, [child('exit-while-training.mjs'), how], { encoding: 'utf8', timeout: 60_000 });
      expect(result.signal).toBeNull();
      expect(result.status).toBe(how === 'exit' ? 0 : 1);
      expect(Date.now() - started).toBeLessThan(30_000);
      if (how === 'throw') expect(result.stderr).toContain('uncaught on purpose');
    });
  }
});

describe('load', () => {
  it('four models train at once in one process, all correctly, with the event loop responsive', async () => {
    const data = syntheticDataset(1024, 4);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const results = await Promise.all(
      [1, 2, 3, 4].map(async (seed) => {
        const model = new LeNet5({ numClasses: 4, seed });
        await model.train(data, { epochs: 2, batchSize: 32, seed });
        return model.evaluate(data);
      }),
    );
    clearInterval(timer);
    for (const result of results) expect(result.accuracy).toBeGreaterThan(0.95);
    expect(ticks).toBeGreaterThan(5);
  });

  it('memory stays flat over create/train/evaluate/save/load/dispose cycles and long runs (short version of npm run leak-check)', () => {
    const result = spawnSync(
      process.execPath,
      ['--expose-gc', join(root, 'scripts/leak-check.mjs'), '--cycles', '40', '--epochs', '12', '--json'],
      { encoding: 'utf8', timeout: 300_000 },
    );
    expect(result.status, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as { cycleGrowthSecondHalf: number; epochGrowthSecondHalf: number; cycleRssMb: number[] };
    console.log(`leak-check: cycle RSS ${report.cycleRssMb.join(' ')} MB`);
    expect(report.cycleGrowthSecondHalf).toBeLessThan(0.05);
    expect(report.epochGrowthSecondHalf).toBeLessThan(0.05);
  }, 300_000);

  it('loads and trains inside worker_threads', () => {
    const result = spawnSync(process.execPath, [child('worker-train.mjs')], { encoding: 'utf8', timeout: 120_000 });
    expect(result.status, result.stderr).toBe(0);
    const message = JSON.parse(result.stdout.trim()) as { losses: number[]; accuracy: number };
    expect(message.losses[2]).toBeLessThan(message.losses[0]);
    expect(message.accuracy).toBe(1);
  });
});
