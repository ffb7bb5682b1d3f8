/**
 * Option checks with messages in one style: `Expected <what> for <name> but received <value> of type <type>`.
 * TypeScript validates everything; the native layer trusts what it is given.
 */
import { Lenet5Error } from './errors.js';

function describe(value: unknown): string {
  let shown: string;
  if (typeof value === 'string') shown = JSON.stringify(value);
  else if (typeof value === 'bigint') shown = `${value}n`;
  else if (typeof value === 'function') shown = 'a function';
  else if (value !== null && typeof value === 'object') shown = Array.isArray(value) ? 'an array' : 'an object';
  else shown = String(value);
  return `${shown} of type ${value === null ? 'null' : typeof value}`;
}

export function invalidArgument(name: string, expected: string, value: unknown): Lenet5Error {
  return new Lenet5Error('ERR_LENET5_INVALID_ARGUMENT', `Expected ${expected} for ${name} but received ${describe(value)}`);
}

export function positiveInteger(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) throw invalidArgument(name, 'positive integer', value);
  return value;
}

/** The most CPU threads LibTorch and the engine may be given: a thread count beyond it is a mistake (2**31 aborted LibTorch). */
export const MAX_THREADS = 1024;

/** A thread count from 1 to MAX_THREADS, for threads.set() and LENET5_THREADS. */
export function threadCount(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_THREADS) {
    throw invalidArgument(name, `integer from 1 to ${MAX_THREADS}`, value);
  }
  return value;
}

export function nonNegativeInteger(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw invalidArgument(name, 'non-negative integer', value);
  return value;
}

export function nonNegativeNumber(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw invalidArgument(name, 'non-negative finite number', value);
  return value;
}

export function numberInRange(
  name: string,
  value: unknown,
  min: number,
  max: number,
  { minExclusive = false, maxExclusive = false } = {},
): number {
  const expected = `number ${minExclusive ? '>' : '>='} ${min} and ${maxExclusive ? '<' : '<='} ${max}`;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalidArgument(name, expected, value);
  if (minExclusive ? value <= min : value < min) throw invalidArgument(name, expected, value);
  if (maxExclusive ? value >= max : value > max) throw invalidArgument(name, expected, value);
  return value;
}

export function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw invalidArgument(name, 'boolean', value);
  return value;
}

export function oneOf<T extends string>(name: string, value: unknown, choices: readonly T[]): T {
  if (typeof value !== 'string' || !choices.includes(value as T))
    throw invalidArgument(name, `one of ${choices.map((c) => `'${c}'`).join(', ')}`, value);
  return value as T;
}

export function nonEmptyString(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw invalidArgument(name, 'non-empty string', value);
  return value;
}

/** A 64-bit seed as a JS number: a non-negative safe integer. */
export function checkSeed(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    throw invalidArgument(name, 'non-negative integer seed', value);
  return value;
}

export function optionsObject(name: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidArgument(name, 'object', value);
  return value as Record<string, unknown>;
}

/** Rejects option names the function does not know, so a typo is not silently ignored. */
export function knownKeys(name: string, options: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new Lenet5Error('ERR_LENET5_INVALID_ARGUMENT', `Unknown option ${key} in ${name}; expected one of ${known.join(', ')}`);
    }
  }
}
