import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Native training and Python interop take seconds, not milliseconds.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Test files each load LibTorch and use both cores; running them one at a time keeps runs predictable.
    fileParallelism: false,
    pool: 'forks',
  },
});
