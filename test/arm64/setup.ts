// Runs first in every test worker of vitest.arm64.config.ts: the suite proves nothing about arm64
// unless the worker really is the arm64 Node.
if (process.arch !== 'arm64') throw new Error(`vitest.arm64.config.ts: this test worker runs on ${process.arch}, not arm64`);
