/** Checks on the files a command will write, made before any work is done. */
import { constants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Lenet5Error } from '../errors.js';
import { UsageError } from './output.js';

/** Refuses an output that is an input: the same path, or the same file through a link. */
export async function refuseOverwrite(flag: string, output: string, input: string, what: string): Promise<void> {
  const [out, into] = await Promise.all([stat(output).catch(() => undefined), stat(input).catch(() => undefined)]);
  if (resolve(output) === resolve(input) || (out && into && out.dev === into.dev && out.ino === into.ino)) {
    throw new UsageError(`${flag} ${output} is the input ${what} ${input}: writing there would destroy it. Pass another ${flag}.`);
  }
}

/**
 * Fails at once, not after minutes of training, when an output cannot be written: a file needs an
 * existing folder it can write in; a folder (--report) is created now.
 */
export async function checkWritable(flag: string, path: string, kind: 'file' | 'folder'): Promise<void> {
  try {
    if (kind === 'folder') {
      await mkdir(path, { recursive: true });
      await access(path, constants.W_OK);
    } else {
      await access(dirname(resolve(path)), constants.W_OK);
      if ((await stat(path).catch(() => undefined))?.isDirectory()) throw new Error('it is a folder');
    }
  } catch (error) {
    throw new Lenet5Error(
      'ERR_LENET5_IO',
      `Cannot write ${flag} ${path}: ${(error as Error).message}. Pass a path whose folder exists and can be written.`,
      { cause: error },
    );
  }
}
