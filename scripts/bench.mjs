#!/usr/bin/env node
// npm run bench [-- --quick]: this package against the seed's Python loop on the same machine, in
// the same run, interleaved (A B C, A B C, ...), on the same data (Fashion-MNIST, 54k/6k split)
// and hyperparameters (batch 64, Adam lr 0.001). Writes BENCHMARKS.md.
//   (a) this package: training and evaluation images/s, single-image predict latency, peak RSS
//   (b) the seed's loop (scripts/bench/seed_loop.py), PyTorch defaults
//   (c) the same loop tuned: the best torch thread count found, OPENBLAS_NUM_THREADS=1
// Then one 10-epoch run of (a) and (c) each for accuracy (skipped with --quick).
import { spawnSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readSection } from './bench/sections.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({ options: { quick: { type: 'boolean', default: false }, rounds: { type: 'string' }, out: { type: 'string', default: join(root, 'BENCHMARKS.md') } } });
const quick = args.quick;
const rounds = Number(args.rounds ?? (quick ? 1 : 3));
const python = process.env.LENET5_PYTHON ?? join(root, '.venv/bin/python');
const maxBatches = quick ? 200 : 0;
const TRAIN_FLOP_PER_IMAGE = 2.5e6; // forward ~0.83 MFLOP (conv1 0.24, conv2 0.48, fc 0.12), backward ~2x forward

function run(command, commandArgs, env = {}) {
  const result = spawnSync(command, commandArgs, { encoding: 'utf8', env: { ...process.env, PYTHONWARNINGS: 'ignore', ...env }, maxBuffer: 1 << 24 });
  if (result.status !== 0) throw new Error(`${command} ${commandArgs.join(' ')} failed:\n${result.stderr.slice(-2000)}`);
  return JSON.parse(result.stdout.trim().split('\n').pop());
}

const node = (epochs, extra = []) => run(process.execPath, [join(root, 'scripts/bench/node_loop.mjs'), '--epochs', String(epochs), '--max-batches', String(maxBatches), ...extra]);
const seedLoop = (epochs, threads, env) => run(python, [join(root, 'scripts/bench/seed_loop.py'), '--epochs', String(epochs), '--max-batches', String(maxBatches), ...(threads ? ['--threads', String(threads)] : [])], env);
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

function cpuPeak() {
  const info = readFileSync('/proc/cpuinfo', 'utf8');
  const model = info.match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown CPU';
  const mhz = Number(info.match(/cpu MHz\s*:\s*([\d.]+)/)?.[1] ?? 0);
  const flags = info.match(/flags\s*:\s*(.*)/)?.[1].split(' ') ?? [];
  const lanes = flags.includes('avx512f') ? 16 : flags.includes('avx2') ? 8 : 4;
  const fma = flags.includes('fma') || flags.includes('avx512f') ? 2 : 1;
  // cores x clock x SIMD lanes x 2 (FMA = 2 FLOP) x 2 FMA units per core (Skylake-SP and later server cores)
  const perCycle = lanes * fma * 2;
  const cores = cpus().length;
  return { model, mhz, cores, perCycle, gflops: (cores * mhz * 1e6 * perCycle) / 1e9, flags: { avx512f: flags.includes('avx512f'), avx2: flags.includes('avx2') } };
}

// Find the tuned Python setting: the best thread count, OpenBLAS single-threaded.
const cores = cpus().length;
const threadCandidates = [...new Set([1, cores])];
const tuneEnv = { OPENBLAS_NUM_THREADS: '1' };
const tuning = threadCandidates.map((threads) => ({ threads, ips: seedLoop(1, threads, tuneEnv).trainImagesPerSecond }));
const bestThreads = tuning.reduce((a, b) => (b.ips > a.ips ? b : a)).threads;

// The kernels alone (scripts/bench/kernel_floor.py): with glibc's default malloc settings, and with
// the ones this package sets (native/core/allocator.cc) passed as GLIBC_TUNABLES.
const PACKAGE_MALLOC = { GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456' };
const kernelFloor = (env) => run(python, [join(root, 'scripts/bench/kernel_floor.py'), '--threads', String(bestThreads), '--seconds', quick ? '2' : '5'], { ...tuneEnv, ...env });
const floor = { defaultMalloc: kernelFloor({}), packageMalloc: kernelFloor(PACKAGE_MALLOC) };

const samples = { node: [], pyDefault: [], pyTuned: [] };
for (let round = 0; round < rounds; round++) {
  samples.node.push(node(1));
  samples.pyDefault.push(seedLoop(1, 0, {}));
  samples.pyTuned.push(seedLoop(1, bestThreads, tuneEnv));
  process.stderr.write(`round ${round + 1}/${rounds}: node ${Math.round(samples.node.at(-1).trainImagesPerSecond)}, ` +
    `python ${Math.round(samples.pyDefault.at(-1).trainImagesPerSecond)}, tuned ${Math.round(samples.pyTuned.at(-1).trainImagesPerSecond)} images/s\n`);
}
const med = (key, field) => median(samples[key].map((s) => s[field]));
const train = { node: med('node', 'trainImagesPerSecond'), pyDefault: med('pyDefault', 'trainImagesPerSecond'), pyTuned: med('pyTuned', 'trainImagesPerSecond') };
const evaluation = { node: med('node', 'evalImagesPerSecond'), pyDefault: med('pyDefault', 'evalImagesPerSecond'), pyTuned: med('pyTuned', 'evalImagesPerSecond') };
const predict = { p50: med('node', 'predictP50Ms'), p99: med('node', 'predictP99Ms') };

let full;
if (!quick) {
  const nodeFull = node(10, ['--rss-per-epoch']);
  const pyFull = seedLoop(10, bestThreads, tuneEnv);
  full = { node: nodeFull, python: pyFull };
}

const peak = cpuPeak();
const gflops = (train.node * TRAIN_FLOP_PER_IMAGE) / 1e9;
const torchVersion = samples.node[0].libtorch;
const lines = [
  '# Benchmarks',
  '',
  `Latest ${quick ? 'quick' : 'full'} run of \`npm run bench${quick ? ' -- --quick' : ''}\`, ${new Date().toISOString().slice(0, 10)}.`,
  '',
  `Machine: ${peak.model}, ${peak.cores} cores at ${peak.mhz} MHz, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; Node ${process.version}; ` +
    `LibTorch ${torchVersion} (this package) and PyTorch ${samples.pyDefault[0].torch} (the Python loop; the same LibTorch build).`,
  `Data: Fashion-MNIST, 54,000 training / 6,000 validation images, batch 64, Adam lr 0.001. ${rounds} interleaved round(s) of one epoch each${quick ? ` (first ${maxBatches} batches)` : ''}; medians.`,
  `Python default: the seed's loop with TensorDataset + DataLoader(batch_size=64, shuffle=True), PyTorch's default threads (${samples.pyDefault[0].threads}).`,
  `Python tuned: the same loop, torch.set_num_threads(${bestThreads}) (best of ${tuning.map((t) => `${t.threads}: ${Math.round(t.ips)}`).join(', ')} images/s), OPENBLAS_NUM_THREADS=1.`,
  `This package: ${samples.node[0].threads} LibTorch thread(s), OpenBLAS single-threaded.`,
  '',
  '| measure | this package | Python default | Python tuned | vs default | vs tuned |',
  '|---|---|---|---|---|---|',
  `| training images/s | ${Math.round(train.node)} | ${Math.round(train.pyDefault)} | ${Math.round(train.pyTuned)} | ${(train.node / train.pyDefault).toFixed(2)}x | ${(train.node / train.pyTuned).toFixed(2)}x |`,
  `| evaluation images/s (10k test images; Python: DataLoader batch 1000) | ${Math.round(evaluation.node)} | ${Math.round(evaluation.pyDefault)} | ${Math.round(evaluation.pyTuned)} | ${(evaluation.node / evaluation.pyDefault).toFixed(2)}x | ${(evaluation.node / evaluation.pyTuned).toFixed(2)}x |`,
  `| single-image predict latency from JS, warm | p50 ${predict.p50.toFixed(3)} ms, p99 ${predict.p99.toFixed(3)} ms | | | | |`,
  `| peak RSS of the Node process (1 epoch) | ${med('node', 'maxRssMb').toFixed(0)} MB | | | | |`,
  '',
  `Achieved: ${gflops.toFixed(1)} GFLOP/s in training (${TRAIN_FLOP_PER_IMAGE / 1e6} MFLOP per image × ${Math.round(train.node)} images/s), ` +
    `${((gflops / peak.gflops) * 100).toFixed(1)}% of the CPU's FP32 peak of ${peak.gflops.toFixed(0)} GFLOP/s ` +
    `(${peak.cores} cores × ${peak.mhz} MHz × ${peak.perCycle} FLOP/cycle: ${peak.flags.avx512f ? 'AVX-512' : peak.flags.avx2 ? 'AVX2' : 'SSE'} FMA on 2 units; the clock is /proc/cpuinfo's, not the turbo clock).`,
];
const pct = (x) => `${(x * 100).toFixed(0)}%`;
lines.push('', '## Where the time goes', '',
  `The same LibTorch's kernels with nothing around them (scripts/bench/kernel_floor.py: the seed's LeNet5 on random tensors, no DataLoader, ${bestThreads} thread(s)), against the loops above:`, '',
  '| | training step, batch 64 (forward, backward, Adam) | forward pass, batch 1000 |', '|---|---|---|',
  `| LibTorch kernels alone, glibc's default malloc | ${Math.round(floor.defaultMalloc.trainStepImagesPerSecond)} images/s | ${Math.round(floor.defaultMalloc.forwardImagesPerSecond)} images/s |`,
  `| LibTorch kernels alone, this package's malloc settings | ${Math.round(floor.packageMalloc.trainStepImagesPerSecond)} images/s | ${Math.round(floor.packageMalloc.forwardImagesPerSecond)} images/s |`,
  `| this package's loop (data gathering, normalisation, loss checks included) | ${Math.round(train.node)} images/s | ${Math.round(evaluation.node)} images/s |`,
  `| the seed's Python loop, default | ${Math.round(train.pyDefault)} images/s | ${Math.round(evaluation.pyDefault)} images/s |`,
  '',
  `Training at 2x the seed's loop would take ${Math.round(2 * train.pyDefault)} images/s, ${(2 * train.pyDefault / floor.packageMalloc.trainStepImagesPerSecond).toFixed(2)}x what the kernels alone do; ` +
    `evaluation at 3x, ${Math.round(3 * evaluation.pyDefault)} images/s, ${(3 * evaluation.pyDefault / floor.packageMalloc.forwardImagesPerSecond).toFixed(2)}x the kernels' forward pass. ` +
    'Past that point the work is inside LibTorch\'s operators. torch.profiler, training step (self CPU time): ' +
    `${floor.packageMalloc.trainProfile.map((p) => `${p.op} ${pct(p.share)}`).join(', ')}.`);
if (full) {
  const nodeAcc = full.node.testAccuracy;
  const pyAcc = full.python.testAccuracy;
  lines.push('', '## 10 epochs', '',
    '| | test accuracy | last validation accuracy | training images/s | peak RSS |', '|---|---|---|---|---|',
    `| this package | ${(nodeAcc * 100).toFixed(2)}% | ${(full.node.epochs.at(-1).valAccuracy * 100).toFixed(2)}% | ${Math.round(full.node.trainImagesPerSecond)} | ${full.node.maxRssMb.toFixed(0)} MB |`,
    `| Python tuned | ${(pyAcc * 100).toFixed(2)}% | ${(full.python.epochs.at(-1).valAccuracy * 100).toFixed(2)}% | ${Math.round(full.python.trainImagesPerSecond)} | |`,
    '', `Accuracy difference: ${((nodeAcc - pyAcc) * 100).toFixed(2)} points. RSS after each epoch (MB): ${full.node.rssPerEpochMb.map(Math.round).join(', ')}.`);
}
// The HTTP load test (npm run bench:serve) keeps its own section.
const serveSection = readSection(args.out, 'serve');
if (serveSection) lines.push('', serveSection);
lines.push('', 'Raw medians and samples:', '', '```json', JSON.stringify({ train, evaluation, predict, tuning, floor, samples }, null, 1).slice(0, 20000), '```', '');
writeFileSync(args.out, lines.join('\n'));
console.log(lines.slice(0, lines.indexOf('Raw medians and samples:')).join('\n'));
