// Loads the addon and trains inside a worker thread (the addon is context-aware).
import { Worker, isMainThread, parentPort } from 'node:worker_threads';

if (isMainThread) {
  const worker = new Worker(new URL(import.meta.url));
  worker.on('message', (m) => {
    console.log(JSON.stringify(m));
  });
  worker.on('error', (e) => {
    console.error(e);
    process.exitCode = 1;
  });
} else {
  const { Dataset, LeNet5 } = await import('../../dist/index.js');
  const images = new Uint8Array(256 * 784);
  const labels = new Uint8Array(256);
  for (let n = 0; n < 256; n++) {
    labels[n] = n % 2;
    images.fill(labels[n] ? 255 : 0, n * 784, n * 784 + 392);
  }
  const data = Dataset.fromArrays({ images, labels, numClasses: 2 });
  const model = new LeNet5({ numClasses: 2, seed: 1 });
  const history = await model.train(data, { epochs: 3, batchSize: 32, seed: 1 });
  const result = await model.evaluate(data);
  parentPort?.postMessage({ losses: history.map((h) => h.trainLoss), accuracy: result.accuracy });
}
