import { readFile } from 'node:fs/promises';

/**
 * Every error this package raises is a Lenet5Error with a stable `code` (README, "Error codes").
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
  | 'ERR_LENET5_PTH_NOT_FOUND'
  | 'ERR_LENET5_PTH_FORMAT'
  | 'ERR_LENET5_PTH_UNSAFE'
  | 'ERR_LENET5_PTH_LEGACY'
  | 'ERR_LENET5_STATE_DICT'
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

/** Rethrows an error from the native addon as a Lenet5Error with the given (caller's) stack. */
function fromNative(error: unknown, stack?: string): unknown {
  if (!(error instanceof Error) || error instanceof Lenet5Error) return error;
  const code = (error as { code?: string }).code;
  const wrapped = new Lenet5Error((code?.startsWith('ERR_LENET5_') ? code : 'ERR_LENET5_NATIVE') as ErrorCode, error.message);
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

/**
 * Reads a whole input file. A missing file becomes `notFoundCode` with `notFoundHint` added; any
 * other failure is ERR_LENET5_IO with the OS message.
 */
export async function readInputFile(path: string, notFoundCode: ErrorCode, notFoundHint: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Lenet5Error(
      missing ? notFoundCode : 'ERR_LENET5_IO',
      missing ? `No such file: ${path}. ${notFoundHint}` : `Cannot read ${path}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}
