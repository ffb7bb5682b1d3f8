/** The checks a load applies before weights reach the model: finite values, a usable fc3, names and shapes. */
import { Lenet5Error } from '../errors.js';
import type { LoadedTensor, StateDict } from '../pth/load.js';
import { checkBoolean } from '../validate.js';

export interface LoadStateResult {
  missingKeys: string[];
  unexpectedKeys: string[];
  /** Present in both but with different shapes (skipped when non-strict). */
  mismatchedKeys: string[];
  /** 'module.' (nn.DataParallel, DDP) or '_orig_mod.' (torch.compile) when the file's keys all had it and it was removed; else null. */
  strippedPrefix: string | null;
}

export function shapeOf(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** At most the first 20 names, then how many more: a file can hold thousands of keys. */
function listNames(names: readonly string[], quote = false): string {
  const shown = names.slice(0, 20).map((name) => (quote ? `"${name}"` : name));
  return `${shown.join(', ')}${names.length > shown.length ? `, ... and ${names.length - shown.length} more` : ''}`;
}

/**
 * Names the tensors holding NaN or infinity; throws ERR_LENET5_NON_FINITE unless `allow` is true.
 * Given only the tensors a load will use, after their names and shapes were checked.
 */
export function checkFiniteTensors(tensors: readonly Pick<LoadedTensor, 'name' | 'values'>[], path: string, allow: unknown): void {
  if (allow !== undefined && checkBoolean('allowNonFinite', allow)) return;
  const bad = tensors
    .map((t) => {
      const nan = t.values.reduce((n, v) => n + (Number.isNaN(v) ? 1 : 0), 0);
      const infinite = t.values.reduce((n, v) => n + (v === Infinity || v === -Infinity ? 1 : 0), 0);
      return { name: t.name, nan, infinite };
    })
    .filter((t) => t.nan + t.infinite > 0);
  if (bad.length) {
    throw new Lenet5Error(
      'ERR_LENET5_NON_FINITE',
      `${path} holds weights that are not finite: ${bad.map((t) => `${t.name} (${t.nan} NaN, ${t.infinite} infinite)`).join(', ')}. ` +
        'Such a model outputs NaN for every image. Use weights saved before training diverged, or load them anyway with { allowNonFinite: true } (lenet5 --allow-non-finite).',
    );
  }
}

/** The number of classes of a LeNet-5 state_dict: fc3.weight's rows. */
export function numClassesOf({ tensors }: StateDict, path: string): number {
  const fc3 = tensors.find((t) => t.name === 'fc3.weight');
  if (!fc3 || fc3.shape.length !== 2 || fc3.shape[0] < 1) {
    throw new Lenet5Error(
      'ERR_LENET5_STATE_DICT',
      `${path} has no usable fc3.weight, so it is not a LeNet-5 state_dict. Keys found: ${listNames(tensors.map((t) => t.name))}`,
    );
  }
  return fc3.shape[0];
}

/**
 * Matches a file's tensors to the model's parameters by name and shape, as PyTorch's
 * load_state_dict does. Strict: any difference throws, all reported together. Returns the values
 * to set, in parameter order (null: the file cannot provide it, keep the current values); only
 * these are built from the file.
 */
export function matchStateDict(
  { tensors, strippedPrefix }: StateDict,
  parameters: readonly { name: string; shape: number[] }[],
  strict: boolean,
  path: string,
): { values: (Float32Array | null)[]; result: LoadStateResult } {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const missingKeys = parameters.filter((s) => !byName.has(s.name)).map((s) => s.name);
  const unexpectedKeys = tensors.filter((t) => !parameters.some((s) => s.name === t.name)).map((t) => t.name);
  const mismatched = parameters.filter((s) => byName.has(s.name) && shapeOf(byName.get(s.name)!.shape) !== shapeOf(s.shape));
  const mismatchedKeys = mismatched.map((s) => s.name);
  if (strict && (missingKeys.length || unexpectedKeys.length || mismatched.length)) {
    const parts = [
      missingKeys.length ? `Missing key(s) in state_dict: ${listNames(missingKeys, true)}.` : '',
      unexpectedKeys.length ? `Unexpected key(s) in state_dict: ${listNames(unexpectedKeys, true)}.` : '',
      ...mismatched.map(
        (s) =>
          `size mismatch for ${s.name}: copying a param with shape ${shapeOf(byName.get(s.name)!.shape)} from checkpoint, the shape in current model is ${shapeOf(s.shape)}.`,
      ),
    ].filter(Boolean);
    throw new Lenet5Error(
      'ERR_LENET5_STATE_DICT',
      `Error(s) in loading state_dict for LeNet5 from ${path}:\n\t${parts.join('\n\t')}\nUse { strict: false } to load the matching tensors only.`,
    );
  }
  const skipped = new Set(mismatchedKeys.concat(missingKeys));
  return {
    values: parameters.map((s) => (skipped.has(s.name) ? null : byName.get(s.name)!.values)),
    result: { missingKeys, unexpectedKeys, mismatchedKeys, strippedPrefix },
  };
}
