/** Devices and threads: what LibTorch can run on here, and how many CPU threads it uses. */
import { callNative } from './errors.js';
import { native } from './native.js';
import { invalidArgument, threadCount, checkSeed } from './validate.js';

export type DeviceName = 'cpu' | 'cuda' | `cuda:${number}` | 'auto';

/** Checks the syntax of a device name; whether it exists is the addon's to say. */
export function parseDevice(name: string, value: unknown): DeviceName {
  if (typeof value === 'string' && (value === 'cpu' || value === 'cuda' || value === 'auto' || /^cuda:(0|[1-9]\d{0,3})$/.test(value))) {
    return value as DeviceName;
  }
  throw invalidArgument(name, "one of 'cpu', 'cuda', 'cuda:N', 'auto'", value);
}

export const cuda = {
  /** True when this LibTorch has CUDA and a GPU is visible. */
  isAvailable(): boolean {
    return native().cudaIsAvailable();
  },
  deviceCount(): number {
    return native().cudaDeviceCount();
  },
  /** Seeds every GPU's random generator (no-op without CUDA). */
  manualSeed(seed: number): void {
    callNative(() => native().cudaManualSeed(checkSeed('seed', seed)));
  },
};

export const threads = {
  /** LibTorch's intra-op thread count (process-wide). */
  get(): number {
    return native().getNumThreads();
  },
  /** From 1 to 1024 (MAX_THREADS). */
  set(count: number): void {
    native().setNumThreads(threadCount('threads', count));
  },
};
