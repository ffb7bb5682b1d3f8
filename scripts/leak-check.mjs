#!/usr/bin/env node --expose-gc
// Memory soak: N cycles of create -> train one small epoch -> evaluate -> save -> load -> dispose,
// then M epochs on one model. Prints the RSS curve and fails (exit 1) when resident memory grew more
// than 5% over the second half of each phase.
//   node --expose-gc scripts/leak-check.mjs [--cycles 200] [--epochs 50] [--json]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Dataset, LeNet5 } from '../dist/index.js';

const { values } = parseArgs({
  options: {
    cycles: { type: 'string', default: '200' },
    epochs: { type: 'string', default: '50' },
    json: { type: 'boolean', default: false },
  },
});
const cycles = Number(values.cycles);
const epochs = Number(values.epochs);
const dir = mkdtempSync(join(tmpdir(), 'lenet5-leak-'));
const count = 512;
const images = new Uint8Array(count * 784).map((_, i) => (i * 31) % 256);
const labels = new Uint8Array(count).map((_, i) => i % 10);
const data = Dataset.fromArrays({ images, labels });
const rssMb = () => {
  globalThis.gc?.();
  return process.memoryUsage().rss / 2 ** 20;
};

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

// Growth over the second half, robust to GC noise: the median RSS of the last quarter against the
// median of the quarter before the midpoint.
function growth(curve) {
  const q = Math.max(1, Math.floor(curve.length / 4));
  const before = median(curve.slice(2 * q - q, 2 * q));
  return (median(curve.slice(-q)) - before) / before;
}

const cycleCurve = [];
for (let i = 0; i < cycles; i++) {
  const model = new LeNet5({ seed: i });
  await model.train(data, { epochs: 1, batchSize: 64 });
  await model.evaluate(data);
  const path = join(dir, 'model.pth');
  await model.save(path);
  const loaded = await LeNet5.load(path);
  await loaded.predict(images.subarray(0, 784));
  loaded.dispose();
  model.dispose();
  cycleCurve.push(rssMb());
}
const epochCurve = [];
const model = new LeNet5();
for (let e = 0; e < epochs; e++) {
  await model.train(data, { epochs: 1, batchSize: 64, initialEpoch: e });
  epochCurve.push(rssMb());
}
rmSync(dir, { recursive: true, force: true });
const result = {
  cycles,
  epochs,
  cycleRssMb: cycleCurve.map(Math.round),
  epochRssMb: epochCurve.map(Math.round),
  cycleGrowthSecondHalf: growth(cycleCurve),
  epochGrowthSecondHalf: growth(epochCurve),
};
if (values.json) {
  console.log(JSON.stringify(result));
} else {
  const step = Math.max(1, Math.floor(cycles / 20));
  console.log(`RSS (MB) after cycles ${step}, ${2 * step}, ...: ${result.cycleRssMb.filter((_, i) => (i + 1) % step === 0).join(' ')}`);
  console.log(`RSS (MB) after epochs: ${result.epochRssMb.join(' ')}`);
  console.log(
    `growth over the second half: cycles ${(result.cycleGrowthSecondHalf * 100).toFixed(2)}%, epochs ${(result.epochGrowthSecondHalf * 100).toFixed(2)}%`,
  );
}
process.exitCode = result.cycleGrowthSecondHalf < 0.05 && result.epochGrowthSecondHalf < 0.05 ? 0 : 1;
