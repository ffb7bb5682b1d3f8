/** lenet5 build: builds the native addon where the package manager ran no install script (pnpm 10, --ignore-scripts). */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lenet5Error } from '../errors.js';
import { packageRoot } from '../native.js';
import { printJson, say, type CommonOptions } from './output.js';

export function buildCommand(options: CommonOptions & { force?: boolean }): number {
  // The same script as the install hook; its progress goes to stderr, so --json's stdout stays one object.
  const result = spawnSync(process.execPath, [join(packageRoot, 'scripts/build-addon.mjs'), ...(options.force ? ['--force'] : [])], {
    stdio: ['ignore', 2, 2],
  });
  if (result.status !== 0) {
    throw new Lenet5Error('ERR_LENET5_BUILD', 'Building the native addon failed; what went wrong and what to do is printed above.');
  }
  const addon = join(packageRoot, 'build/cmake/Release/lenet5_native.node');
  const record = JSON.parse(readFileSync(addon.replace(/\.node$/, '.json'), 'utf8')) as {
    source: string;
    libtorch: { version: string; libDir: string };
  };
  if (options.json) printJson({ ok: true, command: 'build', addon, libtorch: { source: record.source, ...record.libtorch } });
  else say(options, `Addon ${addon} links LibTorch ${record.libtorch.version} from ${record.source}: ${record.libtorch.libDir}`);
  return 0;
}
