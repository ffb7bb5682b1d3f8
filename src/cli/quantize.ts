/** lenet5 quantize: a float .pth to an int8 model file, with the test accuracy before and after. */
import { stat } from 'node:fs/promises';
import { DEFAULT_FIT } from '../data/preprocess.js';
import { loadSplits } from './data.js';
import { loadFloatModel } from './load.js';
import { percent, printJson, say, type CommonOptions } from './output.js';
import { refuseClobbering } from './paths.js';
import type { LoadFlags } from './commands.js';

export interface QuantizeCommandOptions extends CommonOptions, LoadFlags {
  calibrate: string;
  images: number;
  out?: string;
}

export async function quantizeCommand(modelPath: string, options: QuantizeCommandOptions): Promise<number> {
  const out = options.out ?? `${modelPath.replace(/\.(pth|pt|ckpt)$/i, '')}.int8`;
  await refuseClobbering([{ flag: '--out', path: out, kind: 'file' }], [{ what: 'model', path: modelPath, model: true }]);
  const model = await loadFloatModel(modelPath, { allowNonFinite: options.allowNonFinite });
  try {
    // The data is read as the model's training data was (image folders: its --fit and --invert).
    const {
      path: dataPath,
      fit,
      test,
    } = await loadSplits({
      ...options,
      data: options.calibrate,
      fit: model.preprocessing?.fit ?? DEFAULT_FIT,
      invert: model.preprocessing?.invert ?? false,
      onBadFile: 'error',
      cache: true,
      valSplit: 0.1,
      seed: 0,
    });
    const quantized = await model.quantize(fit, { images: options.images });
    const before = await model.evaluate(test);
    const after = await quantized.evaluate(test);
    await quantized.save(out);
    const bytes = { float: (await stat(modelPath)).size, int8: (await stat(out)).size };
    const images = Math.min(options.images, fit.size);
    if (options.json) {
      printJson({
        ok: true,
        command: 'quantize',
        model: modelPath,
        out,
        data: dataPath,
        calibration: { method: 'max-abs', images },
        test: {
          total: after.total,
          float32: { accuracy: before.accuracy, loss: before.loss },
          int8: { accuracy: after.accuracy, loss: after.loss },
        },
        bytes,
      });
    } else {
      say(options, `Calibrated on ${images} training images of ${dataPath} (max-abs activation scales)`);
      say(
        options,
        `Test accuracy (${after.total} images): float32 ${percent(before.accuracy)}, int8 ${percent(after.accuracy)} (${((after.accuracy - before.accuracy) * 100).toFixed(2)} points)`,
      );
      say(options, `Wrote ${out}: ${bytes.int8} bytes (${modelPath}: ${bytes.float} bytes, ${(bytes.float / bytes.int8).toFixed(1)}x)`);
    }
  } finally {
    model.dispose();
  }
  return 0;
}
