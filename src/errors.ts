import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/**
 * Every error this package raises is a Lenet5Error with a stable `code` (docs/api.md, "Error codes").
 * Native errors arrive as plain Errors with a code and are rethrown here with the caller's stack.
 */
export type ErrorCode =
  | 'ERR_LENET5_INVALID_ARGUMENT'
  | 'ERR_LENET5_SHAPE'
  | 'ERR_LENET5_BUSY'
  | 'ERR_LENET5_DISPOSED'
  | 'ERR_LENET5_ABORTED'
  | 'ERR_LENET5_CUDA_UNAVAILABLE'
  | 'ERR_LENET5_CUDA_DEVICE'
  | 'ERR_LENET5_OUT_OF_MEMORY'
  | 'ERR_LENET5_NON_FINITE_LOSS'
  | 'ERR_LENET5_NON_FINITE'
  | 'ERR_LENET5_OPTIMIZER_IN_USE'
  | 'ERR_LENET5_TORCH'
  | 'ERR_LENET5_NATIVE'
  | 'ERR_LENET5_ADDON_LOAD'
  | 'ERR_LENET5_BUILD'
  | 'ERR_LENET5_DATA'
  | 'ERR_LENET5_DATA_NOT_FOUND'
  /** A dataset's class names that the model does not have. */
  | 'ERR_LENET5_CLASSES'
  | 'ERR_LENET5_PTH_NOT_FOUND'
  | 'ERR_LENET5_PTH_FORMAT'
  | 'ERR_LENET5_PTH_UNSAFE'
  | 'ERR_LENET5_PTH_LEGACY'
  | 'ERR_LENET5_PTH_TOO_LARGE'
  | 'ERR_LENET5_STATE_DICT'
  /** An int8 model (lenet5 quantize) given to a float loader. */
  | 'ERR_LENET5_INT8_MODEL'
  /** A file that starts like an int8 model but is not a valid one. */
  | 'ERR_LENET5_INT8_FORMAT'
  | 'ERR_LENET5_IO'
  | 'ERR_LENET5_IMAGE'
  | 'ERR_LENET5_BAD_FILES'
  | 'ERR_LENET5_BODY_TOO_LARGE'
  | 'ERR_LENET5_MEDIA_TYPE'
  | 'ERR_LENET5_RATE_LIMITED'
  | 'ERR_LENET5_OVERLOADED'
  | 'ERR_LENET5_NOT_FOUND'
  | 'ERR_LENET5_LISTEN'
  | 'ERR_LENET5_TIMEOUT'
  /** An error that is not a Lenet5Error reached the CLI or the server: a bug. */
  | 'ERR_LENET5_INTERNAL';

export class Lenet5Error extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = code === 'ERR_LENET5_ABORTED' ? 'AbortError' : 'Lenet5Error';
    this.code = code;
  }
}

/**
 * Rethrows an error from the native addon (it always carries an ERR_LENET5_ code) as a Lenet5Error
 * with the given (caller's) stack. Any other error passes through as it is: it is the caller's own,
 * thrown by a callback such as onBatchEnd while the addon ran.
 */
function fromNative(error: unknown, stack?: string): unknown {
  if (!(error instanceof Error) || error instanceof Lenet5Error) return error;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('ERR_LENET5_')) return error;
  const wrapped = new Lenet5Error(code as ErrorCode, error.message);
  if (stack) wrapped.stack = `${wrapped.name}: ${wrapped.message}\n${stack.split('\n').slice(1).join('\n')}`;
  return wrapped;
}

/** Calls into the addon synchronously, converting its errors. */
export function callNative<T>(body: () => T): T {
  try {
    return body();
  } catch (error) {
    throw fromNative(error, new Error().stack);
  }
}

/** Awaits an addon promise; the stack is captured before the call so rejections point at the caller. */
export async function awaitNative<T>(start: () => Promise<T>): Promise<T> {
  // V8 records the frames here but formats .stack only when it is read: on failure.
  const caller = new Error();
  try {
    return await start();
  } catch (error) {
    throw fromNative(error, caller.stack);
  }
}

/** The largest input file read whole (a model, an IDX or CSV file): far above any real one, far below what would exhaust memory. */
export const MAX_INPUT_FILE_BYTES = 1 << 30;

/**
 * Reads a whole input file: a regular file only (a device such as /dev/zero never ends, a FIFO
 * blocks), at most MAX_INPUT_FILE_BYTES (else `tooLargeCode`). A missing file becomes
 * `notFoundCode` with `notFoundHint` added; any other failure is ERR_LENET5_IO with the OS message.
 */
export async function readInputFile(path: string, notFoundCode: ErrorCode, notFoundHint: string, tooLargeCode: ErrorCode): Promise<Buffer> {
  let file: FileHandle;
  try {
    // Non-blocking, so that opening a FIFO returns at once (and is then refused) instead of waiting for a writer.
    file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Lenet5Error(
      missing ? notFoundCode : 'ERR_LENET5_IO',
      missing ? `No such file: ${path}. ${notFoundHint}` : `Cannot read ${path}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  try {
    const stats = await file.stat();
    if (!stats.isFile()) {
      throw new Lenet5Error(
        'ERR_LENET5_IO',
        `Cannot read ${path}: it is not a regular file (a device, FIFO, socket or folder). Give the path of a file.`,
      );
    }
    if (stats.size > MAX_INPUT_FILE_BYTES) {
      throw new Lenet5Error(
        tooLargeCode,
        `${path} is ${stats.size} bytes; this package reads input files of at most ${MAX_INPUT_FILE_BYTES} bytes (1 GiB). Check that it is the file you meant.`,
      );
    }
    return await file.readFile();
  } catch (error) {
    if (error instanceof Lenet5Error) throw error;
    throw new Lenet5Error('ERR_LENET5_IO', `Cannot read ${path}: ${(error as Error).message}`, { cause: error });
  } finally {
    await file.close();
  }
}
