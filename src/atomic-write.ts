/**
 * Atomic file replacement: write a temporary file in the same folder, flush it to disk, rename it
 * over the target, then flush the folder. A crash at any point leaves either the old file or the
 * new one at the target, never a mix; a failed write leaves the old file untouched.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Lenet5Error } from './errors.js';

export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temporary, 'wx', 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw new Lenet5Error('ERR_LENET5_IO', `Could not write ${path}: ${(error as Error).message}. Any existing file there is unchanged.`, {
      cause: error,
    });
  }
  try {
    const folder = await open(dirname(path), 'r');
    try {
      await folder.sync();
    } finally {
      await folder.close();
    }
  } catch {
    // Some filesystems cannot fsync a directory; the rename itself is still atomic.
  }
}
