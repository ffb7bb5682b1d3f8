/** Output conventions shared by every command: one JSON object with --json, lines otherwise. */
import { Lenet5Error } from '../errors.js';

export class UsageError extends Error {}

export interface CommonOptions {
  json?: boolean;
}

/** Human-readable lines go to stdout, except in --json mode where stdout holds only the JSON object. */
export function say(options: CommonOptions, line: string): void {
  if (!options.json) process.stdout.write(`${line}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function percent(value: number): string {
  return `${(value * 100).toFixed(2)}%`;
}

/** Prints the error and returns the exit code: 2 for usage errors, 1 for the rest. */
export function reportError(error: unknown, json: boolean): number {
  const usage = error instanceof UsageError || (error instanceof Lenet5Error && error.code === 'ERR_LENET5_INVALID_ARGUMENT');
  const code = error instanceof Lenet5Error ? error.code : usage ? 'ERR_LENET5_USAGE' : 'ERR_LENET5_INTERNAL';
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`lenet5: ${message}${code.startsWith('ERR_LENET5') ? ` (${code})` : ''}\n`);
  if (json) printJson({ ok: false, error: { code, message } });
  return usage ? 2 : 1;
}
