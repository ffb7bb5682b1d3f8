/** Checks on the files a command will write, made before any work is done. */
import { constants } from 'node:fs';
import { access, mkdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Lenet5Error } from '../errors.js';
import { metadataPath } from '../metadata.js';
import { UsageError } from './output.js';

/** A file a command writes. A model file also writes its metadata (.json) beside it. */
export interface Output {
  flag: string;
  path: string;
  kind: 'model' | 'file' | 'folder';
  /** For folders: the names written inside. */
  contents?: readonly string[];
}

/** A file a command reads. A model's metadata (.json beside it) is read too. */
export interface Input {
  what: string;
  path: string;
  model?: boolean;
  /** The flag of an output that may replace this input (--checkpoint the --resume file). */
  replaceableBy?: string;
}

/** The path with links resolved (the folder's, for a file that does not exist yet), so two names of one file compare equal. */
export async function canonicalPath(path: string): Promise<string> {
  const absolute = resolve(path);
  return (
    (await realpath(absolute).catch(() => undefined)) ??
    join(await realpath(dirname(absolute)).catch(() => dirname(absolute)), basename(absolute))
  );
}

async function sameFile(a: string, b: string): Promise<boolean> {
  if ((await canonicalPath(a)) === (await canonicalPath(b))) return true;
  const [x, y] = await Promise.all([stat(a).catch(() => undefined), stat(b).catch(() => undefined)]);
  return x !== undefined && y !== undefined && x.dev === y.dev && x.ino === y.ino; // hard links
}

const MODEL_EXTENSIONS = ['.pth', '.pt', '.ckpt', '.tar'];

/** Another model file whose metadata `metadataFile` is (model.pth for model.json), other than `except`. */
async function modelOwning(metadataFile: string, except: string): Promise<string | undefined> {
  const stem = metadataFile.slice(0, -'.json'.length);
  for (const extension of MODEL_EXTENSIONS) {
    const model = stem + extension;
    if ((await stat(model).catch(() => undefined))?.isFile() && !(await sameFile(model, except))) return model;
  }
  return undefined;
}

/**
 * One rule for every command's outputs, checked before any work: an output is never an input (a
 * model, its metadata, a data file), never a file another output of the same command writes
 * (through links and hard links too), and never the metadata of another model beside it
 * (model.json when model.pth exists: `export --out model.pt` of another model would write it).
 */
export async function refuseClobbering(outputs: Output[], inputs: Input[]): Promise<void> {
  const written = outputs.flatMap((output) => {
    const name = `${output.flag} ${output.path}`;
    if (output.kind === 'model') {
      const metadata = metadataPath(output.path);
      return [
        { output, file: output.path, name },
        { output, file: metadata, name: `${name} (its metadata ${metadata})` },
      ];
    }
    if (output.kind === 'folder') {
      return [output.path, ...(output.contents ?? []).map((file) => join(output.path, file))].map((file) => ({ output, file, name }));
    }
    return [{ output, file: output.path, name }];
  });
  const read = inputs.flatMap((input) =>
    input.model
      ? [
          { input, what: input.what, file: input.path },
          { input, what: `${input.what}'s metadata`, file: metadataPath(input.path) },
        ]
      : [{ input, what: input.what, file: input.path }],
  );
  for (const [i, write] of written.entries()) {
    for (const input of read) {
      if (input.input.replaceableBy !== write.output.flag && (await sameFile(write.file, input.file))) {
        throw new UsageError(
          `${write.name} is the input ${input.what} ${input.file}: writing there would destroy it. Pass another ${write.output.flag}.`,
        );
      }
    }
    for (const other of written.slice(i + 1)) {
      if (other.output !== write.output && (await sameFile(write.file, other.file))) {
        throw new UsageError(
          `${write.name} and ${other.name} are the same file ${write.file}: one would overwrite the other. Pass different paths.`,
        );
      }
    }
    // X.json beside X.pth is that model's metadata: only a new X.pth, replacing it, may replace it.
    const replacedWithItsModel =
      write.output.kind === 'model' && write.file !== write.output.path && (await stat(write.output.path).catch(() => undefined));
    const owner = /\.json$/i.test(write.file) && !replacedWithItsModel ? await modelOwning(write.file, write.output.path) : undefined;
    if (owner) {
      throw new UsageError(
        `${write.name} would replace ${write.file}, the metadata (class names, normalisation) of ${owner}, another model. Pass another ${write.output.flag} name.`,
      );
    }
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
