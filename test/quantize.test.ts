import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import { beforeAll, describe, expect, it } from 'vitest';
import { LeNet5, QuantizedLeNet5, inspect } from '../src/index.js';
import { expectCode, lenet5Json, syntheticDataset, syntheticImages, tempDir, tinyMnistFolder } from './helpers.js';

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
