/**
 * Atomic file replacement: write a temporary file in the same folder, flush it to disk, rename it
 * over the target, then flush the folder. A crash at any point leaves either the old file or the
 * new one at the target, never a mix; a failed write leaves the old file untouched.
 */
import { randomBytes } from 'node:crypto';
import { lstat, open, readdir, readlink, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Lenet5Error } from './errors.js';

/** `.NAME.PID.RANDOM.tmp`: the writer's process id tells a later write whether the file is abandoned. */
const TEMPORARY = /^\.(.+)\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/**
 * Where the bytes go: a symbolic link is written through (its target is replaced and the link
 * stays); a device, FIFO or folder is refused rather than replaced by a regular file.
 */
async function regularTarget(path: string): Promise<string> {
  let target = path;
  for (let hops = 0; (await lstat(target).catch(() => undefined))?.isSymbolicLink(); hops++) {
    if (hops === 40) throw new Error('too many levels of symbolic links');
    target = resolve(dirname(target), await readlink(target));
  }
  const existing = await stat(target).catch(() => undefined);
  if (existing && !existing.isFile()) {
    throw new Error(`${target === path ? 'it' : `its target ${target}`} is not a regular file (a device, FIFO or folder)`);
  }
  return target;
}

/** Removes temporary files a killed writer left beside `path` (their process is gone). */
async function removeAbandoned(path: string): Promise<void> {
  for (const name of await readdir(dirname(path)).catch(() => [])) {
    const match = TEMPORARY.exec(name);
    if (match?.[1] !== basename(path) || isRunning(Number(match[2]))) continue;
    await rm(join(dirname(path), name), { force: true }).catch(() => undefined);
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  let target = path;
  let temporary: string | undefined;
  try {
    target = await regularTarget(path);
    temporary = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    const handle = await open(temporary, 'wx', 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, target);
  } catch (error) {
    if (temporary) await rm(temporary, { force: true }).catch(() => undefined);
    throw new Lenet5Error('ERR_LENET5_IO', `Could not write ${path}: ${(error as Error).message}. Any existing file there is unchanged.`, {
      cause: error,
    });
  }
  await removeAbandoned(target);
  try {
    const folder = await open(dirname(target), 'r');
    try {
      await folder.sync();
    } finally {
      await folder.close();
    }
  } catch {
    // Some filesystems cannot fsync a directory; the rename itself is still atomic.
  }
}
