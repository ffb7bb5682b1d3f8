/** lenet5 train: the seed's whole workflow — train with validation each epoch, test, save, report. */
import { freemem } from 'node:os';
import { resolve } from 'node:path';
import { Lenet5Error } from '../errors.js';
import type { DeviceName } from '../device.js';
import { metadataPath } from '../metadata.js';
import { LeNet5, type EpochResult, type LoadedCheckpoint } from '../model.js';
import { EarlyStopping, parseSchedule, schedulerFromState, type LRScheduler } from '../schedule.js';
import { Adam, SGD, type Optimizer } from '../optim.js';
import { DEFAULT_FIT } from '../data/preprocess.js';
import { loadSplits, type DataOptions } from './data.js';
import { noteStrippedPrefix } from './load.js';
import { UsageError, percent, printJson, say } from './output.js';
import { checkWritable, refuseClobbering } from './paths.js';
import { epochProgress } from './progress.js';
import { REPORT_FILES, writeReport } from './report.js';

export interface TrainCommandOptions extends DataOptions {
  epochs: number;
  batchSize: number;
  optimizer: 'adam' | 'sgd';
  lr: number;
  device: DeviceName;
  out: string;
  checkpoint?: string;
  resume?: string;
  report?: string;
  lrSchedule?: string;
  earlyStop?: number;
  minDelta: number;
  saveBest?: boolean;
}

function epochLine(e: EpochResult): string {
  const validation = e.valLoss === undefined ? '' : `, Val Loss: ${e.valLoss.toFixed(4)}, Val Accuracy: ${percent(e.valAccuracy ?? 0)}`;
  return `Epoch ${e.epoch}, Train Loss: ${e.trainLoss.toFixed(4)}${validation} (lr ${Number(e.lr.toPrecision(6))}, ${e.seconds.toFixed(1)} s, ${Math.round(e.imagesPerSecond)} images/s)`;
}

/** LeNet5.loadCheckpoint, with the command line's advice when the file is weights without training state. */
async function loadResumable(path: string, device: DeviceName) {
  try {
    return await LeNet5.loadCheckpoint(path, { device });
  } catch (error) {
    if (
      error instanceof Lenet5Error &&
      error.code === 'ERR_LENET5_STATE_DICT' &&
      /not a checkpoint|no optimizer_state_dict/.test(error.message)
    ) {
      throw new Lenet5Error(
        'ERR_LENET5_STATE_DICT',
        `${path} cannot be resumed: it holds model weights without the optimizer state and epoch count of a checkpoint. ` +
          "Resume from a file written by lenet5 train --checkpoint (or Python's {epoch, model_state_dict, optimizer_state_dict}), or train from scratch without --resume.",
        { cause: error },
      );
    }
    throw error;
  }
}

/** Memory one image of a CPU training batch takes (forward and backward): a 54,000-image batch took 4.3 GB. */
const TRAINING_BYTES_PER_IMAGE = 80 * 1024;

/**
 * The batch size to train with: a batch larger than the training set is one batch of the whole
 * set (with a note saying so); one that would not fit in `freeBytes` of memory is a usage error.
 */
export function boundBatchSize(requested: number, trainingImages: number, freeBytes: number): { batchSize: number; note?: string } {
  const batchSize = Math.min(requested, trainingImages);
  const fits = Math.max(1, Math.floor((0.8 * freeBytes) / TRAINING_BYTES_PER_IMAGE));
  if (batchSize > fits) {
    const gb = (bytes: number) => (bytes / 1e9).toFixed(1);
    throw new UsageError(
      `--batch-size ${requested} needs about ${gb(batchSize * TRAINING_BYTES_PER_IMAGE)} GB of memory for one training step, but ${gb(freeBytes)} GB are free. ` +
        `Pass --batch-size ${fits} or less (64 to 1024 train well).`,
    );
  }
  return {
    batchSize,
    note:
      batchSize < requested
        ? `--batch-size ${requested} is more than the ${trainingImages} training images: each epoch is one batch of ${trainingImages}.`
        : undefined,
  };
}

export async function trainCommand(options: TrainCommandOptions): Promise<number> {
  // Settle the device, the schedule and the outputs before minutes of data loading and training.
  const probe = new LeNet5({ device: options.device });
  const device = probe.device;
  probe.dispose();
  const makeScheduler = options.lrSchedule === undefined ? undefined : parseSchedule(options.lrSchedule, options.epochs);
  await refuseClobbering(
    [
      { flag: '--out', path: options.out, kind: 'model' },
      ...(options.checkpoint ? [{ flag: '--checkpoint', path: options.checkpoint, kind: 'model' as const }] : []),
      ...(options.report ? [{ flag: '--report', path: options.report, kind: 'folder' as const, contents: REPORT_FILES }] : []),
    ],
    [
      // --checkpoint may be the --resume file: it is read before training and replaced after each epoch.
      ...(options.resume ? [{ what: 'checkpoint (--resume)', path: options.resume, model: true, replaceableBy: '--checkpoint' }] : []),
      ...(options.data ? [{ what: 'data', path: options.data }] : []),
    ],
  );
  await checkWritable('--out', options.out, 'file');
  if (options.checkpoint) await checkWritable('--checkpoint', options.checkpoint, 'file');
  if (options.report) await checkWritable('--report', options.report, 'folder');
  const { source, path: dataPath, fit, validation, test } = await loadSplits(options);
  say(options, `Split: ${fit.size} train, ${validation.size} validation, ${test.size} test`);
  const { batchSize, note } = boundBatchSize(options.batchSize, fit.size, device === 'cpu' ? freemem() : Infinity);
  if (note) say(options, note);

  let model: LeNet5;
  let optimizer: Optimizer;
  let doneEpochs = 0;
  let resumed: LoadedCheckpoint | undefined;
  if (options.resume) {
    const checkpoint = await loadResumable(options.resume, options.device);
    resumed = checkpoint;
    ({ model, optimizer } = checkpoint);
    noteStrippedPrefix(options.resume, model);
    doneEpochs = checkpoint.epoch;
    say(options, `Resuming from ${options.resume} after epoch ${doneEpochs}`);
    if (doneEpochs >= options.epochs) {
      throw new Lenet5Error(
        'ERR_LENET5_INVALID_ARGUMENT',
        `The checkpoint has already done ${doneEpochs} epoch${doneEpochs === 1 ? '' : 's'}; --epochs ${options.epochs} asks for no more. Pass a larger --epochs.`,
      );
    }
  } else {
    model = new LeNet5({ numClasses: source.classes.length, classes: source.classes, device: options.device, seed: options.seed });
    optimizer = options.optimizer === 'adam' ? new Adam({ lr: options.lr }) : new SGD({ lr: options.lr, momentum: 0.9 });
  }
  if (source.format === 'image-folder') model.preprocessing = { fit: options.fit ?? DEFAULT_FIT, invert: options.invert ?? false };
  say(options, `Model: LeNet-5 on ${model.device}, ${optimizer instanceof Adam ? 'Adam' : 'SGD'} lr ${optimizer.lr}, batch ${batchSize}`);

  // Schedules, early stopping and the best epoch continue from a checkpoint's state (this package's or Python's).
  let lrScheduler: LRScheduler | undefined;
  if (resumed?.lrSchedulerState) {
    lrScheduler = schedulerFromState(optimizer, resumed.lrSchedulerState);
    say(
      options,
      `Learning-rate schedule: the checkpoint's ${lrScheduler.describe()}${options.lrSchedule ? ` (it replaces --lr-schedule ${options.lrSchedule})` : ''}`,
    );
  } else if (makeScheduler) {
    lrScheduler = makeScheduler(optimizer);
    say(options, `Learning-rate schedule: ${lrScheduler.describe()}`);
  }
  const earlyStopping =
    options.earlyStop === undefined ? undefined : new EarlyStopping({ patience: options.earlyStop, minDelta: options.minDelta });
  if (earlyStopping && resumed?.earlyStoppingState) earlyStopping.loadStateDict(resumed.earlyStoppingState);
  const best = { valAccuracy: -1, epoch: 0 };
  if (options.saveBest && typeof resumed?.scalars.best_val_accuracy === 'number' && typeof resumed.scalars.best_epoch === 'number') {
    best.valAccuracy = resumed.scalars.best_val_accuracy;
    best.epoch = resumed.scalars.best_epoch;
  }

  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  const showProgress = !options.json && process.stdout.isTTY === true;
  const progress = epochProgress(showProgress);
  const history: EpochResult[] = [];
  try {
    // One epoch per call, so a checkpoint can be written between epochs; the optimizer keeps its
    // state and the shuffle is seeded per epoch, so this equals a single multi-epoch call.
    for (let epoch = doneEpochs; epoch < options.epochs; epoch++) {
      await model.train(fit, {
        epochs: 1,
        initialEpoch: epoch,
        batchSize,
        optimizer,
        validation,
        seed: options.seed,
        signal: controller.signal,
        lrScheduler,
        earlyStopping,
        // Batch events cross from the training thread; ask for them only when a bar shows them.
        onBatchEnd: showProgress ? (p) => progress.update(p) : undefined,
        onEpochEnd: (e) => {
          progress.stop();
          history.push(e);
          say(options, epochLine(e));
        },
      });
      const last = history[history.length - 1];
      if (options.saveBest && (last.valAccuracy ?? 0) > best.valAccuracy) {
        // The best weights so far go to --out now; the final test and save reload them.
        Object.assign(best, { valAccuracy: last.valAccuracy, epoch: last.epoch });
        await model.save(options.out);
      }
      if (options.checkpoint) {
        await model.saveCheckpoint(options.checkpoint, {
          optimizer,
          epoch: epoch + 1,
          loss: last.trainLoss,
          lrScheduler,
          earlyStopping,
          extra: options.saveBest ? { best_val_accuracy: best.valAccuracy, best_epoch: BigInt(best.epoch) } : undefined,
        });
      }
      if (earlyStopping?.stoppedEpoch !== undefined) {
        say(options, `Early stopping after epoch ${earlyStopping.stoppedEpoch}: ${earlyStopping.reason}.`);
        break;
      }
    }
  } catch (error) {
    progress.stop();
    if (error instanceof Lenet5Error && error.code === 'ERR_LENET5_ABORTED') {
      const kept =
        options.checkpoint && history.length
          ? ` The checkpoint ${options.checkpoint} holds epoch ${history[history.length - 1].epoch}.`
          : '';
      const written =
        best.epoch > 0 ? `${options.out} holds the best weights so far (epoch ${best.epoch}).` : `${options.out} was not written.`;
      throw new Lenet5Error('ERR_LENET5_ABORTED', `Interrupted: training stopped after the current batch; ${written}${kept}`);
    }
    throw error;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }

  if (options.saveBest && best.epoch > 0) {
    if (best.epoch !== history[history.length - 1]?.epoch) await model.loadStateDict(options.out);
    say(
      options,
      `Best validation accuracy ${percent(best.valAccuracy)} at epoch ${best.epoch}: testing and saving the weights of that epoch.`,
    );
  }
  const result = await model.evaluate(test);
  say(options, `Test Loss: ${result.loss.toFixed(4)}, Test Accuracy: ${percent(result.accuracy)} (${result.correct}/${result.total})`);
  await model.save(options.out);
  say(options, `Saved ${resolve(options.out)} (metadata: ${metadataPath(options.out)})`);
  let reportIndex: string | undefined;
  if (options.report) {
    reportIndex = await writeReport(options.report, { model, test, history, result, settings: { ...options, data: dataPath } });
    say(options, `Report: ${reportIndex}`);
  }
  // The class is written out in the README's "Quick start in Python", which every install of the package includes.
  say(options, '\nLoad it in Python, into the LeNet5 class of README.md ("Quick start in Python"), saved as lenet5.py:');
  say(options, `  import torch`);
  say(options, `  from lenet5 import LeNet5`);
  say(options, `  model = LeNet5(num_classes=${model.numClasses})`);
  say(options, `  model.load_state_dict(torch.load(${JSON.stringify(options.out)}, weights_only=True))`);
  if (options.json) {
    printJson({
      ok: true,
      command: 'train',
      data: {
        format: source.format,
        description: source.description,
        classes: source.classes,
        badFiles: source.badFiles,
        cache: source.cache ?? null,
        cacheWarning: source.cacheWarning ?? null,
        train: fit.size,
        validation: validation.size,
        test: test.size,
      },
      device: model.device,
      epochs: history,
      lrSchedule: lrScheduler ? { description: lrScheduler.describe(), state: lrScheduler.stateDict() } : null,
      earlyStopping: earlyStopping
        ? { stoppedEpoch: earlyStopping.stoppedEpoch ?? null, reason: earlyStopping.stoppedEpoch ? earlyStopping.reason : null }
        : null,
      best: options.saveBest ? best : null,
      test: result,
      out: resolve(options.out),
      checkpoint: options.checkpoint ?? null,
      report: reportIndex ?? null,
    });
  }
  model.dispose();
  return 0;
}
