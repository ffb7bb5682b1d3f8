#!/usr/bin/env node
// npm run bench [-- --quick] [-- --rounds N]: this package against the seed's Python loop on the
// same machine, in the same run, interleaved round by round, on the same data (Fashion-MNIST,
// 54k/6k split) and hyperparameters (batch 64, Adam lr 0.001). Writes BENCHMARKS.md.
// Each round trains one epoch with:
//   engine      this package, fused CPU engine, default threads (all cores)
//   engine-1t   the same, LENET5_THREADS=1 (parallel efficiency)
//   libtorch    this package, LENET5_ENGINE=libtorch (LibTorch's operators, the reference path)
//   py-default  the seed's loop (scripts/bench/seed_loop.py), PyTorch's default threads
//   py-best     the same loop at its best thread count, OPENBLAS_NUM_THREADS=1
//   inference   predict() and evaluate() beside onnxruntime-node on the exported ONNX file, at
//               batch 1, 64 and 1000, and the int8 model's predict() beside the float one
//               (scripts/bench/inference.mjs)
// and reports every round's ratios with their min / median / max, user CPU seconds per 1,000
// training images, the engine's per-layer roofline and this CPU's measured FP32 peak
// (scripts/bench/engine_layers.cc), the share of that peak reached, and, unless --quick,
// 10-epoch accuracy for two seeds.
import { spawnSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readSection } from './bench/sections.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    out: { type: 'string', default: join(root, 'BENCHMARKS.md') },
  },
});
const quick = args.quick;
const rounds = Number(args.rounds ?? (quick ? 2 : 5));
const python = process.env.LENET5_PYTHON ?? join(root, '.venv/bin/python');
const maxBatches = quick ? 200 : 0;
// Multiply-adds x 2 of the matrix products, per image: forward conv1 117,600 + conv2 240,000 + fc
// 58,920 MAC; backward the same for every weight gradient plus conv2's and the fc layers' input
// gradients (conv1 needs none). ReLU, pooling, the loss and the optimizer are not counted.
const FORWARD_MAC = 117_600 + 240_000 + 58_920;
const TRAIN_FLOP_PER_IMAGE = 2 * (FORWARD_MAC + FORWARD_MAC + 240_000 + 58_920); // 2,263,920

function run(command, commandArgs, env = {}) {
  const result = spawnSync(command, commandArgs, {
    encoding: 'utf8',
    env: { ...process.env, PYTHONWARNINGS: 'ignore', ...env },
    maxBuffer: 1 << 24,
  });
  if (result.status !== 0) throw new Error(`${command} ${commandArgs.join(' ')} failed:\n${result.stderr.slice(-2000)}`);
  return JSON.parse(result.stdout.trim().split('\n').pop() ?? '');
}

const node = (epochs, env = {}, extra = []) =>
  run(
    process.execPath,
    [join(root, 'scripts/bench/node_loop.mjs'), '--epochs', String(epochs), '--max-batches', String(maxBatches), ...extra],
    env,
  );
const seedLoop = (epochs, threads, env, extra = []) =>
  run(
    python,
    [
      join(root, 'scripts/bench/seed_loop.py'),
      '--epochs',
      String(epochs),
      '--max-batches',
      String(maxBatches),
      ...(threads ? ['--threads', String(threads)] : []),
      ...extra,
    ],
    env,
  );
const sorted = (values) => [...values].sort((a, b) => a - b);
const median = (values) => sorted(values)[Math.floor(values.length / 2)];
const spread = (values) => {
  const s = sorted(values);
  return { min: s[0], median: median(values), max: s.at(-1) };
};

function cpuModel() {
  const info = readFileSync('/proc/cpuinfo', 'utf8');
  return {
    model: info.match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown CPU',
    // Family and model tell apart CPUs that share a marketing name (an EPYC of Zen 1, 2, 3 or 4).
    family: info.match(/^cpu family\s*:\s*(\d+)/m)?.[1] ?? '?',
    modelNumber: info.match(/^model\s*:\s*(\d+)/m)?.[1] ?? '?',
    mhz: Number(info.match(/cpu MHz\s*:\s*([\d.]+)/)?.[1] ?? 0),
    cores: cpus().length,
  };
}

// The Python loop's best thread count (OpenBLAS single-threaded), found before the rounds.
const cores = cpus().length;
const tuneEnv = { OPENBLAS_NUM_THREADS: '1' };
const tuning = [...new Set([1, cores])].map((threads) => ({ threads, ips: seedLoop(1, threads, tuneEnv).trainImagesPerSecond }));
const bestThreads = tuning.reduce((a, b) => (b.ips > a.ips ? b : a)).threads;

const contenders = {
  engine: () => node(1),
  'engine-1t': () => node(1, { LENET5_THREADS: '1' }),
  libtorch: () => node(1, { LENET5_ENGINE: 'libtorch' }),
  'py-default': () => seedLoop(1, 0, {}),
  'py-best': () => seedLoop(1, bestThreads, tuneEnv),
};
const inferenceRuns = [];
/** @type {Record<string, any[]>} */
const samples = Object.fromEntries(Object.keys(contenders).map((name) => [name, []]));
for (let round = 0; round < rounds; round++) {
  for (const [name, measure] of Object.entries(contenders)) samples[name].push(measure());
  inferenceRuns.push(run(process.execPath, [join(root, 'scripts/bench/inference.mjs'), ...(quick ? ['--quick'] : [])]));
  process.stderr.write(
    `round ${round + 1}/${rounds}: ${Object.keys(contenders)
      .map((name) => `${name} ${Math.round(samples[name].at(-1).trainImagesPerSecond)}`)
      .join(', ')} images/s\n`,
  );
}
const perRound = (name, field) => samples[name].map((s) => s[field]);
const ratios = (a, b, field = 'trainImagesPerSecond') => samples[a].map((s, i) => s[field] / samples[b][i][field]);

// The engine's layers alone, one core, compiled for the table the engine chose (on a Zen 4 the
// engine runs its AVX2 table although the CPU has AVX-512: native/core/engine/kernels.cc).
const layerBinary = join(root, 'build/engine_layers');
const tableFlags = { avx512: [], avx2: ['-mno-avx512f'], baseline: ['-mno-avx2', '-mno-fma', '-mno-avx512f'] };
const built = spawnSync(
  'g++',
  [
    '-O3',
    '-march=native',
    ...(tableFlags[samples.engine[0].engineKernels] ?? []),
    '-ffp-contract=fast',
    '-std=c++17',
    '-pthread',
    '-o',
    layerBinary,
    join(root, 'scripts/bench/engine_layers.cc'),
  ],
  { encoding: 'utf8' },
);
if (built.status !== 0) throw new Error(`g++ failed on scripts/bench/engine_layers.cc:\n${built.stderr}`);
const layerRuns = Array.from({ length: 3 }, () => JSON.parse(spawnSync(layerBinary, { encoding: 'utf8' }).stdout));

let full;
if (!quick) {
  full = [0, 1].map((seed) => ({
    seed,
    engine: node(10, {}, ['--seed', String(seed), '--rss-per-epoch']),
    libtorch: node(10, { LENET5_ENGINE: 'libtorch' }, ['--seed', String(seed)]),
    python: seedLoop(10, bestThreads, tuneEnv, ['--seed', String(seed)]),
  }));
}

const cpu = cpuModel();
// The measured FP32 peak (best of the runs): one core, and every core at once.
const peak = {
  core: Math.max(...layerRuns.map((r) => r.peak.coreGflops)),
  all: Math.max(...layerRuns.map((r) => r.peak.allCoresGflops)),
};
const fmt = (x, digits = 0) => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ratioCell = (values) => {
  const s = spread(values);
  return `${s.median.toFixed(2)}x (${s.min.toFixed(2)}-${s.max.toFixed(2)})`;
};
const roundsCell = (values, digits = 0) => values.map((v) => fmt(v, digits)).join(' · ');
const engineTrain = median(perRound('engine', 'trainImagesPerSecond'));
const gflops = (engineTrain * TRAIN_FLOP_PER_IMAGE) / 1e9;
const first = samples.engine[0];
const lines = [
  '# Benchmarks',
  '',
  `Latest ${quick ? 'quick' : 'full'} run of \`npm run bench${quick ? ' -- --quick' : ''}\`, ${new Date().toISOString().slice(0, 10)}.`,
  '',
  `Machine: ${cpu.model} (family ${cpu.family}, model ${cpu.modelNumber}), ${cpu.cores} cores (/proc/cpuinfo: ${cpu.mhz} MHz), ${(totalmem() / 2 ** 30).toFixed(0)} GiB; Node ${process.version}; ` +
    `LibTorch ${first.libtorch} (this package) and PyTorch ${samples['py-default'][0].torch} (the Python loop; the same LibTorch build); ` +
    `engine kernels: ${first.engineKernels}.`,
  `Data: Fashion-MNIST, 54,000 training / 6,000 validation images, batch 64, Adam lr 0.001. ${rounds} interleaved rounds of one epoch each${quick ? ` (first ${maxBatches} batches)` : ''}.`,
  `py-default: the seed's loop with TensorDataset + DataLoader(batch_size=64, shuffle=True), PyTorch's default threads (${samples['py-default'][0].threads}). ` +
    `py-best: the same loop, torch.set_num_threads(${bestThreads}) (best of ${tuning.map((t) => `${t.threads}: ${Math.round(t.ips)}`).join(', ')} images/s), OPENBLAS_NUM_THREADS=1.`,
  `engine: this package's fused CPU engine, ${first.threads} threads; engine-1t: LENET5_THREADS=1; libtorch: LENET5_ENGINE=libtorch (LibTorch's operators), ${first.threads} threads.`,
  '',
  '## Training, one epoch',
  '',
  '| run | images/s, every round | median | user CPU s per 1,000 images (median) |',
  '|---|---|---|---|',
  ...Object.keys(contenders).map(
    (name) =>
      `| ${name} | ${roundsCell(perRound(name, 'trainImagesPerSecond'))} | ${fmt(median(perRound(name, 'trainImagesPerSecond')))} | ${median(perRound(name, 'trainUserCpuPer1000')).toFixed(3)} |`,
  ),
  '',
  '| ratio, same round | median (min-max) | every round |',
  '|---|---|---|',
  ...[
    ['engine', 'py-best'],
    ['engine', 'py-default'],
    ['engine', 'libtorch'],
    ['engine', 'engine-1t'],
    ['libtorch', 'py-best'],
  ].map(([a, b]) => `| ${a} / ${b} | ${ratioCell(ratios(a, b))} | ${roundsCell(ratios(a, b), 2)} |`),
  '',
  `Achieved: ${gflops.toFixed(1)} GFLOP/s in training (${fmt(TRAIN_FLOP_PER_IMAGE)} FLOP of the dense network's matrix products per image × ${fmt(engineTrain)} images/s; ` +
    "the engine's convolution backward passes skip the zeros max pooling leaves, so this is the dense equivalent), " +
    `**${((gflops / peak.all) * 100).toFixed(1)}% of this CPU's measured FP32 peak** of ${peak.all.toFixed(0)} GFLOP/s on all ${cpu.cores} cores ` +
    `(${peak.core.toFixed(0)} on one; ${first.engineKernels} multiply-adds on 12 independent vectors, scripts/bench/engine_layers.cc). ` +
    `Every round: ${roundsCell(
      perRound('engine', 'trainImagesPerSecond').map((ips) => (100 * ips * TRAIN_FLOP_PER_IMAGE) / 1e9 / peak.all),
      1,
    )} %.`,
  '',
  '## Evaluation and prediction',
  '',
  '| measure | engine | libtorch | py-default | py-best | engine / py-default | engine / py-best |',
  '|---|---|---|---|---|---|---|',
  `| evaluation images/s (10k test images, batch 1000) | ${fmt(median(perRound('engine', 'evalImagesPerSecond')))} | ${fmt(median(perRound('libtorch', 'evalImagesPerSecond')))} | ` +
    `${fmt(median(perRound('py-default', 'evalImagesPerSecond')))} | ${fmt(median(perRound('py-best', 'evalImagesPerSecond')))} | ` +
    `${ratioCell(ratios('engine', 'py-default', 'evalImagesPerSecond'))} | ${ratioCell(ratios('engine', 'py-best', 'evalImagesPerSecond'))} |`,
  `| single-image predict from JS, warm, p50 / p99 (ms) | ${median(perRound('engine', 'predictP50Ms')).toFixed(3)} / ${median(perRound('engine', 'predictP99Ms')).toFixed(3)} | ` +
    `${median(perRound('libtorch', 'predictP50Ms')).toFixed(3)} / ${median(perRound('libtorch', 'predictP99Ms')).toFixed(3)} | | | | |`,
  `| peak RSS of the Node process, 1 epoch (MB) | ${fmt(median(perRound('engine', 'maxRssMb')))} | ${fmt(median(perRound('libtorch', 'maxRssMb')))} | | | | |`,
  '',
  "## Where the engine's time goes",
  '',
  `Each layer's kernels alone on one core (scripts/bench/engine_layers.cc, ${layerRuns[0].isa}, a block of ${layerRuns[0].images} images, best of 3 runs). ` +
    "FLOPs count the dense layer's multiply-adds twice (the two sparse backward rows execute fewer: only the pooling winners' gradients); " +
    'bytes are what each kernel must read and write at least once.',
  '',
  "| layer | FLOP / image | bytes / image | µs / image | GFLOP/s | % of one core's peak | FLOP / byte | share of time |",
  '|---|---|---|---|---|---|---|---|',
];
const layers = layerRuns[0].layers.map((layer, i) => ({
  ...layer,
  microsecondsPerImage: Math.min(...layerRuns.map((r) => r.layers[i].microsecondsPerImage)),
}));
const layerTotal = layers.reduce((sum, l) => sum + l.microsecondsPerImage, 0);
for (const l of layers) {
  lines.push(
    `| ${l.layer} | ${fmt(l.flopPerImage)} | ${fmt(l.bytesPerImage)} | ${l.microsecondsPerImage.toFixed(2)} | ${(l.flopPerImage / l.microsecondsPerImage / 1e3).toFixed(1)} | ` +
      `${((100 * l.flopPerImage) / l.microsecondsPerImage / 1e3 / peak.core).toFixed(0)}% | ` +
      `${(l.flopPerImage / l.bytesPerImage).toFixed(1)} | ${((100 * l.microsecondsPerImage) / layerTotal).toFixed(0)}% |`,
  );
}
const blockMicroseconds = Math.min(...layerRuns.map((r) => r.trainingBlock.microsecondsPerImage));
lines.push(
  '',
  `Sum: ${layerTotal.toFixed(1)} µs per image on one core = ${fmt(1e6 / layerTotal)} images/s per core before threading, ` +
    `the Adam update and data gathering; one core's measured FP32 peak is ${peak.core.toFixed(0)} GFLOP/s. ` +
    `The whole training pass of a block (the engine's trainImages on uint8 images gathered in a shuffled order, weight packing included): ` +
    `${blockMicroseconds.toFixed(1)} µs per image = ${fmt(1e6 / blockMicroseconds)} images/s per core, ` +
    `${((100 * TRAIN_FLOP_PER_IMAGE) / blockMicroseconds / 1e3 / peak.core).toFixed(0)}% of one core's peak.`,
);
// Inference beside ONNX Runtime, every round (each round one process, the calls alternating).
const inferenceRatio = (pick) => inferenceRuns.map(pick);
lines.push(
  '',
  '## Inference beside ONNX Runtime',
  '',
  `predict() and evaluate() against onnxruntime-node ${inferenceRuns[0].ortVersion} running the file \`lenet5 export --format onnx\` writes, ` +
    `both on ${inferenceRuns[0].threads} threads, Fashion-MNIST test images, calls alternating (scripts/bench/inference.mjs). ` +
    'ONNX Runtime is given images already normalised to float32 (not timed); predict() is timed from the same float32 array and from raw uint8 pixels. ' +
    'Ratios are speed, this package over ONNX Runtime (above 1: faster), per round.',
  '',
  '| batch | predict p50, float32 / uint8 (ms) | ONNX Runtime p50 (ms) | predict / ORT, float32 input | predict / ORT, uint8 input | evaluate images/s | ORT images/s | evaluate / ORT |',
  '|---|---|---|---|---|---|---|---|',
);
for (const batch of ['1', '64', '1000']) {
  const p = (name) => median(inferenceRuns.map((r) => r.predict[batch][name]));
  const e = (name) => median(inferenceRuns.map((r) => r.evaluate[batch][name]));
  lines.push(
    `| ${batch} | ${p('float32').toFixed(3)} / ${p('uint8').toFixed(3)} | ${p('ort').toFixed(3)} | ` +
      `${ratioCell(inferenceRatio((r) => r.predict[batch].ort / r.predict[batch].float32))} | ` +
      `${ratioCell(inferenceRatio((r) => r.predict[batch].ort / r.predict[batch].uint8))} | ` +
      `${fmt(e('engine'))} | ${fmt(e('ort'))} | ${ratioCell(inferenceRatio((r) => r.evaluate[batch].engine / r.evaluate[batch].ort))} |`,
  );
}
lines.push(
  '',
  `Forward pass at batch 1000 from float32: ${fmt((1000 * 2 * FORWARD_MAC) / median(inferenceRuns.map((r) => r.predict['1000'].float32)) / 1e6, 1)} GFLOP/s, ` +
    `${((100 * (1000 * 2 * FORWARD_MAC)) / median(inferenceRuns.map((r) => r.predict['1000'].float32)) / 1e6 / peak.all).toFixed(1)}% of the measured all-core peak.`,
);
// The int8 model beside the float one: every block of every round is a ratio (the calls alternate within a block).
const int8Ratios = (batch) => inferenceRuns.flatMap((r) => r.int8Blocks[batch].float32.map((f, i) => f / r.int8Blocks[batch].int8[i]));
const int8Cpu = (batch, name) => median(inferenceRuns.flatMap((r) => r.int8Blocks[batch].cpuMsPerImage[name])) * 1000;
lines.push(
  '',
  `int8 predict() (\`model.quantize()\`, ${inferenceRuns[0].int8Kernels} kernels) beside the float predict(), both from the same float32 input, ` +
    "in the same alternating blocks. Speed is float time over int8 time per block (above 1: int8 faster); CPU is the process's user + system time per image.",
  '',
  '| batch | float p50 (ms) | int8 p50 (ms) | int8 speed over float, per block | CPU µs per image, float / int8 | blocks |',
  '|---|---|---|---|---|---|',
);
for (const batch of ['1', '64', '1000']) {
  const p = (name) => median(inferenceRuns.map((r) => r.predict[batch][name]));
  lines.push(
    `| ${batch} | ${p('float32').toFixed(3)} | ${p('int8').toFixed(3)} | ${ratioCell(int8Ratios(batch))} | ` +
      `${int8Cpu(batch, 'float32').toFixed(1)} / ${int8Cpu(batch, 'int8').toFixed(1)} | ${roundsCell(int8Ratios(batch), 2)} |`,
  );
}
if (full) {
  lines.push(
    '',
    '## 10 epochs',
    '',
    '| seed | run | test accuracy | last validation accuracy | training images/s | peak RSS (MB) |',
    '|---|---|---|---|---|---|',
  );
  for (const f of full) {
    for (const name of ['engine', 'libtorch', 'python']) {
      const r = f[name];
      lines.push(
        `| ${f.seed} | ${name === 'python' ? 'py-best' : name} | ${(r.testAccuracy * 100).toFixed(2)}% | ${(r.epochs.at(-1).valAccuracy * 100).toFixed(2)}% | ` +
          `${fmt(r.trainImagesPerSecond)} | ${r.maxRssMb ? fmt(r.maxRssMb) : ''} |`,
      );
    }
  }
  lines.push('', `Engine RSS after each epoch (MB, seed 0): ${full[0].engine.rssPerEpochMb.map(Math.round).join(', ')}.`);
}
// The HTTP load test (npm run bench:serve) keeps its own section.
const serveSection = readSection(args.out, 'serve');
if (serveSection) lines.push('', serveSection);
lines.push(
  '',
  'Raw samples:',
  '',
  '```json',
  JSON.stringify({ tuning, samples, layerRuns, inferenceRuns }, null, 1).slice(0, 30000),
  '```',
  '',
);
writeFileSync(args.out, lines.join('\n'));
console.log(lines.slice(0, lines.indexOf('Raw samples:')).join('\n'));
