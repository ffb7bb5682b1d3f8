// Inference beside ONNX Runtime: this package's predict() and evaluate() against onnxruntime-node
// running the file `lenet5 export --format onnx` writes, with the same thread count, on the
// Fashion-MNIST test images, at batch 1, 64 and 1000. Blocks of calls alternate (ours, then ONNX
// Runtime's, several times), so both see the same machine; each block starts with untimed calls,
// since ONNX Runtime's threads keep spinning for a while after a call and would otherwise take the
// cores from the next caller. ONNX Runtime gets the images already normalised (its caller's work,
// not timed); predict() is timed from raw uint8 pixels and from the same float32 input. The int8
// model (model.quantize(), its native int8 pass) is timed in the same blocks from that float32
// input, beside the float predict(). Prints one JSON object; --quick: fewer blocks.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { Dataset, LeNet5, datasets, info, threads as engineThreads } from '../../dist/index.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const test = await datasets.fashionMnist('test');
const { images: pixels, labels } = test.toArrays();
const dir = mkdtempSync(join(tmpdir(), 'lenet5-bench-inference-'));
try {
  // Weights do not change the cost of a forward pass; a trained model would predict the same way.
  const model = new LeNet5({ seed: 0 });
  const onnxPath = join(dir, 'lenet5.onnx');
  await model.export(onnxPath, { format: 'onnx' });
  const threads = engineThreads.get();
  const session = await ort.InferenceSession.create(onnxPath, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const { mean, std } = model.normalization;
  const normalised = Float32Array.from(pixels, (v) => (v / 255 - mean) / std);
  const inputName = session.inputNames[0];
  const outputName = session.outputNames[0];
  const ortRun = async (first, count) => {
    const input = new ort.Tensor('float32', normalised.subarray(first * 784, (first + count) * 784), [count, 1, 28, 28]);
    return /** @type {Float32Array} */ ((await session.run({ [inputName]: input }))[outputName].data);
  };

  // Calibrated on test images like `lenet5 quantize`; its scales do not change the pass's cost either.
  const int8 = await model.quantize(Dataset.fromArrays({ images: pixels.subarray(0, 100 * 784), labels: labels.subarray(0, 100) }));

  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const predict = {};
  /** Per batch size, each block's median call (ms) and process CPU time per image (ms) of the float and int8 predict(). */
  const int8Blocks = {};
  for (const batch of [1, 64, 1000]) {
    const calls = batch === 1000 ? 10 : 100;
    const contenders = {
      uint8: (first) => model.predict(pixels.subarray(first * 784, (first + batch) * 784)),
      float32: (first) => model.predict(normalised.subarray(first * 784, (first + batch) * 784)),
      int8: (first) => int8.predict(normalised.subarray(first * 784, (first + batch) * 784)),
      ort: (first) => ortRun(first, batch),
    };
    /** @type {Record<string, number[]>} */
    const blockMedians = { uint8: [], float32: [], int8: [], ort: [] };
    /** @type {Record<string, number[]>} */
    const cpuPerImage = { float32: [], int8: [] };
    for (let block = 0; block < (values.quick ? 2 : 6); block++) {
      for (const [name, run] of Object.entries(contenders)) {
        const times = [];
        let cpu;
        for (let call = -3; call < calls; call++) {
          if (call === 0) cpu = process.cpuUsage();
          const first = ((call + 3) * batch) % (test.size - batch);
          const start = performance.now();
          await run(first);
          if (call >= 0) times.push(performance.now() - start);
        }
        blockMedians[name].push(median(times));
        const used = process.cpuUsage(cpu);
        cpuPerImage[name]?.push((used.user + used.system) / 1000 / (calls * batch));
      }
    }
    predict[batch] = Object.fromEntries(Object.entries(blockMedians).map(([name, t]) => [name, median(t)]));
    int8Blocks[batch] = { float32: blockMedians.float32, int8: blockMedians.int8, cpuMsPerImage: cpuPerImage };
  }

  // evaluate(): loss, accuracy and the confusion matrix of N test images in batches; ONNX
  // Runtime's side computes the logits batch by batch and counts the correct classes in JS.
  const evaluate = {};
  const pause = () => new Promise((resolve) => setTimeout(resolve, 50));
  for (const batch of [1, 64, 1000]) {
    const count = batch === 1 ? 1000 : test.size;
    const subset =
      count === test.size ? test : Dataset.fromArrays({ images: pixels.subarray(0, count * 784), labels: labels.subarray(0, count) });
    const warmup = Dataset.fromArrays({ images: pixels.subarray(0, batch * 784), labels: labels.subarray(0, batch) });
    const ours = [];
    const theirs = [];
    // Both count the same correct classes (a check that ONNX Runtime ran the same model).
    let engineCorrect = 0;
    let ortCorrect = 0;
    for (let round = 0; round < (values.quick ? 2 : 3); round++) {
      // Each side starts after a pause (ONNX Runtime's threads spin for a while after its last call,
      // and would take the cores from the next caller) and one untimed call of its own.
      await pause();
      await model.evaluate(warmup, { batchSize: batch });
      let start = performance.now();
      engineCorrect = (await model.evaluate(subset, { batchSize: batch })).correct;
      ours.push(count / ((performance.now() - start) / 1000));
      await pause();
      await ortRun(0, batch);
      start = performance.now();
      ortCorrect = 0;
      for (let first = 0; first < count; first += batch) {
        const n = Math.min(batch, count - first);
        const logits = await ortRun(first, n);
        for (let i = 0; i < n; i++) {
          const row = logits.subarray(i * 10, i * 10 + 10);
          if (row.indexOf(Math.max(...row)) === labels[first + i]) ortCorrect++;
        }
      }
      theirs.push(count / ((performance.now() - start) / 1000));
    }
    evaluate[batch] = { images: count, engine: median(ours), ort: median(theirs), engineCorrect, ortCorrect };
  }
  model.dispose();
  console.log(
    JSON.stringify({
      threads,
      ortVersion: ort.env.versions?.node ?? 'unknown',
      int8Kernels: info().int8Kernels,
      predict,
      int8Blocks,
      evaluate,
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
