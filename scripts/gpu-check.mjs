// Runs the CUDA checks, then a 1-epoch Fashion-MNIST benchmark on the GPU against the seed's
// Python loop on the same GPU. Prints one JSON line. Called by scripts/gpu-check.sh.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Adam, LeNet5, cuda, datasets, info } from '../dist/index.js';
import { checks, loadFashion } from './gpu/checks.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const python = process.env.PYTHON ?? 'python3';
/** @type {{ versions: Record<string, unknown>, gpu: string | null, tests: { passed: number, failed: number, failures: { name: string, error: string }[] }, benchmark?: unknown }} */
const report = { versions: { ...info(), python: null }, gpu: null, tests: { passed: 0, failed: 0, failures: [] } };
const gpuName = spawnSync(
  python,
  ['-c', 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"); print(torch.__version__)'],
  { encoding: 'utf8' },
);
[report.gpu, report.versions.python] = gpuName.stdout.trim().split('\n');

const fashion = await loadFashion();
if (cuda.isAvailable()) {
  for (const [name, check] of Object.entries(checks)) {
    try {
      await check({ fashion });
      report.tests.passed++;
    } catch (error) {
      report.tests.failed++;
      report.tests.failures.push({ name, error: String(error instanceof Error ? error.message : error).slice(0, 300) });
    }
  }
  const [fit, val] = fashion.train.split(0.9, { seed: 0 });
  const model = new LeNet5({ device: 'cuda', seed: 0 });
  await model.train(fit, { epochs: 1, batchSize: 64, seed: 0, optimizer: new Adam() }); // warm-up: CUDA context, cuDNN plans
  const timed = new LeNet5({ device: 'cuda', seed: 0 });
  const history = await timed.train(fit, { epochs: 1, batchSize: 64, seed: 0, optimizer: new Adam(), validation: val });
  const test = await timed.evaluate(fashion.test);
  const seedLoop = spawnSync(
    python,
    [
      join(root, 'scripts/bench/seed_loop.py'),
      '--device',
      'cuda',
      '--epochs',
      '1',
      '--data',
      process.env.LENET5_DATA ?? datasets.fashionMnistDir(),
    ],
    { encoding: 'utf8', env: { ...process.env, PYTHONWARNINGS: 'ignore' } },
  );
  const reference =
    seedLoop.status === 0 ? JSON.parse(seedLoop.stdout.trim().split('\n').pop() ?? '') : { error: seedLoop.stderr.slice(-500) };
  report.benchmark = {
    node: { trainImagesPerSecond: Math.round(history[0].imagesPerSecond), testAccuracy: test.accuracy },
    python: {
      trainImagesPerSecond: Math.round(reference.trainImagesPerSecond ?? 0),
      testAccuracy: reference.testAccuracy,
      error: reference.error,
    },
    ratio: reference.trainImagesPerSecond ? history[0].imagesPerSecond / reference.trainImagesPerSecond : null,
  };
} else {
  report.tests.failed = Object.keys(checks).length;
  report.tests.failures.push({
    name: 'cuda',
    error: `cuda.isAvailable() is false (CUDA support: ${info().cudaSupport}): the addon was built without CUDA, or no GPU is visible`,
  });
}
console.log(JSON.stringify(report));
process.exitCode = report.tests.failed === 0 ? 0 : 1;
