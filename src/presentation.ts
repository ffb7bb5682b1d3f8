/** What the CLI, its HTML report and the prediction server show people: ranked classes and HTML text. */
import { Lenet5Error } from './errors.js';

export interface RankedClass {
  class: number;
  name: string;
  probability: number;
}

/** The `top` most probable classes of one image, most probable first, with their names. */
export function rankClasses(probabilities: ArrayLike<number>, names: readonly string[], top: number): RankedClass[] {
  return Array.from(probabilities, (probability, c) => ({ class: c, name: names[c], probability }))
    .sort((a, b) => b.probability - a.probability)
    .slice(0, top);
}

/** Classes listed when `--top` or `?top=` is not given, or all of them when the model has fewer. */
const DEFAULT_TOP = 3;

/**
 * How many classes to list: an integer from 1 to the class count, one rule for `--top` and `?top=`;
 * unset, 3 or the class count if that is smaller.
 */
export function checkTop(name: string, value: unknown, numClasses: number): number {
  if (value === undefined) return Math.min(DEFAULT_TOP, numClasses);
  const top = typeof value === 'string' ? Number(value) : value;
  if (typeof top !== 'number' || !Number.isInteger(top) || top < 1 || top > numClasses) {
    throw new Lenet5Error(
      'ERR_LENET5_INVALID_ARGUMENT',
      `Expected ${name} to be an integer from 1 to ${numClasses} (the model's class count) but received "${String(value)}".`,
    );
  }
  return top;
}

const HTML_ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text safe inside HTML elements and quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ENTITIES[c]);
}

/**
 * Text safe to print on a terminal: control characters (ESC sequences could move the cursor, retitle
 * the window or hide text) and bidirectional overrides, which a .pth file's key names can carry,
 * become visible \x.. / \u.... escapes. Newlines and tabs stay.
 */
export function terminalSafe(text: string): string {
  return text.replace(/[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu, (c) => {
    if (c === '\n' || c === '\t') return c;
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
