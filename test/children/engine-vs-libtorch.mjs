// Compares the fused engine's loss and gradients with LibTorch autograd's for one random batch
// and prints one JSON line. Run with LENET5_ISA set to check one instruction set's kernels (the
// kernel table is chosen once per process).
import { LeNet5, info } from '../../dist/index.js';

const count = Number(process.argv[2] ?? 64);
let state = 12345;
const random = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 4294967296;
const pixels = new Float32Array(count * 784).map(() => random() * 4 - 2);
const labels = Array.from({ length: count }, () => Math.floor(random() * 10));
const fused = new LeNet5({ seed: 5, engine: 'fused' });
const reference = new LeNet5({ seed: 5, engine: 'libtorch' });
const a = fused.lossAndGradients(pixels, labels);
const b = reference.lossAndGradients(pixels, labels);
let worst = 0;
for (const [name, expected] of Object.entries(b.gradients)) {
  const actual = a.gradients[name];
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / (1e-6 + 1e-5 * Math.abs(expected[i])));
  }
}
console.log(JSON.stringify({ kernels: info().engineKernels, lossFused: a.loss, lossLibtorch: b.loss, worst }));
