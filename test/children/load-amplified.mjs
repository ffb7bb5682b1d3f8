// Loads each .pth file given (issue #21, High 2: files that name one storage thousands of times)
// as LeNet5.load, LeNet5.loadCheckpoint and inspect would, and prints one JSON line: each call's
// error code (or what it returned) and the process's peak RSS. The test runs it under a memory
// limit, so a reader that materialises every reference dies here instead of exhausting the machine.
import { LeNet5, inspect } from '../../dist/index.js';

/**
 * @template T
 * @param {Promise<T>} promise
 * @param {(value: T) => string} describe
 * @returns {Promise<string>}
 */
const outcome = (promise, describe) =>
  promise.then(describe, (/** @type {Error & { code?: string }} */ error) => error.code ?? `${error.name}: ${error.message}`);

/** @type {Record<string, Record<string, string>>} */
const results = {};
for (const path of process.argv.slice(2)) {
  results[path] = {
    load: await outcome(LeNet5.load(path), () => 'loaded'),
    loadCheckpoint: await outcome(LeNet5.loadCheckpoint(path), () => 'loaded'),
    inspect: await outcome(inspect(path), (listing) => `${listing.tensors.length} tensors`),
  };
}
console.log(JSON.stringify({ results, maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024) }));
