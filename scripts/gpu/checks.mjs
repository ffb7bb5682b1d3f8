// The CUDA checks, shared by test/cuda.test.ts (vitest, where Node and a GPU are present) and
// scripts/gpu-check.sh (a bare GPU machine). Each check throws (node:assert) when it fails.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Dataset, LeNet5, Lenet5Error, SGD, cuda, datasets } from '../../dist/index.js';

const scratch = mkdtempSync(join(tmpdir(), 'lenet5-cuda-'));

async function rejectsWith(promise, code) {
  const error = await promise.then(
    () => undefined,
    (e) => e,
  );
  assert.ok(error instanceof Lenet5Error, `expected a Lenet5Error ${code}, got ${error}`);
  assert.equal(error.code, code);
  return error;
}

function maxDifference(a, b) {
  return Math.max(...a.logits.flatMap((row, n) => Array.from(row, (v, i) => Math.abs(v - b.logits[n][i]))));
}

export const checks = {
  'cuda is available and counted': async () => {
    assert.equal(cuda.isAvailable(), true);
    assert.ok(cuda.deviceCount() >= 1);
    const model = new LeNet5({ device: 'cuda' });
    assert.equal(model.device, 'cuda:0');
  },

  'one epoch on the GPU reaches the CPU accuracy within 1 point': async ({ fashion }) => {
    const [fit, val] = fashion.train.split(0.9, { seed: 0 });
    const results = {};
    for (const device of ['cuda', 'cpu']) {
      const model = new LeNet5({ device, seed: 1 });
      const history = await model.train(fit, { epochs: 1, batchSize: 64, seed: 1, validation: val });
      results[device] = { accuracy: (await model.evaluate(fashion.test)).accuracy, imagesPerSecond: history[0].imagesPerSecond };
    }
    assert.ok(Math.abs(results.cuda.accuracy - results.cpu.accuracy) <= 0.01, JSON.stringify(results));
    return results;
  },

  'a model saved on the GPU loads on the CPU with equal predictions (1e-5)': async ({ fashion }) => {
    const model = new LeNet5({ device: 'cuda', seed: 3 });
    await model.train(fashion.test, { epochs: 1, batchSize: 128, seed: 3 });
    const path = join(scratch, 'gpu.pth');
    await model.save(path);
    const cpu = await LeNet5.load(path, { device: 'cpu' });
    const input = new Uint8Array(784 * 8).map((_, i) => (i * 13) % 256);
    assert.ok(maxDifference(await model.predict(input), await cpu.predict(input)) < 1e-5);
    const back = await LeNet5.load(path, { device: 'cuda' });
    assert.equal(back.device, 'cuda:0');
  },

  'a checkpoint saved on the GPU resumes on the CPU and back': async ({ fashion }) => {
    const model = new LeNet5({ device: 'cuda', seed: 4 });
    const optimizer = new SGD({ lr: 0.01, momentum: 0.9 });
    await model.train(fashion.test, { epochs: 1, batchSize: 256, seed: 4, optimizer });
    const path = join(scratch, 'gpu-ckpt.pth');
    await model.saveCheckpoint(path, { optimizer, epoch: 1 });
    const onCpu = await LeNet5.loadCheckpoint(path, { device: 'cpu' });
    await onCpu.model.train(fashion.test, { epochs: 1, batchSize: 256, seed: 4, optimizer: onCpu.optimizer, initialEpoch: 1 });
    await onCpu.model.saveCheckpoint(path, { optimizer: onCpu.optimizer, epoch: 2 });
    const onGpu = await LeNet5.loadCheckpoint(path, { device: 'cuda' });
    assert.equal(onGpu.epoch, 2);
    const history = await onGpu.model.train(fashion.test, {
      epochs: 1,
      batchSize: 256,
      seed: 4,
      optimizer: onGpu.optimizer,
      initialEpoch: 2,
    });
    assert.ok(Number.isFinite(history[0].trainLoss));
  },

  'cuda:N past the device count is the documented error': async () => {
    const error = await rejectsWith((async () => new LeNet5({ device: `cuda:${cuda.deviceCount()}` }))(), 'ERR_LENET5_CUDA_DEVICE');
    assert.match(error.message, /does not exist/);
  },

  'running out of GPU memory is a JS error, not a crash': async () => {
    // 4M images evaluated in one batch need about 150 GB of activations: more than any one GPU has.
    const count = 4_000_000;
    const data = Dataset.fromArrays({ images: new Uint8Array(count * 784), labels: new Uint8Array(count) });
    const model = new LeNet5({ device: 'cuda' });
    await rejectsWith(model.evaluate(data, { batchSize: count }), 'ERR_LENET5_OUT_OF_MEMORY');
    const after = await model.predict(new Uint8Array(784));
    assert.equal(after.classes.length, 1);
  },
};

export async function loadFashion() {
  return { train: await datasets.fashionMnist('train'), test: await datasets.fashionMnist('test') };
}
