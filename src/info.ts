/** What this installation runs on: versions, CUDA, threads. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { native, packageRoot } from './native.js';

export interface Info {
  package: string;
  version: string;
  node: string;
  libtorch: string;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  threads: number;
  parallel: string;
}

export function info(): Info {
  const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { name: string; version: string };
  const addon = native();
  return {
    package: pkg.name,
    version: pkg.version,
    node: process.version,
    libtorch: addon.torchVersion(),
    cudaAvailable: addon.cudaIsAvailable(),
    cudaDeviceCount: addon.cudaDeviceCount(),
    threads: addon.getNumThreads(),
    parallel: addon.parallelInfo(),
  };
}
