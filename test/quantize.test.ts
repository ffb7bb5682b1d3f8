import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import { beforeAll, describe, expect, it } from 'vitest';
import { Dataset, LeNet5, QuantizedLeNet5, info, inspect } from '../src/index.js';
import { native } from '../src/native.js';
import { int8Logits, type QuantizedNetwork } from '../src/quantize/int8.js';
import { nativeNetwork } from '../src/quantize/model.js';
import { expectCode, lenet5Json, rng, syntheticDataset, syntheticImages, tempDir, tinyMnistFolder } from './helpers.js';

const dir = tempDir();
const CLASSES = 4;
// Images the model was neither trained nor calibrated on, normalised as the model's (mean 0.5, std 0.5).
const held = syntheticImages(300, CLASSES, 7);
const input = Float32Array.from(held.images, (v) => (v / 255 - 0.5) / 0.5);
const count = held.labels.length;

let model: LeNet5;
let quantized: QuantizedLeNet5;

beforeAll(async () => {
  model = new LeNet5({ numClasses: CLASSES, seed: 3, classes: ['a', 'b', 'c', 'd'] });
  await model.train(syntheticDataset(512, CLASSES, 2), { epochs: 1, batchSize: 32, seed: 1 });
  quantized = await model.quantize(syntheticDataset(200, CLASSES, 5), { images: 100 });
});

function flat(rows: Float32Array[]): Float32Array {
  return Float32Array.from(rows.flatMap((row) => Array.from(row)));
}

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let k = 1; k < row.length; k++) if (row[k] > row[best]) best = k;
  return best;
}

/** Share of images whose top class is the same in two N x CLASSES logit arrays. */
function classAgreement(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let same = 0;
  for (let n = 0; n < count; n++) {
    const rowA = Array.from({ length: CLASSES }, (_, k) => a[n * CLASSES + k]);
    const rowB = Array.from({ length: CLASSES }, (_, k) => b[n * CLASSES + k]);
    if (argmax(rowA) === argmax(rowB)) same++;
  }
  return same / count;
}

describe('int8 quantization', () => {
  it('follows the float model: the same class on >= 99% of new images, logits within 5% of their spread', async () => {
    const float = flat((await model.predict(input)).logits);
    const int8 = flat((await quantized.predict(input)).logits);
    expect(classAgreement(float, int8)).toBeGreaterThanOrEqual(0.99);
    const spread = float.reduce((m, v) => Math.max(m, v), -Infinity) - float.reduce((m, v) => Math.min(m, v), Infinity);
    const meanError = int8.reduce((sum, v, i) => sum + Math.abs(v - float[i]), 0) / int8.length;
    expect(meanError).toBeLessThan(0.05 * spread);
  });

  it('uses the whole int8 range: each weight channel and the input reach 127, as max-abs calibration says', () => {
    for (const layer of Object.values(quantized.network.layers)) {
      const perChannel = layer.weight.length / layer.shape[0];
      for (let c = 0; c < layer.shape[0]; c++) {
        const row = layer.weight.subarray(c * perChannel, (c + 1) * perChannel);
        expect(row.reduce((m, v) => Math.max(m, Math.abs(v)), 0)).toBe(127);
      }
    }
    // The calibration images hold pixel 0, which normalises to -1: the largest |input|.
    expect(quantized.network.activationScales.input).toBe(Math.fround(1 / 127));
  });

  it('saves one file about 4x smaller than the .pth that loads back with the same logits, classes and normalisation', async () => {
    const pth = join(dir, 'float.pth');
    const int8Path = join(dir, 'model.int8');
    await model.save(pth);
    await quantized.save(int8Path);
    expect(statSync(pth).size / statSync(int8Path).size).toBeGreaterThan(3.5);
    const again = await QuantizedLeNet5.load(int8Path);
    expect(again.classes).toEqual(['a', 'b', 'c', 'd']);
    expect(again.normalization).toEqual(model.normalization);
    expect(flat((await again.predict(input)).logits)).toEqual(flat((await quantized.predict(input)).logits));
  });

  it('exports QDQ ONNX: onnxruntime-node computes our logits from the graph as written, and our classes on >= 99.5% with its int8 kernels, as does onnxruntime-web', async () => {
    const path = join(dir, 'int8.onnx');
    await quantized.export(path, { format: 'onnx' });
    const ours = flat((await quantized.predict(input)).logits);
    const feeds = { input: new ort.Tensor('float32', input, [count, 1, 28, 28]) };
    // Without graph optimisations Runtime computes the QDQ semantics literally (float ops between Q and DQ).
    const literal = await ort.InferenceSession.create(path, { graphOptimizationLevel: 'disabled' });
    const literalLogits = (await literal.run(feeds)).logits.data as Float32Array;
    const differing = literalLogits.filter((v, i) => Math.abs(v - ours[i]) > 1e-3).length;
    expect(differing / literalLogits.length).toBeLessThan(0.01); // only where a value lies on a rounding boundary
    // With them, Runtime fuses DQ -> Conv/Gemm -> Q into its int8 kernels.
    const fused = await ort.InferenceSession.create(path);
    const fusedLogits = (await fused.run(feeds)).logits.data as Float32Array;
    expect(classAgreement(fusedLogits, ours)).toBeGreaterThanOrEqual(0.995);
    // onnxruntime-web's WebAssembly build, run here in Node (the browser path is the float export's test).
    ortWeb.env.wasm.numThreads = 1;
    const web = await ortWeb.InferenceSession.create(readFileSync(path));
    const webLogits = (await web.run({ input: new ortWeb.Tensor('float32', input, [count, 1, 28, 28]) })).logits.data as Float32Array;
    expect(classAgreement(webLogits, ours)).toBeGreaterThanOrEqual(0.995);
  });

  it('evaluates like predict: accuracy and confusion matrix from the int8 logits', async () => {
    const data = syntheticDataset(120, CLASSES, 9);
    const result = await quantized.evaluate(data);
    const predicted = (await quantized.predict(data.toArrays().images)).classes;
    const labels = data.toArrays().labels;
    expect(result.correct).toBe(predicted.filter((c, i) => c === labels[i]).length);
    expect(result.total).toBe(120);
    expect(result.confusionMatrix.flat().reduce((a, b) => a + b, 0)).toBe(120);
    expect(Number.isFinite(result.loss)).toBe(true);
  });

  it('the float loaders refuse an int8 model with ERR_LENET5_INT8_MODEL, naming the loader to use', async () => {
    const path = join(dir, 'refused.int8');
    await quantized.save(path);
    const error = await expectCode(LeNet5.load(path), 'ERR_LENET5_INT8_MODEL');
    expect(error.message).toContain('is an int8 model');
    expect(error.message).toContain('QuantizedLeNet5.load');
    await expectCode(inspect(path), 'ERR_LENET5_INT8_MODEL');
    await expectCode(model.loadStateDict(path), 'ERR_LENET5_INT8_MODEL');
  });

  it('QuantizedLeNet5.load refuses a float .pth and a cut-short int8 file with ERR_LENET5_INT8_FORMAT', async () => {
    const pth = join(dir, 'not-int8.pth');
    await model.save(pth);
    const error = await expectCode(QuantizedLeNet5.load(pth), 'ERR_LENET5_INT8_FORMAT');
    expect(error.message).toContain('does not start with "LENET5Q8"');
    const whole = join(dir, 'whole.int8');
    await quantized.save(whole);
    const bytes = readFileSync(whole);
    const cut = join(dir, 'cut.int8');
    writeFileSync(cut, bytes.subarray(0, bytes.length - 100));
    expect((await expectCode(QuantizedLeNet5.load(cut), 'ERR_LENET5_INT8_FORMAT')).message).toContain('cut short');
  });

  it('QuantizedLeNet5.load refuses an activation scale that is not a float32 value (the native pass divides in float32)', async () => {
    const path = join(dir, 'scale.int8');
    await quantized.save(path);
    const bytes = readFileSync(path);
    const headerLength = bytes.readUInt32LE(8);
    const header = JSON.parse(bytes.subarray(12, 12 + headerLength).toString('utf8'));
    header.activationScales.relu1 = 0.1; // float32 has no 0.1
    const json = Buffer.from(JSON.stringify(header), 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32LE(json.length);
    writeFileSync(path, Buffer.concat([bytes.subarray(0, 8), length, json, bytes.subarray(12 + headerLength)]));
    const error = await expectCode(QuantizedLeNet5.load(path), 'ERR_LENET5_INT8_FORMAT');
    expect(error.message).toContain('activation scale relu1 is 0.1 (expected a positive float32 value)');
  });

  it('quantize checks its arguments', async () => {
    const data = syntheticDataset(8, CLASSES, 1);
    await expectCode(model.quantize(data, { images: 0 }), 'ERR_LENET5_INVALID_ARGUMENT');
    await expectCode(model.quantize(data, { images: 1.5 }), 'ERR_LENET5_INVALID_ARGUMENT');
    await expectCode(model.quantize(data, { imgs: 10 } as never), 'ERR_LENET5_INVALID_ARGUMENT');
    await expectCode(model.quantize({} as never), 'ERR_LENET5_INVALID_ARGUMENT');
  });

  it('refuses to quantize weights that are not finite with ERR_LENET5_NON_FINITE, naming the tensor', async () => {
    const broken = new LeNet5({ numClasses: CLASSES, seed: 1 });
    const values = broken.parameterValues();
    values[2][5] = NaN; // conv2.weight
    broken.setParameterValues(values);
    const error = await expectCode(broken.quantize(syntheticDataset(8, CLASSES, 1)), 'ERR_LENET5_NON_FINITE');
    expect(error.message).toContain('conv2.weight');
  });
});

describe('lenet5 quantize and the commands that take an int8 model', () => {
  it('quantizes a trained .pth, reports both accuracies, and evaluate and export --int8 take the result', () => {
    const cwd = tempDir();
    const data = tinyMnistFolder(cwd);
    expect(lenet5Json(cwd, ['train', '--data', data, '--epochs', '2', '--out', 'm.pth']).status).toBe(0);
    type Quantized = {
      test: { total: number; float32: { accuracy: number }; int8: { accuracy: number } };
      out: string;
      bytes: { float: number; int8: number };
    };
    const quantize = lenet5Json<Quantized>(cwd, ['quantize', 'm.pth', '--calibrate', data, '--images', '50']);
    expect(quantize.status).toBe(0);
    expect(quantize.json.out).toBe('m.int8');
    expect(quantize.json.test.total).toBe(40);
    expect(Math.abs(quantize.json.test.int8.accuracy - quantize.json.test.float32.accuracy)).toBeLessThanOrEqual(0.05);
    expect(quantize.json.bytes.float / quantize.json.bytes.int8).toBeGreaterThan(3.5);
    const evaluate = lenet5Json<{ accuracy: number }>(cwd, ['evaluate', 'm.int8', '--data', data]);
    expect(evaluate.status).toBe(0);
    expect(evaluate.json.accuracy).toBe(quantize.json.test.int8.accuracy);
    expect(lenet5Json(cwd, ['export', 'm.int8', '--format', 'onnx', '--int8']).status).toBe(0);
    expect(existsSync(join(cwd, 'm.int8.onnx'))).toBe(true);
    const floatAsInt8 = lenet5Json<{ error: { message: string } }>(cwd, ['export', 'm.pth', '--format', 'onnx', '--int8']);
    expect(floatAsInt8.status).toBe(2);
    expect(floatAsInt8.json.error.message).toContain('lenet5 quantize m.pth --calibrate');
    const inspected = lenet5Json<{ tensors: { name: string; dtype: string }[]; scalars: Record<string, unknown> }>(cwd, [
      'inspect',
      'm.int8',
    ]);
    expect(inspected.json.tensors).toContainEqual({ name: 'conv1.weight', dtype: 'int8', shape: [6, 1, 5, 5] });
    expect(inspected.json.scalars.calibration_images).toBe(50);
    expect(lenet5Json(cwd, ['quantize', 'm.pth']).status).toBe(2); // --calibrate is required
  });
});

/** Bit patterns of float32 values: equal arrays are bit for bit the same (-0 and NaN included). */
// Each row's class is the first maximum of its logits and its probabilities their softmax.
function expectSoftmaxOf(
  prediction: { logits: Float32Array; probabilities: Float32Array; classes: ArrayLike<number> },
  count: number,
): void {
  const classes = prediction.logits.length / count;
  for (let n = 0; n < count; n++) {
    const row = prediction.logits.subarray(n * classes, (n + 1) * classes);
    const top = row[argmax(row)]!;
    expect(prediction.classes[n], `class of image ${n}`).toBe(argmax(row));
    const sum = row.reduce((total, v) => total + Math.exp(v - top), 0);
    row.forEach((v, c) => expect(prediction.probabilities[n * classes + c]).toBeCloseTo(Math.exp(v - top) / sum, 6));
  }
}

function bits(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

/**
 * A network no calibration would make, to reach every corner of the kernels: weights over the whole
 * int8 range (-128 too), biases far beyond any sum, tiny and large scales, and 13 classes (fc3's
 * last group of 8 outputs partly used).
 */
function extremeNetwork(seed: number): QuantizedNetwork {
  const random = rng(seed);
  const layer = (shape: number[]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    return {
      shape,
      weight: Int8Array.from({ length: size }, () => Math.floor(random() * 256) - 128),
      weightScales: Float32Array.from({ length: shape[0] }, () => Math.fround(10 ** (-4 + 3 * random()))),
      // Every third bias anywhere in int32 (a sum plus it is past float32's exact integers), the rest moderate.
      bias: Int32Array.from({ length: shape[0] }, (_, c) => Math.floor((random() - 0.5) * (c % 3 === 0 ? 2 ** 32 - 2 : 2e6))),
    };
  };
  return {
    numClasses: 13,
    activationScales: {
      input: Math.fround(0.01),
      relu1: Math.fround(0.3),
      relu2: Math.fround(2.5),
      relu3: Math.fround(7),
      relu4: Math.fround(3),
    },
    layers: {
      conv1: layer([6, 1, 5, 5]),
      conv2: layer([16, 6, 5, 5]),
      fc1: layer([120, 400]),
      fc2: layer([84, 120]),
      fc3: layer([13, 84]),
    },
  };
}

/**
 * The calibrated network with fc3 biases near 1e9 for every other class: sums plus bias past 2^24
 * (no longer exact in float32) that vary image by image, so the kernels must take the double path.
 */
function withHugeLogitBiases(network: QuantizedNetwork): QuantizedNetwork {
  const changed = structuredClone(network);
  changed.layers.fc3.bias = changed.layers.fc3.bias.map((b, c) => (c % 2 === 0 ? b + (c % 4 === 0 ? 1 : -1) * 1_000_000_007 : b));
  return changed;
}

describe('the native int8 pass', () => {
  const kernels = native().int8Kernels().available;
  // Normalised values beyond the input scale's range (saturating at -128 and 127), and exact halves of it (rounding to even).
  const random = rng(11);
  const wild = Float32Array.from({ length: 65 * 784 }, (_, i) =>
    i % 97 === 0 ? Math.fround((Math.floor(random() * 200) - 100 + 0.5) / 127) : Math.fround((random() - 0.5) * 2.6),
  );

  it.each(kernels)(
    '%s kernels: logits equal the TypeScript reference bit for bit, at batch 1, 3, 65 and 300, and an infinite pixel is refused',
    async (name) => {
      for (const network of [quantized.network, extremeNetwork(4), withHugeLogitBiases(quantized.network)]) {
        const pass = new (native().NativeQuantizedModel)(nativeNetwork(network), name);
        expect(pass.kernels).toBe(name);
        for (const [images, n] of [
          [input.subarray(0, 784), 1],
          [wild.subarray(0, 3 * 784), 3],
          [wild, 65],
          [input, count],
        ] as const) {
          const prediction = await pass.predict(images, n);
          expect(bits(prediction.logits), `${name}, batch ${n}`).toEqual(bits(int8Logits(network, images, n)));
          expectSoftmaxOf(prediction, n);
        }
      }
      // Each table checks its input as it quantizes it.
      const infinite = wild.slice(0, 784);
      infinite[700] = Infinity;
      await expect(new (native().NativeQuantizedModel)(nativeNetwork(quantized.network), name).predict(infinite, 1)).rejects.toThrow(
        'pixels[700] is Infinity',
      );
    },
  );

  it('predict and evaluate from raw pixels give the reference logits of the normalised pixels', async () => {
    const prediction = await quantized.predict(held.images);
    expect(bits(flat(prediction.logits))).toEqual(bits(int8Logits(quantized.network, input, count)));
    expectSoftmaxOf({ logits: flat(prediction.logits), probabilities: flat(prediction.probabilities), classes: prediction.classes }, count);
    const reference = int8Logits(quantized.network, input, count);
    const correct = held.labels.filter((label, n) => argmax(reference.subarray(n * CLASSES, (n + 1) * CLASSES)) === label).length;
    expect((await quantized.evaluate(Dataset.fromArrays({ images: held.images, labels: held.labels }))).correct).toBe(correct);
  });

  it('follows every scale: with relu2 scale off by 2x, logits equal the reference of that network, not the original', async () => {
    const changed = structuredClone(quantized.network);
    changed.activationScales.relu2 *= 2;
    const pass = new (native().NativeQuantizedModel)(nativeNetwork(changed), '');
    const { logits } = await pass.predict(input, count);
    expect(bits(logits)).toEqual(bits(int8Logits(changed, input, count)));
    const original = bits(int8Logits(quantized.network, input, count));
    expect(bits(logits).filter((v, i) => v !== original[i]).length).toBeGreaterThan(logits.length / 2);
  });

  it('predicts of 1 and 64 images issued while a batch runs get their own logits, and the batch its own (no shared scratch memory)', async () => {
    // 64 images run on the JS thread with the team (32 a thread), or alone when a batch holds it.
    const small = [input.subarray(0, 784), input.subarray(784, 65 * 784)];
    const expected = small.map((images) => bits(int8Logits(quantized.network, images, images.length / 784)));
    const whole = bits(int8Logits(quantized.network, input, count));
    let calls = 0;
    for (let round = 0; round < 10; round++) {
      let settled = false;
      const batch = quantized.predict(input).finally(() => (settled = true));
      await new Promise((resolve) => setImmediate(resolve)); // the batch's job thread starts
      while (!settled) {
        for (const [k, images] of small.entries()) expect(bits(flat((await quantized.predict(images)).logits))).toEqual(expected[k]);
        calls++;
        await new Promise((resolve) => setImmediate(resolve)); // lets the batch's result in
      }
      expect(bits(flat((await batch).logits))).toEqual(whole);
    }
    expect(calls).toBeGreaterThan(0);
  });

  it('refuses non-finite float pixels with ERR_LENET5_INVALID_ARGUMENT, naming the first, at any batch size', async () => {
    // 1 image alone, 64 with the team on the JS thread, 100 on a job thread; NaN, and an infinity alone.
    for (const n of [1, 64, 100]) {
      for (const [value, name] of [
        [NaN, 'NaN'],
        [-Infinity, '-Infinity'],
      ] as const) {
        const bad = input.slice(0, n * 784);
        bad[n * 784 - 3] = value;
        bad[n * 784 - 1] = value;
        const error = await expectCode(quantized.predict(bad), 'ERR_LENET5_INVALID_ARGUMENT');
        expect(error.message).toContain(`pixels[${n * 784 - 3}] is ${name}`);
      }
    }
  });

  it('names the kernels it runs, and refuses a table this CPU lacks', () => {
    expect(info().int8Kernels).toBe(kernels[0]);
    expect(() => new (native().NativeQuantizedModel)(nativeNetwork(quantized.network), 'sparc')).toThrow(/no int8 kernels named "sparc"/);
  });
});
