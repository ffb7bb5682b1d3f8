// The CLI tests run the compiled command (dist/cli/main.js), as users do: compile it first so
// the tests never exercise stale output. The run's caches (decoded image folders; a test that
// fetches LibTorch sets its own) go to a temporary folder, never into the user's.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export default function setup(): () => void {
  const root = resolve(import.meta.dirname, '..');
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], {
    stdio: 'inherit',
  });
  const cache = mkdtempSync(join(tmpdir(), 'lenet5-test-cache-'));
  process.env.LENET5_CACHE_DIR = cache;
  return () => rmSync(cache, { recursive: true, force: true });
}
