// Starts a long training run, then leaves the process the way argv[2] says: 'exit' or 'throw'.
import { Dataset, LeNet5 } from '../../dist/index.js';

const images = new Uint8Array(4096 * 784).map((_, i) => (i * 7) % 251);
const labels = new Uint8Array(4096).map((_, i) => i % 10);
const model = new LeNet5();
model.train(Dataset.fromArrays({ images, labels }), { epochs: 1000, batchSize: 16 }).catch(() => {});
setTimeout(() => {
  if (process.argv[2] === 'exit') process.exit(0);
  throw new Error('uncaught on purpose');
}, 300);
