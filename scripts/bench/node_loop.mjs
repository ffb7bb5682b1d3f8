// This package's side of the benchmark: the seed's workflow through the public API. Prints one JSON object.
import { parseArgs } from 'node:util';
import { Adam, LeNet5, datasets, info } from '../../dist/index.js';

const { values } = parseArgs({
  options: {
    epochs: { type: 'string', default: '1' },
    'max-batches': { type: 'string', default: '0' },
    'rss-per-epoch': { type: 'boolean', default: false },
    seed: { type: 'string', default: '0' },
  },
});
const epochs = Number(values.epochs);
const maxBatches = Number(values['max-batches']);

const full = await datasets.fashionMnist('train');
const test = await datasets.fashionMnist('test');
const [fit, val] = full.split(0.9, { seed: 0 });
// --max-batches: train on that many batches' worth of images per epoch (the quick benchmark).
const train = maxBatches > 0 && maxBatches * 64 < fit.size ? fit.split((maxBatches * 64) / fit.size, { seed: 0 })[0] : fit;

const seed = Number(values.seed);
const model = new LeNet5({ seed });
const optimizer = new Adam({ lr: 0.001 });
const rssPerEpochMb = [];
// User CPU time of training only: from the call to the last batch of each epoch (validation follows it).
let userCpuSeconds = 0;
let cpuMark = process.cpuUsage();
const history = await model.train(train, {
  epochs,
  batchSize: 64,
  seed,
  optimizer,
  validation: val,
  batchEventInterval: Number.MAX_SAFE_INTEGER,
  onBatchEnd: (b) => {
    if (b.batch === b.batches) userCpuSeconds += process.cpuUsage(cpuMark).user / 1e6;
  },
  onEpochEnd: () => {
    cpuMark = process.cpuUsage();
    if (values['rss-per-epoch']) rssPerEpochMb.push(process.memoryUsage().rss / 2 ** 20);
  },
});
const start = performance.now();
const result = await model.evaluate(test);
const evalSeconds = (performance.now() - start) / 1000;

const image = new Uint8Array(784).map((_, i) => (i * 37) % 256);
for (let i = 0; i < 200; i++) await model.predict(image);
const latencies = [];
for (let i = 0; i < 2000; i++) {
  const t = performance.now();
  await model.predict(image);
  latencies.push(performance.now() - t);
}
latencies.sort((a, b) => a - b);
const seconds = history.reduce((s, h) => s + train.size / h.imagesPerSecond, 0);
console.log(
  JSON.stringify({
    libtorch: info().libtorch,
    threads: info().threads,
    engine: model.engine,
    engineKernels: info().engineKernels,
    trainImagesPerSecond: (train.size * epochs) / seconds,
    trainUserCpuPer1000: (1000 * userCpuSeconds) / (train.size * epochs),
    evalImagesPerSecond: test.size / evalSeconds,
    predictP50Ms: latencies[Math.floor(latencies.length * 0.5)],
    predictP99Ms: latencies[Math.floor(latencies.length * 0.99)],
    maxRssMb: process.resourceUsage().maxRSS / 1024,
    rssPerEpochMb,
    epochs: history.map((h) => ({ epoch: h.epoch, trainLoss: h.trainLoss, valLoss: h.valLoss, valAccuracy: h.valAccuracy })),
    testLoss: result.loss,
    testAccuracy: result.accuracy,
  }),
);
