import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Adam, Dataset, LeNet5, SGD, cuda } from '../src/index.js';
import { IMAGE_PIXELS } from '../src/data/dataset.js';
import { expectCode, root, syntheticDataset, syntheticImages } from './helpers.js';

const SEED_STATE_DICT = [
  ['conv1.weight', [6, 1, 5, 5]],
  ['conv1.bias', [6]],
  ['conv2.weight', [16, 6, 5, 5]],
  ['conv2.bias', [16]],
  ['fc1.weight', [120, 400]],
  ['fc1.bias', [120]],
  ['fc2.weight', [84, 120]],
  ['fc2.bias', [84]],
  ['fc3.weight', [10, 84]],
  ['fc3.bias', [10]],
];

describe('LeNet5 model', () => {
  it('has the seed state_dict parameter names and shapes, in order', () => {
    const model = new LeNet5();
    expect(model.parameters().map((p) => [p.name, p.shape])).toEqual(SEED_STATE_DICT);
    expect(new LeNet5({ numClasses: 3 }).parameters().at(-2)).toEqual({ name: 'fc3.weight', shape: [3, 84] });
  });

  it('learns a synthetic task: the loss falls and accuracy rises', async () => {
    const data = syntheticDataset(512, 4);
    const model = new LeNet5({ numClasses: 4, seed: 3 });
    const before = await model.evaluate(data);
    const history = await model.train(data, { epochs: 3, batchSize: 32, seed: 1, validation: data });
    expect(history).toHaveLength(3);
    expect(history[2].trainLoss).toBeLessThan(history[0].trainLoss);
    expect(history[2].valLoss).toBeLessThan(before.loss / 2);
    const after = await model.evaluate(data);
    expect(after.accuracy).toBeGreaterThan(0.95);
    expect(after.total).toBe(512);
    expect(after.confusionMatrix.flat().reduce((a, b) => a + b, 0)).toBe(512);
    expect(after.perClassAccuracy).toHaveLength(4);
    expect(history[0].imagesPerSecond).toBeGreaterThan(0);
  });

  it('is reproducible bit for bit with a seed on the CPU', async () => {
    const data = syntheticDataset(256, 4);
    const run = async () => {
      const model = new LeNet5({ numClasses: 4, seed: 7 });
      const history = await model.train(data, { epochs: 2, batchSize: 32, seed: 11 });
      const logits = (await model.predict(syntheticImages(4, 4, 9).images)).logits;
      return { losses: history.map((h) => h.trainLoss), logits: logits.map((l) => Array.from(l)) };
    };
    const a = await run();
    const b = await run();
    expect(b).toEqual(a);
    const other = new LeNet5({ numClasses: 4, seed: 8 });
    const otherLogits = (await other.predict(syntheticImages(4, 4, 9).images)).logits.map((l) => Array.from(l));
    expect(otherLogits).not.toEqual(a.logits);
  });

  it('continues optimizer state across train() calls: 2 x 1 epoch equals 1 x 2 epochs', async () => {
    const data = syntheticDataset(192, 4);
    const once = new LeNet5({ numClasses: 4, seed: 1 });
    await once.train(data, { epochs: 2, batchSize: 32, seed: 5, optimizer: new Adam() });
    const twice = new LeNet5({ numClasses: 4, seed: 1 });
    const optimizer = new Adam();
    await twice.train(data, { epochs: 1, batchSize: 32, seed: 5, optimizer });
    await twice.train(data, { epochs: 1, batchSize: 32, seed: 5, optimizer, initialEpoch: 1 });
    expect(optimizer.steps).toBe(12);
    const input = syntheticImages(3, 4, 4).images;
    expect((await twice.predict(input)).logits).toEqual((await once.predict(input)).logits);
  });

  it('trains with SGD and momentum', async () => {
    const data = syntheticDataset(256, 4);
    const model = new LeNet5({ numClasses: 4, seed: 2 });
    const history = await model.train(data, { epochs: 3, batchSize: 32, seed: 1, optimizer: new SGD({ lr: 0.05, momentum: 0.9 }) });
    expect(history[2].trainLoss).toBeLessThan(history[0].trainLoss);
  });

  it('keeps the event loop running during training', async () => {
    const data = syntheticDataset(2048, 4);
    const model = new LeNet5({ numClasses: 4 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    await model.train(data, { epochs: 2, batchSize: 16 });
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(3);
  });

  it('delivers progress events in order on the JS thread', async () => {
    const data = syntheticDataset(256, 4);
    const model = new LeNet5({ numClasses: 4 });
    const events: string[] = [];
    await model.train(data, {
      epochs: 2,
      batchSize: 64,
      onBatchEnd: (b) => events.push(`b${b.epoch}.${b.batch}/${b.batches}`),
      onEpochEnd: (e) => events.push(`e${e.epoch}`),
    });
    expect(events).toEqual(['b1.1/4', 'b1.2/4', 'b1.3/4', 'b1.4/4', 'e1', 'b2.1/4', 'b2.2/4', 'b2.3/4', 'b2.4/4', 'e2']);
  });

  it('stops at the next batch on abort, rejects with AbortError, and stays usable', async () => {
    const data = syntheticDataset(2048, 4);
    const model = new LeNet5({ numClasses: 4 });
    const controller = new AbortController();
    let batches = 0;
    const error = await expectCode(
      model.train(data, {
        epochs: 5,
        batchSize: 16,
        signal: controller.signal,
        onBatchEnd: () => {
          if (++batches === 3) controller.abort();
        },
      }),
      'ERR_LENET5_ABORTED',
    );
    expect(error.name).toBe('AbortError');
    expect(batches).toBeLessThan(40);
    const after = await model.train(data, { epochs: 1, batchSize: 256 });
    expect(after).toHaveLength(1);
    await expectCode(model.train(data, { signal: AbortSignal.abort() }), 'ERR_LENET5_ABORTED');
  });

  it('rejects a second call on a busy model at once', async () => {
    const data = syntheticDataset(1024, 4);
    const model = new LeNet5({ numClasses: 4 });
    const training = model.train(data, { epochs: 1, batchSize: 16 });
    const error = await expectCode(model.evaluate(data), 'ERR_LENET5_BUSY');
    expect(error.message).toMatch(/busy/);
    await expectCode(model.train(data), 'ERR_LENET5_BUSY');
    await expectCode(model.predict(new Uint8Array(784)), 'ERR_LENET5_BUSY');
    await training;
    await expect(model.evaluate(data)).resolves.toMatchObject({ total: 1024 });
  });

  it('validates options before the native call, with exact messages', async () => {
    const data = syntheticDataset(64, 4);
    const model = new LeNet5({ numClasses: 4 });
    const cases: [() => unknown, string][] = [
      [() => model.train(data, { batchSize: 0 }), 'Expected positive integer for batchSize but received 0 of type number'],
      [() => model.train(data, { epochs: 1.5 }), 'Expected positive integer for epochs but received 1.5 of type number'],
      [() => model.train(data, { seed: -1 }), 'Expected non-negative integer seed for seed but received -1 of type number'],
      [() => model.train(data, { shuffle: 'yes' as never }), 'Expected boolean for shuffle but received "yes" of type string'],
      [
        () => model.train(data, { optimizer: {} as never }),
        'Expected Adam or SGD instance for optimizer but received an object of type object',
      ],
      [() => model.train(data, { epoch: 3 } as never), 'Unknown option epoch in train options; expected one of'],
      [() => new Adam({ lr: -1 }), 'Expected non-negative finite number for lr but received -1 of type number'],
      [() => new Adam({ betas: [0.9, 1] }), 'Expected number >= 0 and < 1 for betas[1] but received 1 of type number'],
      [() => new SGD({ nesterov: true }), 'Expected momentum > 0 and dampening 0 (as PyTorch requires) for nesterov'],
      [
        () => new LeNet5({ device: 'gpu' as never }),
        "Expected one of 'cpu', 'cuda', 'cuda:N', 'auto' for device but received \"gpu\" of type string",
      ],
      [() => new LeNet5({ numClasses: 0 }), 'Expected positive integer for numClasses but received 0 of type number'],
      [() => data.split(1.5), 'Expected number > 0 and < 1 for fraction but received 1.5 of type number'],
    ];
    for (const [call, message] of cases) {
      const error = await expectCode(async () => call(), 'ERR_LENET5_INVALID_ARGUMENT');
      expect(error.message).toContain(message);
    }
  });

  it('rejects wrong input shapes and values with errors naming what was received', async () => {
    const model = new LeNet5();
    expect((await expectCode(model.predict(new Uint8Array(700)), 'ERR_LENET5_SHAPE')).message).toContain('received 700 values');
    expect((await expectCode(model.predict(new Uint8Array(784 * 2), { shape: [2, 3, 28, 28] }), 'ERR_LENET5_SHAPE')).message).toContain(
      'received [2, 3, 28, 28]',
    );
    const nan = new Float32Array(784);
    nan[10] = NaN;
    expect((await expectCode(model.predict(nan), 'ERR_LENET5_INVALID_ARGUMENT')).message).toContain('pixels[10] is NaN');
    await expectCode(model.predict([1, 2, 3] as never), 'ERR_LENET5_INVALID_ARGUMENT');
    await expectCode(async () => Dataset.fromArrays({ images: new Uint8Array(0), labels: [] }), 'ERR_LENET5_SHAPE');
    await expectCode(async () => Dataset.fromArrays({ images: new Uint8Array(784 * 2), labels: [1] }), 'ERR_LENET5_SHAPE');
    await expectCode(async () => Dataset.fromArrays({ images: new Uint8Array(784), labels: [5], numClasses: 3 }), 'ERR_LENET5_DATA');
    const bigLabels = Dataset.fromArrays({ images: new Uint8Array(784), labels: [12] });
    expect((await expectCode(model.train(bigLabels), 'ERR_LENET5_DATA')).message).toContain('numClasses: 13');
  });

  it('predicts probabilities from raw Uint8 pixels and normalised Float32 input alike', async () => {
    const model = new LeNet5({ seed: 4 });
    const { images } = syntheticImages(2, 4, 2);
    const normalised = Float32Array.from(images, (v) => (v / 255 - 0.5) / 0.5);
    const fromBytes = await model.predict(images, { shape: [2, 28, 28] });
    const fromFloats = await model.predict(normalised, { shape: [2, 1, 28, 28] });
    expect(fromBytes.classes).toHaveLength(2);
    for (let n = 0; n < 2; n++) {
      expect(fromBytes.probabilities[n].reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      fromBytes.logits[n].forEach((v, i) => expect(v).toBeCloseTo(fromFloats.logits[n][i], 5));
    }
  });

  it("predict's probabilities are the softmax of its logits, classes their first maximum, and an image's logits do not depend on its batch (bit for bit on the fused engine)", async () => {
    const model = new LeNet5({ seed: 5 });
    const { images } = syntheticImages(200, 10, 3);
    // 3 images run on the calling thread, 40 on a job thread's team in two chunks, 200 in chunks of 64.
    const whole = await model.predict(images);
    for (const count of [3, 40, 200]) {
      const part = await model.predict(images.subarray(0, count * 784));
      expect(part.classes).toHaveLength(count);
      for (let n = 0; n < count; n++) {
        // The fused engine computes each image alone; LibTorch's products may block by batch size.
        if (model.engine === 'fused') expect(Array.from(part.logits[n])).toEqual(Array.from(whole.logits[n]));
        else part.logits[n].forEach((v, c) => expect(v).toBeCloseTo(whole.logits[n][c], 5));
        const logits = Array.from(part.logits[n]);
        const max = Math.max(...logits);
        const sum = logits.reduce((a, v) => a + Math.exp(v - max), 0);
        part.probabilities[n].forEach((p, c) => expect(p).toBeCloseTo(Math.exp(logits[c] - max) / sum, 6));
        expect(part.classes[n]).toBe(logits.indexOf(max));
      }
    }
  });

  it('refuses non-finite Float32Array pixels, naming the first one, on the calling thread and a job thread alike', async () => {
    const model = new LeNet5({ seed: 6 });
    for (const [count, at, value, shown] of [
      [2, 1000, NaN, 'NaN'],
      [40, 31_000, Infinity, 'Infinity'],
      [40, 5, -Infinity, '-Infinity'],
    ] as const) {
      const pixels = new Float32Array(count * 784);
      pixels[at] = value;
      pixels[at + 1] = NaN;
      const error = await expectCode(model.predict(pixels), 'ERR_LENET5_INVALID_ARGUMENT');
      expect(error.message).toBe(`Expected finite pixel values but pixels[${at}] is ${shown}. Replace NaN/Infinity before predicting.`);
    }
    expect((await model.predict(new Float32Array(784))).classes).toHaveLength(1);
  });

  it('handles a batch size larger than the dataset as one partial batch', async () => {
    const model = new LeNet5({ numClasses: 4 });
    const history = await model.train(syntheticDataset(10, 4), { epochs: 1, batchSize: 64 });
    expect(history[0].trainLoss).toBeGreaterThan(0);
  });

  it('stops on a non-finite loss, naming epoch and batch, and keeps the last good weights', async () => {
    const data = syntheticDataset(128, 4);
    const model = new LeNet5({ numClasses: 4, seed: 1 });
    const input = syntheticImages(1, 4, 3).images;
    const error = await expectCode(
      model.train(data, { epochs: 1, batchSize: 32, optimizer: new SGD({ lr: 1e30 }) }),
      'ERR_LENET5_NON_FINITE_LOSS',
    );
    expect(error.message).toMatch(/at epoch 1, batch \d+/);
    const logits = (await model.predict(input)).logits[0];
    expect(Array.from(logits).every(Number.isFinite)).toBe(true);
    const skipped: number[] = [];
    const skipping = new LeNet5({ numClasses: 4, seed: 1 });
    await skipping.train(data, {
      epochs: 1,
      batchSize: 32,
      optimizer: new SGD({ lr: 1e30 }),
      nonFiniteLoss: 'skip',
      onNonFiniteLoss: (w) => skipped.push(w.batch),
    });
    expect(skipped.length).toBeGreaterThan(0);
  });

  it('refuses CUDA on a CPU-only LibTorch with the documented error', async () => {
    if (cuda.isAvailable()) {
      const error = await expectCode(async () => new LeNet5({ device: `cuda:${cuda.deviceCount()}` as never }), 'ERR_LENET5_CUDA_DEVICE');
      expect(error.message).toContain('does not exist');
      return;
    }
    expect(cuda.deviceCount()).toBe(0);
    const error = await expectCode(async () => new LeNet5({ device: 'cuda' }), 'ERR_LENET5_CUDA_UNAVAILABLE');
    expect(error.message).toContain("Device 'cuda' was requested, but CUDA is not available");
    expect(error.message).toContain("Use device 'cpu' or 'auto'");
    await expectCode(async () => new LeNet5().to('cuda:1'), 'ERR_LENET5_CUDA_UNAVAILABLE');
    expect(new LeNet5({ device: 'auto' }).device).toBe('cpu');
  });

  it('a disposed model throws a clear error', async () => {
    const model = new LeNet5();
    model.dispose();
    const error = await expectCode(model.predict(new Uint8Array(IMAGE_PIXELS)), 'ERR_LENET5_DISPOSED');
    expect(error.message).toContain('was disposed');
    await expectCode(async () => model.parameters(), 'ERR_LENET5_DISPOSED');
    model.dispose();
  });

  it('dispose frees the native model at once, or when a running train() ends (which then rejects)', () => {
    // In a child process: there no other model can be garbage-collected while it counts.
    const result = spawnSync(process.execPath, [join(root, 'test/children/dispose-frees.mjs')], { encoding: 'utf8', timeout: 60_000 });
    expect(result.status, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      start: 0,
      created: 1,
      disposed: 0,
      disposedWhileTraining: 1,
      rejection: 'ERR_LENET5_ABORTED',
      afterTraining: 0,
    });
  });

  it('splits datasets reproducibly: the same seed gives the same halves, another seed others', async () => {
    const data = syntheticDataset(100, 4);
    const model = new LeNet5({ numClasses: 4, seed: 1 });
    // The untrained model's loss over a half identifies which images it holds.
    const halves = async (seed: number) => {
      const out = [];
      for (const half of data.split(0.8, { seed }))
        out.push({ size: half.size, numClasses: half.numClasses, loss: (await model.evaluate(half)).loss });
      return out;
    };
    const first = await halves(3);
    expect(first.map((h) => [h.size, h.numClasses])).toEqual([
      [80, 4],
      [20, 4],
    ]);
    expect(await halves(3)).toEqual(first);
    const other = await halves(4);
    expect(other.map((h) => h.loss)).not.toEqual(first.map((h) => h.loss));
  });
});
