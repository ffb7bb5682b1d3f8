// The test suite on linux-arm64 (npm run check:arm64, scripts/check-arm64.sh): vitest itself, vite
// and esbuild stay on this machine's x86-64 Node, and each test file runs in a worker forked from
// the arm64 Node in LENET5_ARM64_NODE (under qemu-user, registered with binfmt_misc), so the tests,
// the addon and LibTorch run as arm64 code. The addon comes from LENET5_ADDON.
import { ForksPoolWorker, type PoolOptions } from 'vitest/node';
import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

const arm64Node = process.env.LENET5_ARM64_NODE;
if (!arm64Node) throw new Error('LENET5_ARM64_NODE must name the arm64 node binary (scripts/check-arm64.sh sets it).');

class Arm64ForksWorker extends ForksPoolWorker {
  override readonly name = 'arm64-forks';
  override async start(): Promise<void> {
    // ForksPoolWorker forks with child_process.fork, which starts process.execPath; it reads it
    // synchronously, before start() first awaits.
    const own = process.execPath;
    process.execPath = arm64Node!;
    try {
      await super.start();
    } finally {
      process.execPath = own;
    }
  }
}

export default mergeConfig(
  base,
  defineConfig({
    test: {
      pool: { name: 'arm64-forks', createPoolWorker: (options: PoolOptions) => new Arm64ForksWorker(options) },
      setupFiles: ['test/arm64/setup.ts'],
      // Tests with timeouts of their own (test/install.test.ts) stretch them under emulation.
      env: { LENET5_TEST_EMULATED: 'qemu' },
      // Emulated code runs 10-50x slower than native.
      testTimeout: 900_000,
      hookTimeout: 900_000,
    },
  }),
);
