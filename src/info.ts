/** What this installation runs on: versions, CUDA, threads. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { native, packageRoot } from './native.js';

export interface Info {
  package: string;
  version: string;
  node: string;
  libtorch: string;
  /** Whether LibTorch's CUDA kernels are loaded: 'loaded', 'not built', 'no driver', 'disabled' (LENET5_CUDA=0), 'failed: ...'. */
  cudaSupport: string;
  /** CUDA runtime version of those kernels ('13.0'), or null when they are not loaded. */
  cudaRuntime: string | null;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  threads: number;
  /** The fused CPU engine's kernels on this CPU: 'avx512', 'avx2' or 'baseline' (LENET5_ISA picks another). */
  engineKernels: string;
  parallel: string;
}

export function info(): Info {
  const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { name: string; version: string };
  const addon = native();
  const cuda = addon.cudaSupport();
  return {
    package: pkg.name,
    version: pkg.version,
    node: process.version,
    libtorch: addon.torchVersion(),
    cudaSupport: cuda.status,
    cudaRuntime: cuda.runtime || null,
    cudaAvailable: addon.cudaIsAvailable(),
    cudaDeviceCount: addon.cudaDeviceCount(),
    threads: addon.getNumThreads(),
    engineKernels: addon.engineKernels(),
    parallel: addon.parallelInfo(),
  };
}
