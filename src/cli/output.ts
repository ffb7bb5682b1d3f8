/** Output conventions shared by every command: one JSON object with --json, lines otherwise. */
import { Lenet5Error } from '../errors.js';
import { terminalSafe } from '../presentation.js';

/** A command-line mistake found after parsing (exit 2, ERR_LENET5_USAGE), e.g. a --host that is not this machine's. */
export class UsageError extends Error {}

export interface CommonOptions {
  json?: boolean;
}

/** Human-readable lines go to stdout (terminal-safe), except in --json mode where stdout holds only the JSON object. */
export function say(options: CommonOptions, line: string): void {
  if (!options.json) process.stdout.write(`${terminalSafe(line)}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * A reader that goes away (`lenet5 info | head -1`) is not an error: what is still to be written
 * there is dropped and the command finishes as usual; `lenet5 serve` keeps serving.
 */
export function dropOutputToClosedPipes(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') throw error;
    });
  }
}

export function percent(value: number): string {
  return `${(value * 100).toFixed(2)}%`;
}

/** The stable code and message of an error as the command reports it; usage errors exit 2. */
export function errorDetails(error: unknown): { code: string; message: string; usage: boolean } {
  const usage = error instanceof UsageError || (error instanceof Lenet5Error && error.code === 'ERR_LENET5_INVALID_ARGUMENT');
  const code = error instanceof Lenet5Error ? error.code : usage ? 'ERR_LENET5_USAGE' : 'ERR_LENET5_INTERNAL';
  return { code, message: error instanceof Error ? error.message : String(error), usage };
}

/** Prints the message (terminal-safe: it may quote a file's contents) and code on stderr. */
export function warn(code: string, message: string): void {
  process.stderr.write(`lenet5: ${terminalSafe(message)} (${code})\n`);
}

/** Prints the error and returns the exit code: 2 for usage errors, 1 for the rest. */
export function reportError(error: unknown, json: boolean): number {
  const { code, message, usage } = errorDetails(error);
  warn(code, message);
  if (json) printJson({ ok: false, error: { code, message } });
  return usage ? 2 : 1;
}
