// Runs first in every test worker of vitest.arm64.config.ts: the suite proves nothing about arm64
// unless the worker really is the arm64 Node.
import { dirname } from 'node:path';

if (process.arch !== 'arm64') throw new Error(`vitest.arm64.config.ts: this test worker runs on ${process.arch}, not arm64`);

// What the tests start by name runs as on an arm64 machine: `node` (so npm and the package's install
// script) is this arm64 Node, and addon builds use the aarch64 compiler, Debian's cross compiler
// standing in for an arm64 machine's own (compiling under emulation would take hours). With
// ARM64_COMPILER=none, as on an arm64 machine without a compiler, CC and CXX name none, so that any
// compile fails: what runs is the package's prebuilt addon.
process.env.PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`;
const noCompiler = process.env.ARM64_COMPILER === 'none';
process.env.CC = noCompiler ? 'no-compiler' : 'aarch64-linux-gnu-gcc';
process.env.CXX = noCompiler ? 'no-compiler' : 'aarch64-linux-gnu-g++';
