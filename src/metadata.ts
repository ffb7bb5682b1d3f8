/**
 * The small JSON file saved beside a .pth (lenet5_model.pth -> lenet5_model.json): class names and
 * the normalisation used in training, so evaluate and predict use the same, and a Python user can
 * read them with json.load.
 */
import { Lenet5Error, readInputFile } from './errors.js';
import { checkNormalization, type Normalization } from './data/dataset.js';
import { writeFileAtomic } from './atomic-write.js';
import { FITS, type ImageOptions } from './data/preprocess.js';

export interface ModelMetadata {
  format: 'lenet5-libtorch/1';
  numClasses: number;
  classes: string[] | null;
  normalization: Normalization;
  inputShape: [1, 28, 28];
  /** How the training images were turned into 28x28 (image folders); predict uses the same by default. */
  preprocessing?: ImageOptions;
}

export function metadataPath(modelPath: string): string {
  return modelPath.replace(/\.(pth|pt|ckpt|tar)$/i, '') + '.json';
}

export async function writeMetadata(modelPath: string, metadata: ModelMetadata): Promise<void> {
  await writeFileAtomic(metadataPath(modelPath), Buffer.from(JSON.stringify(metadata, null, 2) + '\n'));
}

/** The metadata beside `modelPath`, or undefined when there is none (e.g. a file from Python). */
export async function readMetadata(modelPath: string): Promise<ModelMetadata | undefined> {
  const path = metadataPath(modelPath);
  let text: string;
  try {
    // readInputFile, not readFile: a FIFO or device under that name must not block or flood the load.
    text = (await readInputFile(path, 'ERR_LENET5_IO', '', 'ERR_LENET5_IO')).toString('utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as ModelMetadata;
    const classes = Array.isArray(parsed.classes) && parsed.classes.every((c) => typeof c === 'string') ? parsed.classes : null;
    const p = parsed.preprocessing;
    const preprocessing =
      p && FITS.includes(p.fit as never) && typeof p.invert === 'boolean' ? { fit: p.fit, invert: p.invert } : undefined;
    return {
      format: 'lenet5-libtorch/1',
      numClasses: Number(parsed.numClasses),
      classes,
      normalization: checkNormalization(parsed.normalization),
      inputShape: [1, 28, 28],
      preprocessing,
    };
  } catch (error) {
    throw new Lenet5Error(
      'ERR_LENET5_STATE_DICT',
      `${path} (the model's metadata) is not valid: ${(error as Error).message}. Fix or delete it; without it the defaults (mean 0.5, std 0.5) apply.`,
      { cause: error },
    );
  }
}
