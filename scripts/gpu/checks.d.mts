// Types for checks.mjs (plain JavaScript so that it runs on a GPU machine without a compiler).
import type { Dataset } from '../../dist/index.js';

export interface Fashion {
  train: Dataset;
  test: Dataset;
}
export declare const checks: Record<string, (context: { fashion: Fashion }) => Promise<unknown>>;
export declare function loadFashion(): Promise<Fashion>;
