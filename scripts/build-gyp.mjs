#!/usr/bin/env node
// npm run build:gyp — builds the addon with node-gyp from binding.gyp into build/Release, next
// to cmake-js's build/cmake; the install's fallback where cmake is missing (scripts/build-addon.mjs).
// Offline: node-gyp is pointed at the headers of the running Node (it would otherwise download them). `--system-libtorch` builds against the system LibTorch
// (Debian's 1.13), as CI does to keep the oldest supported LibTorch building.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeGypScript } from './find-libtorch.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const env = { ...process.env };
if (process.argv.includes('--system-libtorch')) {
  env.LENET5_LIBTORCH = 'system';
  delete env.LIBTORCH;
}
const nodeDir = resolve(process.execPath, '../..');
const args = ['configure', 'build', '--jobs', 'max'];
if (existsSync(join(nodeDir, 'include/node/node_api.h'))) args.push(`--nodedir=${nodeDir}`);
const nodeGyp = nodeGypScript();
if (!nodeGyp) {
  console.error('node-gyp is not installed: run this inside an npm script (npm brings its own) or after npm install in a clone.');
  process.exit(1);
}
spawnSync(process.execPath, [join(root, 'scripts/find-libtorch.mjs'), '--describe'], { stdio: 'inherit', env });
const result = spawnSync(process.execPath, [nodeGyp, ...args], { cwd: root, stdio: 'inherit', env });
process.exit(result.status ?? 1);
