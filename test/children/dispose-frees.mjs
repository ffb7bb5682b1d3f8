// Counts the native models alive (liveModels) around dispose() in a process where nothing else
// creates models, so the counts are exact: prints one JSON line.
import { Dataset, LeNet5 } from '../../dist/index.js';
import { native } from '../../dist/native.js';

const counts = { start: native().liveModels(), created: 0, disposed: 0, disposedWhileTraining: 0, rejection: '', afterTraining: 0 };
const model = new LeNet5();
counts.created = native().liveModels();
model.dispose();
counts.disposed = native().liveModels();

const images = new Uint8Array(1024 * 784).map((_, i) => (i * 7) % 251);
const data = Dataset.fromArrays({ images, labels: new Uint8Array(1024).map((_, i) => i % 4), numClasses: 4 });
const training = new LeNet5({ numClasses: 4 });
const running = training.train(data, { epochs: 3, batchSize: 16 });
training.dispose();
counts.disposedWhileTraining = native().liveModels();
counts.rejection = await running.then(
  () => 'resolved',
  (error) => error.code,
);
// The job lets go of its share after the rejection is delivered.
for (let i = 0; i < 100 && native().liveModels() !== 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
counts.afterTraining = native().liveModels();
console.log(JSON.stringify(counts));
