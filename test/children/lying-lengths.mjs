// Typed arrays whose JavaScript `length` is not their buffer's (issue #21, Medium 4), handed to
// every call that passes a typed array to native code. Run as a child so that a read past the
// buffer (a SIGSEGV) fails the test instead of killing the runner. Prints one JSON line:
// { case: code or what happened }.
import { Dataset, LeNet5 } from '../../dist/index.js';

const IMAGE = 784;
/**
 * @template {Uint8Array | Float32Array} T
 * @param {T} array
 * @param {number} length
 * @returns {T}
 */
const withLength = (array, length) => Object.defineProperty(array, 'length', { value: length });
class ShortUint8 extends Uint8Array {
  get length() {
    return IMAGE * 16;
  }
}

/** @param {() => unknown} action */
async function outcome(action) {
  try {
    const result = /** @type {{ classes?: number[] } | undefined} */ (await action());
    return `returned ${result?.classes ? `${result.classes.length} predictions` : typeof result}`;
  } catch (caught) {
    const error = /** @type {Error & { code?: string }} */ (caught);
    return error.code ?? `${error.name}: ${error.message}`;
  }
}

const model = new LeNet5({ seed: 1 });
const results = {
  predictRedefinedLength: await outcome(() => model.predict(withLength(new Uint8Array(IMAGE), IMAGE * 100000))),
  predictFloatRedefinedLength: await outcome(() => model.predict(withLength(new Float32Array(IMAGE), IMAGE * 100000))),
  predictSubclassLength: await outcome(() => model.predict(new ShortUint8(IMAGE))),
  datasetRedefinedLength: await outcome(() =>
    Dataset.fromArrays({ images: withLength(new Uint8Array(IMAGE), IMAGE * 100000), labels: new Uint8Array(100000), numClasses: 10 }),
  ),
  lossAndGradientsRedefinedLength: await outcome(() =>
    model.lossAndGradients(withLength(new Float32Array(IMAGE), IMAGE * 10000), new Array(10000).fill(0)),
  ),
  setParameterValuesRedefinedLength: await outcome(() =>
    model.setParameterValues(
      model.parameters().map(({ shape }) =>
        withLength(
          new Float32Array(1),
          shape.reduce((a, b) => a * b, 1),
        ),
      ),
    ),
  ),
};
console.log(JSON.stringify(results));
