// The fused CPU engine against LibTorch's operators (the reference path, engine 'libtorch'):
// loss, gradients, predictions and optimizer steps, pooling ties, every instruction set's
// kernels, and bit-for-bit reproducibility.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Adam, Dataset, LeNet5, SGD, info, threads, type Optimizer } from '../src/index.js';
import { rng, root, syntheticImages, tempDir } from './helpers.js';

// 1e-5 relative, 1e-6 absolute (the bound).
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const bound = 1e-6 + 1e-5 * Math.abs(expected[i]!);
    if (!(Math.abs(actual[i]! - expected[i]!) <= bound)) {
      expect.fail(`${what}[${i}]: ${actual[i]} differs from LibTorch's ${expected[i]} by more than ${bound}`);
    }
  }
}

function twins(seed: number, numClasses = 10): [LeNet5, LeNet5] {
  return [new LeNet5({ seed, numClasses, engine: 'fused' }), new LeNet5({ seed, numClasses, engine: 'libtorch' })];
}

// Normalised inputs in [-2, 2], with one image bright at its borders (conv1's zero padding
// matters there) and one constant image.
function batch(count: number, classes: number, seed: number): { pixels: Float32Array; labels: number[] } {
  const random = rng(seed);
  const pixels = new Float32Array(count * 784).map(() => random() * 4 - 2);
  if (count > 2) {
    for (let p = 0; p < 784; p++) {
      const row = Math.floor(p / 28),
        column = p % 28;
      pixels[784 + p] = row < 2 || row > 25 || column < 2 || column > 25 ? 2 : -1;
      pixels[2 * 784 + p] = 0.75;
    }
  }
  return { pixels, labels: Array.from({ length: count }, () => Math.floor(random() * classes)) };
}

// The engine's kernel tables this CPU runs, from /proc/cpuinfo (under qemu-user it is the host's, so
// arm64 is decided by the architecture alone: one table, the portable kernels on NEON), and the one
// the engine picks: the widest, but AVX2 on AMD's family 25 with AVX-512 (Zen 4), which splits
// 512-bit operations in two.
function cpuTables(): { all: string[]; supported: string[]; best: string } {
  if (process.arch === 'arm64') return { all: ['neon'], supported: ['neon'], best: 'neon' };
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const flags = new Set(/^flags\s*:(.*)$/m.exec(cpuinfo)?.[1]?.trim().split(/\s+/));
  const has = (...names: string[]) => names.every((name) => flags.has(name));
  const zen4 = /^vendor_id\s*:\s*AuthenticAMD$/m.test(cpuinfo) && /^cpu family\s*:\s*25$/m.test(cpuinfo);
  const supported = [
    ...(has('avx512f', 'avx512vl', 'avx512bw', 'avx512dq') ? ['avx512'] : []),
    ...(has('avx2', 'fma') ? ['avx2'] : []),
    'baseline',
  ];
  return { all: ['avx512', 'avx2', 'baseline'], supported, best: supported[0] === 'avx512' && zen4 ? 'avx2' : supported[0]! };
}

describe('fused engine', () => {
  for (const count of [1, 7, 64, 1000]) {
    it(`matches LibTorch's loss, gradients and logits for a batch of ${count}`, async () => {
      const [fused, reference] = twins(count);
      const { pixels, labels } = batch(count, 10, count);
      const a = fused.lossAndGradients(pixels, labels);
      const b = reference.lossAndGradients(pixels, labels);
      expectClose([a.loss], [b.loss], 'loss');
      for (const { name } of reference.parameters()) expectClose(a.gradients[name]!, b.gradients[name]!, `d loss / d ${name}`);
      const pa = await fused.predict(pixels),
        pb = await reference.predict(pixels);
      expect(pa.classes).toEqual(pb.classes);
      for (let i = 0; i < count; i++) expectClose(pa.logits[i]!, pb.logits[i]!, `logits[${i}]`);
    });
  }

  it('routes pooling gradients to the first of tied maxima, as PyTorch does', () => {
    // conv1 reads only its centre tap and the input is constant over each 2x2 pooling window, so
    // all four positions of every pool1 window tie; their neighbourhoods differ, so conv1's other
    // taps' gradients depend on which position receives the gradient.
    const [fused, reference] = twins(3);
    const values = reference.parameterValues();
    const conv1 = values[0]!;
    conv1.fill(0);
    for (let c = 0; c < 6; c++) conv1[c * 25 + 12] = 0.5 + c / 10;
    values[1]!.fill(0.1);
    for (const model of [fused, reference]) model.setParameterValues(values);
    const random = rng(9);
    const count = 5;
    const pixels = new Float32Array(count * 784);
    for (let n = 0; n < count; n++) {
      for (let y = 0; y < 28; y += 2) {
        for (let x = 0; x < 28; x += 2) {
          const value = random() * 2 - 0.5;
          for (const p of [y * 28 + x, y * 28 + x + 1, (y + 1) * 28 + x, (y + 1) * 28 + x + 1]) pixels[n * 784 + p] = value;
        }
      }
    }
    const labels = [0, 1, 2, 3, 4];
    const a = fused.lossAndGradients(pixels, labels).gradients['conv1.weight']!;
    const b = reference.lossAndGradients(pixels, labels).gradients['conv1.weight']!;
    expectClose(a, b, 'd loss / d conv1.weight');
    // The taps left and above of the centre see the window's own value only for the first
    // position: a gradient routed elsewhere would change them.
    expect(Math.abs(b[7]!)).toBeGreaterThan(1e-4);
  });

  // Adam's step is lr * m / (sqrt(v) + eps): with the default eps (1e-8) a gradient of 1e-8 moves
  // a weight by about lr / 2, so rounding differences of 1e-9 in near-zero gradients would be
  // compared, not the update formula. eps = 1e-3 keeps the step well conditioned.
  const optimizers: [string, () => Optimizer][] = [
    ['Adam', () => new Adam({ lr: 0.01, eps: 1e-3 })],
    ['Adam with weight decay and amsgrad', () => new Adam({ lr: 0.01, betas: [0.8, 0.99], eps: 1e-3, weightDecay: 0.01, amsgrad: true })],
    // beta1 <= 0.5 takes lerp_'s other formula
    ['Adam with beta1 0.3', () => new Adam({ lr: 0.01, betas: [0.3, 0.999], eps: 1e-3 })],
    ['SGD', () => new SGD({ lr: 0.05 })],
    ['SGD with Nesterov momentum and weight decay', () => new SGD({ lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.001 })],
    ['SGD with dampened momentum', () => new SGD({ lr: 0.05, momentum: 0.8, dampening: 0.3 })],
  ];
  for (const [name, make] of optimizers) {
    it(`takes the same ${name} steps as LibTorch`, async () => {
      const [fused, reference] = twins(21);
      const { images, labels } = syntheticImages(96, 10, 4);
      const data = Dataset.fromArrays({ images, labels, numClasses: 10 });
      // Two steps (64 + 32 images), so momentum and moment buffers are used after their first step.
      for (const model of [fused, reference]) await model.train(data, { epochs: 1, batchSize: 64, optimizer: make(), seed: 1 });
      const a = fused.parameterValues(),
        b = reference.parameterValues();
      reference.parameters().forEach(({ name: parameter }, i) => expectClose(a[i]!, b[i]!, parameter));
    });
  }

  it('evaluates every batch size alike (the confusion matrix and loss of its own predictions) and every thread count bit for bit', async () => {
    const { images, labels } = syntheticImages(5000, 10, 6);
    const data = Dataset.fromArrays({ images, labels, numClasses: 10 });
    const model = new LeNet5({ seed: 4, engine: 'fused' });
    await model.train(Dataset.fromArrays({ images: images.subarray(0, 640 * 784), labels: labels.subarray(0, 640) }), {
      epochs: 1,
      batchSize: 64,
      seed: 2,
    });
    const { classes, logits } = await model.predict(images);
    const confusion = Array.from({ length: 10 }, () => new Array<number>(10).fill(0));
    let loss = 0;
    labels.forEach((label, n) => {
      const row = Array.from(logits[n]!);
      const top = Math.max(...row);
      loss += top + Math.log(row.reduce((sum, v) => sum + Math.exp(v - top), 0)) - row[label]!;
      confusion[label]![classes[n]!]!++;
    });
    expect(new Set(classes).size, 'a trained model predicts several classes').toBeGreaterThan(2);
    for (const batchSize of [1, 7, 64, 100, 1000, 5000]) {
      const result = await model.evaluate(data, { batchSize });
      expect(result.confusionMatrix, `batch size ${batchSize}`).toEqual(confusion);
      expectClose([result.loss], [loss / labels.length], `loss at batch size ${batchSize}`);
    }
    const before = threads.get();
    try {
      for (const batchSize of [7, 100]) {
        const losses = [];
        for (const count of [1, 2, 3]) {
          threads.set(count);
          losses.push((await model.evaluate(data, { batchSize })).loss);
        }
        expect(new Set(losses).size, `batch size ${batchSize}: the loss on 1, 2 and 3 threads (${losses.join(', ')})`).toBe(1);
      }
    } finally {
      threads.set(before);
    }
  });

  it('gives bit-identical weights for the same seed and thread count', async () => {
    const { images, labels } = syntheticImages(1500, 10, 2);
    const data = Dataset.fromArrays({ images, labels, numClasses: 10 });
    const runs: Float32Array[][] = [];
    for (let run = 0; run < 2; run++) {
      const model = new LeNet5({ seed: 8, engine: 'fused' });
      await model.train(data, { epochs: 1, batchSize: 64, seed: 3 });
      runs.push(model.parameterValues());
    }
    expect(threads.get()).toBeGreaterThan(0);
    runs[0]!.forEach((values, i) => expect(Buffer.from(values.buffer).equals(Buffer.from(runs[1]![i]!.buffer))).toBe(true));
  });

  it('runs the kernel table the engine should pick for this CPU, whichever compiler built the addon (clang too)', () => {
    expect(info().engineKernels).toBe(cpuTables().best);
  });

  it("every instruction set's kernels match LibTorch (each in its own process)", () => {
    const script = join(root, 'test/children/engine-vs-libtorch.mjs');
    // A CPU runs the table asked for if it supports it, else its best (this process's).
    const { all, supported, best } = cpuTables();
    for (const isa of all) {
      const result = JSON.parse(
        execFileSync(process.execPath, [script, '64'], { env: { ...process.env, LENET5_ISA: isa }, encoding: 'utf8' }),
      ) as { kernels: string; lossFused: number; lossLibtorch: number; worst: number };
      expect(result.kernels, `LENET5_ISA=${isa}`).toBe(supported.includes(isa) ? isa : best);
      expect(Math.abs(result.lossFused - result.lossLibtorch)).toBeLessThan(1e-5);
      expect(result.worst).toBeLessThanOrEqual(1);
    }
  });

  // GCC 12's intrinsics headers warn (-Wmaybe-uninitialized) where their helpers are inlined into
  // the kernels, so every build printed 35 warnings; the ISA files silence that at its source.
  it("the kernels agree at every lane width (4, 8 and 16: AVX-512's logic too, on CPUs without it)", () => {
    const binary = join(tempDir(), 'lane_widths');
    const built = spawnSync(
      'c++',
      ['-std=c++17', '-O1', '-ffp-contract=fast', '-Wno-psabi', '-o', binary, join(root, 'test/native/lane_widths.cc')],
      { encoding: 'utf8' },
    );
    expect(built.status, built.stderr).toBe(0);
    const widths = JSON.parse(execFileSync(binary, { encoding: 'utf8', maxBuffer: 1 << 24 })) as Record<
      string,
      { loss: number; gradients: number[]; logits: number[] }
    >;
    for (const lanes of ['4', '16']) {
      expect(widths[lanes]!.loss).toBeCloseTo(widths['8']!.loss, 3);
      expectClose(widths[lanes]!.gradients, widths['8']!.gradients, `${lanes}-lane gradients`);
      expectClose(widths[lanes]!.logits, widths['8']!.logits, `${lanes}-lane logits`);
    }
  }, 180_000);

  it("each instruction-set file compiles with the build's warnings (-Wall -Wextra, -O3) and prints none", () => {
    const engineDir = join(root, 'native/core/engine');
    const sources = readdirSync(engineDir).filter((name) => /^isa_\w+\.cc$/.test(name));
    expect(sources.length).toBeGreaterThanOrEqual(3);
    const flags = ['-std=c++17', '-O3', '-ffp-contract=fast', '-Wall', '-Wextra', '-Wno-unused-parameter', '-c'];
    const result = spawnSync('c++', [...flags, ...sources.map((name) => join(engineDir, name))], { cwd: tempDir(), encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).not.toContain('warning:');
  }, 180_000);
});
