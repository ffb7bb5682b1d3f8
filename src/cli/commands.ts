/** lenet5 evaluate | predict | inspect | info */
import { stat } from 'node:fs/promises';
import { Lenet5Error } from '../errors.js';
import { info } from '../info.js';
import { checkTop, rankClasses } from '../presentation.js';
import { inspect } from '../pth/load.js';
import { readKaggleCsv } from '../data/csv.js';
import { IMAGE_PIXELS } from '../data/dataset.js';
import { IMAGE_EXTENSIONS, decodeImages, imageFilesIn, type BadFile } from '../data/folder.js';
import { DEFAULT_FIT, type Fit, type ImageOptions } from '../data/preprocess.js';
import { writeFileAtomic } from '../atomic-write.js';
import { loadEvaluationSet, type DataOptions, type EvaluationSplit } from './data.js';
import type { Prediction } from '../model.js';
import { inspectInt8Model, loadModel, startsLikeInt8Model } from './load.js';
import { QuantizedLeNet5 } from '../quantize/model.js';
import { UsageError, percent, printJson, say, warn, type CommonOptions } from './output.js';
import { canonicalPath, refuseClobbering } from './paths.js';
import { metadataPath } from '../metadata.js';

/** Options of the commands that load a model. */
export interface LoadFlags extends CommonOptions {
  allowNonFinite?: boolean;
}

/** "--fit pad --invert", the way the flags would say it. */
function describePreprocessing(p: ImageOptions): string {
  return `--fit ${p.fit}${p.invert ? ' --invert' : ''}`;
}

export async function evaluateCommand(modelPath: string, options: DataOptions & LoadFlags & { split: EvaluationSplit }): Promise<number> {
  const model = await loadModel(modelPath, { allowNonFinite: options.allowNonFinite });
  // Images are prepared as the model's training images were (its metadata), unless the flags say otherwise.
  const trained = model.preprocessing;
  const preprocessing = { fit: options.fit ?? trained?.fit ?? DEFAULT_FIT, invert: options.invert ?? trained?.invert ?? false };
  const { source, path: dir, data } = await loadEvaluationSet({ ...options, ...preprocessing }, options.split);
  const imageFolder = source.format === 'image-folder';
  if (imageFolder && trained && describePreprocessing(trained) !== describePreprocessing(preprocessing)) {
    say(
      options,
      `Preprocessing: ${describePreprocessing(preprocessing)}, not the model's own (${describePreprocessing(trained)}); accuracy may be lower than with it.`,
    );
  }
  // An image folder's classes are matched to the model's by name (a folder may hold some of them).
  const scored = imageFolder && model.classes ? data.withClasses(model.classes) : data;
  const result = await model.evaluate(scored);
  const classes = model.classes ?? scored.classes ?? [];
  if (options.json) {
    printJson({
      ok: true,
      command: 'evaluate',
      model: modelPath,
      data: dir,
      split: options.split,
      preprocessing: imageFolder ? preprocessing : null,
      classes,
      ...result,
    });
  } else {
    say(
      options,
      `${options.split} set (${dir}): Loss: ${result.loss.toFixed(4)}, Accuracy: ${percent(result.accuracy)} (${result.correct}/${result.total})`,
    );
    say(options, '\nPer-class accuracy:');
    result.perClassAccuracy.forEach((a, i) =>
      say(options, `  ${String(i).padStart(2)} ${(classes[i] ?? '').padEnd(12)} ${Number.isNaN(a) ? 'no images' : percent(a)}`),
    );
    say(options, '\nConfusion matrix (rows: true class, columns: predicted):');
    const width = result.confusionMatrix.flat().reduce((widest, v) => Math.max(widest, String(v).length + 1), 4);
    say(options, `     ${result.confusionMatrix.map((_, i) => String(i).padStart(width)).join('')}`);
    result.confusionMatrix.forEach((row, i) =>
      say(options, `  ${String(i).padStart(2)} ${row.map((v) => String(v).padStart(width)).join('')}`),
    );
  }
  model.dispose();
  return 0;
}

export interface PredictCommandOptions extends LoadFlags {
  invert?: boolean;
  fit?: Fit;
  top?: number;
  csv?: string;
  out?: string;
}

/** Image files named on the command line; folders stand for every image inside them (and what in them cannot be read). */
async function expandImages(inputs: string[]): Promise<{ files: string[]; unreadable: BadFile[] }> {
  const files: string[] = [];
  const unreadable: BadFile[] = [];
  for (const input of inputs) {
    const isDir = await stat(input).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (!isDir) {
      files.push(input);
      continue;
    }
    const found = await imageFilesIn(input);
    for (const file of found.files) files.push(file);
    unreadable.push(...found.bad);
  }
  return { files, unreadable };
}

function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export async function predictCommand(modelPath: string, inputs: string[], options: PredictCommandOptions): Promise<number> {
  if ((inputs.length === 0) === (options.csv === undefined)) {
    throw new UsageError(
      inputs.length
        ? 'Pass images (or folders) or --csv FILE, not both.'
        : "Nothing to predict: pass image files or folders, or --csv FILE (Kaggle's test.csv).",
    );
  }
  if (options.out) {
    await refuseClobbering(
      [{ flag: '--out', path: options.out, kind: 'file' }],
      [
        { what: 'model', path: modelPath, model: true },
        ...(options.csv ? [{ what: 'CSV', path: options.csv }] : []),
        ...inputs.map((path) => ({ what: 'image', path })),
      ],
    );
  }
  const model = await loadModel(modelPath, { allowNonFinite: options.allowNonFinite });
  const names = model.classNames();
  const top = checkTop('--top', options.top, names.length);
  let pixels: Uint8Array;
  let images: string[];
  // Each image is decoded on its own: one that cannot be read is reported in its place, the rest are classified.
  let errors = new Map<number, { code: string; message: string }>();
  if (options.csv) {
    ({ pixels } = await readKaggleCsv(options.csv));
    images = Array.from({ length: pixels.length / IMAGE_PIXELS }, (_, i) => String(i + 1));
  } else {
    const { files, unreadable } = await expandImages(inputs);
    images = files;
    if (files.length === 0 && unreadable.length === 0)
      throw new Lenet5Error('ERR_LENET5_DATA_NOT_FOUND', `No images (${IMAGE_EXTENSIONS.join(', ')}) in ${inputs.join(', ')}.`);
    // Unless told otherwise, images are prepared as the model's training images were (its metadata).
    const decoded = await decodeImages(images, {
      invert: options.invert ?? model.preprocessing?.invert,
      fit: options.fit ?? model.preprocessing?.fit ?? DEFAULT_FIT,
      onBadFile: 'skip',
    });
    pixels = decoded.pixels;
    // badFiles lists the failed positions in order; an image named twice fails in both places.
    const failed = decoded.ok.flatMap((ok, i) => (ok ? [] : [i]));
    errors = new Map(failed.map((i, k) => [i, { code: 'ERR_LENET5_IMAGE', message: `${images[i]}: ${decoded.badFiles[k].reason}` }]));
    // What a folder held but could not be read is reported after the images, like an image that failed.
    for (const bad of unreadable)
      errors.set(images.push(bad.path) - 1, { code: 'ERR_LENET5_IMAGE', message: `${bad.path}: ${bad.reason}` });
  }
  let prediction: Prediction | undefined;
  // Outputs that are not finite (weights loaded with --allow-non-finite) are each image's error.
  let outputsError: { code: string; message: string } | undefined;
  if (errors.size < images.length) {
    try {
      prediction = await model.predict(pixels);
    } catch (error) {
      if (!(error instanceof Lenet5Error && error.code === 'ERR_LENET5_NON_FINITE')) throw error;
      outputsError = { code: error.code, message: error.message };
    }
  }
  const results = images.map((image, i) => {
    const error = errors.get(i) ?? outputsError;
    if (error) return { image, error };
    const probabilities = prediction!.probabilities[i];
    const predicted = prediction!.classes[i];
    return {
      image,
      class: predicted,
      name: names[predicted],
      probability: probabilities[predicted],
      top: rankClasses(probabilities, names, top),
    };
  });
  const classified = results.filter((r) => !r.error);
  if (options.out) {
    let text: string;
    if (options.out.toLowerCase().endsWith('.json')) {
      text = `${JSON.stringify(
        classified.map(({ top: _top, ...r }) => r),
        null,
        2,
      )}\n`;
    } else if (options.csv) {
      // Kaggle's digit-recognizer submission format.
      text = `ImageId,Label\n${classified.map((r) => `${r.image},${r.class}`).join('\n')}\n`;
    } else {
      text = `path,class,name,probability\n${classified.map((r) => [r.image, String(r.class), r.name!, r.probability!.toFixed(6)].map(csvField).join(',')).join('\n')}\n`;
    }
    await writeFileAtomic(options.out, Buffer.from(text));
  }
  const firstError = results.find((r) => r.error)?.error;
  if (options.json) {
    printJson({
      ok: !firstError,
      command: 'predict',
      model: modelPath,
      out: options.out ?? null,
      predictions: results,
      ...(firstError ? { error: firstError } : {}),
    });
  } else {
    for (const r of results) {
      if (r.error) {
        warn(r.error.code, r.error.message);
        say(options, `${r.image}: not classified (${r.error.code})`);
      } else if (!options.out) {
        say(
          options,
          `${r.image}: ${r.class} (${r.name}) ${percent(r.probability!)}   top: ${r.top!.map((t) => `${t.name} ${percent(t.probability)}`).join(', ')}`,
        );
      }
    }
    if (options.out) say(options, `Wrote ${classified.length} predictions to ${options.out}`);
  }
  model.dispose();
  return firstError ? 1 : 0;
}

export async function inspectCommand(file: string, options: CommonOptions): Promise<number> {
  const result = (await startsLikeInt8Model(file)) ? await inspectInt8Model(file) : await inspect(file);
  if (options.json) {
    printJson({ ok: true, command: 'inspect', ...result });
  } else {
    say(options, `${result.path}: ${result.format}`);
    for (const [k, v] of Object.entries(result.scalars)) say(options, `  ${k} = ${v}`);
    // A loop, not Math.max(...names): a file can list more tensors than a call takes arguments. Capped,
    // so that one very long name does not pad every line to its length.
    const width = Math.min(
      result.tensors.reduce((widest, t) => Math.max(widest, t.name.length), 4),
      60,
    );
    for (const t of result.tensors) say(options, `  ${t.name.padEnd(width)}  ${t.dtype.padEnd(8)}  [${t.shape.join(', ')}]`);
    for (const s of result.shared) say(options, `  ${s.name.padEnd(width)}  same object as ${s.sameAs || '(the root)'}`);
    say(options, `${result.tensors.length} tensors${result.shared.length ? `, ${result.shared.length} shared references` : ''}`);
  }
  return 0;
}

export async function exportCommand(
  modelPath: string,
  options: LoadFlags & { format: 'torchscript' | 'onnx'; out?: string; int8?: boolean },
): Promise<number> {
  if (options.int8 && options.format !== 'onnx') throw new UsageError('--int8 needs --format onnx: int8 models are exported as QDQ ONNX.');
  const out = options.out ?? modelPath.replace(/\.(pth|pt|ckpt)$/i, '') + (options.format === 'onnx' ? '.onnx' : '.pt');
  // The default name (model.pt beside model.pth) shares the model's metadata, rewritten with the same content.
  const sharesMetadata = (await canonicalPath(metadataPath(out))) === (await canonicalPath(metadataPath(modelPath)));
  await refuseClobbering(
    [{ flag: '--out', path: out, kind: sharesMetadata ? 'file' : 'model' }],
    [{ what: 'model', path: modelPath, model: true }],
  );
  const model = await loadModel(modelPath, { allowNonFinite: options.allowNonFinite });
  const int8 = model instanceof QuantizedLeNet5;
  if (int8 !== Boolean(options.int8) || (int8 && options.format !== 'onnx')) {
    model.dispose();
    throw new UsageError(
      int8
        ? `${modelPath} is an int8 model: export it with --format onnx --int8 (a QDQ ONNX file), or export the float .pth it came from.`
        : `${modelPath} is a float32 model: --int8 exports an int8 model. Make one first: lenet5 quantize ${modelPath} --calibrate <data>.`,
    );
  }
  if (model instanceof QuantizedLeNet5) await model.export(out, { format: 'onnx' });
  else await model.export(out, { format: options.format });
  if (options.json) {
    printJson({
      ok: true,
      command: 'export',
      model: modelPath,
      format: options.format,
      int8,
      out,
      normalization: model.normalization,
      classes: model.classes ?? null,
    });
  } else {
    say(
      options,
      `Exported ${modelPath} as ${int8 ? 'int8 QDQ ' : ''}${options.format} to ${out} (input: normalised [N, 1, 28, 28], pixel -> (pixel/255 - ${model.normalization.mean}) / ${model.normalization.std}; output: logits)`,
    );
  }
  model.dispose();
  return 0;
}

export async function infoCommand(options: CommonOptions): Promise<number> {
  const details = info();
  if (options.json) {
    printJson({ ok: true, command: 'info', ...details });
  } else {
    say(options, `${details.package} ${details.version}`);
    say(
      options,
      `Node.js ${details.node}, LibTorch ${details.libtorch} from ${details.libtorchSource}${details.libtorchDir ? `: ${details.libtorchDir}` : ''}`,
    );
    say(options, `Addon: ${details.addon}`);
    say(
      options,
      `CUDA available: ${details.cudaAvailable ? 'yes' : 'no'}, devices: ${details.cudaDeviceCount} (LibTorch CUDA support: ${details.cudaSupport}${details.cudaRuntime ? `, runtime ${details.cudaRuntime}` : ''})`,
    );
    say(options, `CPU threads: ${details.threads}`);
    say(options, `CPU engine kernels: ${details.engineKernels} (LENET5_ENGINE=libtorch uses LibTorch's operators instead)`);
    say(options, `int8 kernels: ${details.int8Kernels}`);
  }
  return 0;
}
