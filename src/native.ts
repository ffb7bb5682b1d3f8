/**
 * Loads the compiled addon. OpenBLAS must be told to stay single-threaded before the library
 * loads: LibTorch already runs its own intra-op threads, and both spawning threads made training
 * slower on the machines we measured (see BENCHMARKS.md).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism, constants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lenet5Error } from './errors.js';
import { MAX_THREADS, threadCount } from './validate.js';

export interface NativeEvalResult {
  loss: number;
  correct: number;
  total: number;
  confusion: number[];
}

export type NativeTrainEvent =
  | { type: 'batch'; epoch: number; batch: number; batches: number; loss: number; imagesPerSecond: number }
  | { type: 'epoch'; epoch: number; trainLoss: number; seconds: number; imagesPerSecond: number; validation?: NativeEvalResult }
  | { type: 'nonFinite'; epoch: number; batch: number };

export interface NativeNormalization {
  mean: number;
  std: number;
}

export interface NativeTrainOptions extends NativeNormalization {
  epochs: number;
  batchSize: number;
  shuffle: boolean;
  seed: number | null;
  initialEpoch: number;
  batchEventInterval: number;
  stopOnNonFiniteLoss: boolean;
  evalBatchSize: number;
}

export interface NativeOptimizerOptions {
  kind: 'adam' | 'sgd';
  lr: number;
  weightDecay: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  amsgrad?: boolean;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
}

/** Optimizer state restored from a checkpoint: flat buffers over all parameters, in order. */
export interface NativeOptimizerState {
  steps: number;
  buffers: Record<string, Float32Array>;
}
/** A plain value the addon pickles like Python: number -> float, bigint -> int, arrays -> list, objects -> dict. */
export type PickleValue = number | bigint | string | boolean | null | PickleValue[] | { [key: string]: PickleValue };

export interface NativeDataset {
  size(): number;
  maxLabel(): number;
  split(firstCount: number, seed: number): [NativeDataset, NativeDataset];
  /** Copies of items [start, start + count): count x 784 pixels and count labels. */
  toArrays(start: number, count: number): { images: Uint8Array; labels: Uint8Array };
}

export interface NativeOptimizer {
  setOptions(options: NativeOptimizerOptions): void;
  steps(): number;
}

export type EngineName = 'fused' | 'libtorch';

export interface NativeModel {
  device(): string;
  engine(): EngineName;
  setEngine(engine: EngineName): void;
  lossAndGradients(pixels: Float32Array, labels: Int32Array, count: number): { loss: number; gradients: Float32Array[] };
  to(device: string): void;
  parameterInfo(): { name: string; shape: number[] }[];
  /** null leaves that parameter as it is. */
  setParameters(values: (Float32Array | null)[]): void;
  parameterValues(): Float32Array[];
  stateDictBytes(): Buffer;
  checkpointBytes(optimizer: NativeOptimizer, epoch: number, loss: number | null, extra: Record<string, PickleValue>): Buffer;
  torchScriptBytes(): Buffer;
  train(
    data: NativeDataset,
    validation: NativeDataset | null,
    optimizer: NativeOptimizer,
    options: NativeTrainOptions,
    onEvent: (event: NativeTrainEvent) => void,
  ): Promise<void>;
  evaluate(data: NativeDataset, options: NativeNormalization & { batchSize: number }): Promise<NativeEvalResult>;
  predict(pixels: Float32Array | Uint8Array, count: number, normalization: NativeNormalization): Promise<NativePrediction>;
  cancel(): void;
  dispose(): void;
}

/** Rows of numClasses values per image; classes[n] is -1 where image n's logits are not finite. */
export interface NativePrediction {
  logits: Float32Array;
  probabilities: Float32Array;
  classes: Int32Array;
}

/** The int8 network's arrays, PyTorch's layouts, in layer order conv1, conv2, fc1, fc2, fc3 (src/quantize/int8.ts). */
export interface NativeQuantizedNetwork {
  numClasses: number;
  /** input, relu1..relu4; float32 values. */
  activationScales: Float32Array;
  weights: Int8Array[];
  weightScales: Float32Array[];
  biases: Int32Array[];
}

/** The int8 forward pass (native/core/engine/int8.h): logits equal to int8Logits's, bit for bit. */
export interface NativeQuantizedModel {
  /** The kernel table it runs: 'avx512vnni', 'avx2', 'neondot', 'neon' or 'baseline'. */
  readonly kernels: string;
  /** predict() of normalised images, or of raw pixels through pixelLevels (each pixel value's int8 input): count x numClasses logits, their softmax, and each row's class. */
  predict(images: Float32Array, count: number): Promise<NativePrediction>;
  predict(images: Uint8Array, count: number, pixelLevels: Int8Array): Promise<NativePrediction>;
}

export interface NativeAddon {
  NativeDataset: new (images: Uint8Array, labels: Uint8Array, count: number) => NativeDataset;
  NativeOptimizer: new (options: NativeOptimizerOptions, state: NativeOptimizerState | null) => NativeOptimizer;
  NativeModel: new (numClasses: number, device: string, seed: number | null) => NativeModel;
  /** kernels: a name from int8Kernels(), or '' for the best (LENET5_ISA may pick one). */
  NativeQuantizedModel: new (network: NativeQuantizedNetwork, kernels: string) => NativeQuantizedModel;
  /** The int8 kernel table a QuantizedLeNet5 runs, and every one this CPU runs (best first). */
  int8Kernels(): { selected: string; available: string[] };
  cudaIsAvailable(): boolean;
  cudaSupport(): { status: string; runtime: string };
  cudaDeviceCount(): number;
  cudaManualSeed(seed: number): void;
  getNumThreads(): number;
  setNumThreads(threads: number): void;
  torchVersion(): string;
  parallelInfo(): string;
  engineKernels(): string;
  /** Native models not yet freed in this process (disposed or collected ones whose jobs ended are gone). */
  liveModels(): number;
  stopJobs(): void;
}

export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

const candidates = [join(packageRoot, 'build/cmake/Release/lenet5_native.node'), join(packageRoot, 'build/Release/lenet5_native.node')];

/** Where the addon was loaded from (set by the first native() call). */
let loadedFrom: string | undefined;

/** LENET5_THREADS, checked before the addon loads; every core when unset. */
function wantedThreads(): number {
  const variable = process.env.LENET5_THREADS;
  if (variable === undefined) return Math.min(availableParallelism(), MAX_THREADS);
  return threadCount('LENET5_THREADS (unset it to use every core)', /^\s*\d+\s*$/.test(variable) ? Number(variable) : variable);
}

function loadAddon(): NativeAddon {
  process.env.OPENBLAS_NUM_THREADS ??= '1';
  const wanted = wantedThreads();
  const path = process.env.LENET5_ADDON ? resolve(process.env.LENET5_ADDON) : candidates.find((candidate) => existsSync(candidate));
  if (!path) {
    throw new Lenet5Error(
      'ERR_LENET5_ADDON_LOAD',
      `The lenet5 native addon has not been built (looked for ${candidates.join(', ')}).\n` +
        'This happens when the package manager skipped install scripts (pnpm 10 does by default; so do --ignore-scripts,\n' +
        'ignore-scripts=true in .npmrc, and npm where its allowScripts setting blocks them), or when the install failed. Possible solutions:\n' +
        '- Build it now: "npx lenet5 build" (fetches LibTorch from PyPI if this machine has none; uses the prebuilt addon where it fits, else compiles with cmake and g++).\n' +
        '- With pnpm, allow the build once: "pnpm approve-builds" (or list lenet5-libtorch in onlyBuiltDependencies), then "pnpm rebuild lenet5-libtorch".\n' +
        '- With npm\'s allowScripts: "npm install-scripts approve lenet5-libtorch", then "npm rebuild lenet5-libtorch".\n' +
        '- In a clone of the repository: "npm install" or "npm run build".',
    );
  }
  const damage = cachedLibtorchDamage(path);
  if (damage) {
    throw new Lenet5Error(
      'ERR_LENET5_ADDON_LOAD',
      `Could not load the lenet5 native addon ${path}: the LibTorch it links, in this package's cache, is damaged: ${damage.problem}\n` +
        '(changed or cut short since it was fetched; loading it would end the process with a Bus error).\n' +
        `Fetch it again: "npx lenet5 build --force" (it checks the cache and fetches what is wrong), or delete ${damage.folder} and run that.`,
    );
  }
  let loaded: NativeAddon;
  try {
    // Every symbol bound now (RTLD_NOW): an addon whose LibTorch lacks one (headers and libraries of
    // different builds) fails here with this message, not with "symbol lookup error" at a later call.
    const module = { exports: {} };
    process.dlopen(module, path, constants.dlopen.RTLD_NOW);
    loaded = module.exports as NativeAddon;
  } catch (error) {
    throw new Lenet5Error(
      'ERR_LENET5_ADDON_LOAD',
      `Could not load the lenet5 native addon ${path}: ${(error as Error).message}\n` +
        'Possible solutions:\n- Rebuild it against the LibTorch you have: "npx lenet5 build --force" (in a clone: "npm run build").\n' +
        '- If LibTorch moved, was upgraded or its cache (~/.cache/lenet5-libtorch) was deleted since the build, rebuild: the addon\n' +
        '  finds LibTorch through the path recorded at build time.\n' +
        '- Run "node scripts/find-libtorch.mjs --describe" in the package folder to see which LibTorch a build would pick.',
      { cause: error },
    );
  }
  // Debian's LibTorch starts with one intra-op thread; use every core unless told otherwise
  // (LENET5_THREADS, or threads.set()). Two threads trained 1.7x faster than one on 2 cores.
  if (wanted !== loaded.getNumThreads()) loaded.setNumThreads(wanted);
  // On process.exit() (or an uncaught exception) stop running loops while LibTorch is still intact.
  process.on('exit', () => loaded.stopJobs());
  loadedFrom = path;
  return loaded;
}

/**
 * When the addon at `path` was built against a LibTorch in this package's cache: a library there whose size is not
 * the one its manifest recorded (a truncated library makes dlopen crash the process with SIGBUS, so this is looked
 * at first). Sizes only, a few stat calls; the install checks the same files' sizes and hashes
 * (scripts/libtorch/cache.mjs, findDamage), which this code cannot import (scripts/ is not compiled into dist/).
 */
function cachedLibtorchDamage(path: string): { folder: string; problem: string } | undefined {
  let folder: string;
  let files: Record<string, { size: number }>;
  try {
    folder = (JSON.parse(readFileSync(join(dirname(path), 'lenet5_native.json'), 'utf8')) as { libtorch: { root: string } }).libtorch.root;
    files = (JSON.parse(readFileSync(join(folder, 'lenet5-libtorch.json'), 'utf8')) as { files: Record<string, { size: number }> }).files;
  } catch {
    return undefined; // no build record, or a LibTorch from elsewhere (Python's, the system's): nothing recorded to check
  }
  for (const [file, { size }] of Object.entries(files)) {
    if (!file.startsWith('lib/')) continue;
    const actual = existsSync(join(folder, file)) ? statSync(join(folder, file)).size : undefined;
    if (actual !== size)
      return { folder, problem: `${join(folder, file)} ${actual === undefined ? 'is missing' : `has ${actual} bytes, ${size} expected`}` };
  }
  return undefined;
}

let addon: NativeAddon | undefined;

/** The addon's file, once native() has loaded it. */
export function addonPath(): string | undefined {
  return loadedFrom;
}

/** The addon, loaded on first use so that pure-TypeScript parts (the .pth reader, IDX files) work without it. */
export function native(): NativeAddon {
  addon ??= loadAddon();
  return addon;
}
