/** What this installation runs on: versions, CUDA, threads. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addonPath, native, packageRoot } from './native.js';

export interface Info {
  package: string;
  version: string;
  node: string;
  libtorch: string;
  /** Where the build found LibTorch: 'pypi' (fetched into the user cache), 'python (PATH)', 'system', 'LIBTORCH', or 'unknown' for an addon built by hand. */
  libtorchSource: string;
  /** The LibTorch libraries the addon loads. */
  libtorchDir: string | null;
  /** The addon file. */
  addon: string;
  /** Whether LibTorch's CUDA kernels are loaded: 'loaded', 'not built', 'no driver', 'disabled' (LENET5_CUDA=0), 'failed: ...'. */
  cudaSupport: string;
  /** CUDA runtime version of those kernels ('13.0'), or null when they are not loaded. */
  cudaRuntime: string | null;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  threads: number;
  /** The fused CPU engine's kernels on this CPU: 'avx512', 'avx2' or 'baseline'; 'neon' on arm64 (LENET5_ISA picks another). */
  engineKernels: string;
  /** The int8 pass's kernels (QuantizedLeNet5): 'avx512vnni', 'avx2', 'neondot' (arm64 with the dot product), 'neon' (other arm64) or 'baseline' (LENET5_ISA=avx2|neon|baseline picks another). */
  int8Kernels: string;
  parallel: string;
}

/** What scripts/build-addon.mjs recorded beside the addon; absent for an addon built another way. */
function buildRecord(addonFile: string): { source: string; libtorch: { libDir: string } } | undefined {
  try {
    return JSON.parse(readFileSync(addonFile.replace(/\.node$/, '.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

export function info(): Info {
  const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { name: string; version: string };
  const addon = native();
  const addonFile = addonPath() ?? '';
  const record = buildRecord(addonFile);
  const cuda = addon.cudaSupport();
  return {
    package: pkg.name,
    version: pkg.version,
    node: process.version,
    libtorch: addon.torchVersion(),
    libtorchSource: record?.source ?? 'unknown (not built by npm install or lenet5 build)',
    libtorchDir: record?.libtorch.libDir ?? null,
    addon: addonFile,
    cudaSupport: cuda.status,
    cudaRuntime: cuda.runtime || null,
    cudaAvailable: addon.cudaIsAvailable(),
    cudaDeviceCount: addon.cudaDeviceCount(),
    threads: addon.getNumThreads(),
    engineKernels: addon.engineKernels(),
    int8Kernels: addon.int8Kernels().selected,
    parallel: addon.parallelInfo(),
  };
}
