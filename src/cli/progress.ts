/** A live per-epoch progress bar (cli-progress) on a terminal; nothing when output is not a terminal. */
import cliProgress from 'cli-progress';
import type { BatchProgress } from '../model.js';

export interface EpochProgress {
  update(progress: BatchProgress): void;
  stop(): void;
}

export function epochProgress(enabled: boolean): EpochProgress {
  if (!enabled) return { update() {}, stop() {} };
  let bar: cliProgress.SingleBar | undefined;
  let epoch = 0;
  const started = Date.now();
  return {
    update(progress) {
      if (progress.epoch !== epoch) {
        bar?.stop();
        epoch = progress.epoch;
        bar = new cliProgress.SingleBar(
          {
            format: 'Epoch {epoch} [{bar}] {value}/{total} batches | loss {loss} | {speed} img/s | ETA {eta_formatted}',
            hideCursor: true,
            clearOnComplete: true,
            stream: process.stdout,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(progress.batches, 0, { epoch, loss: '-', speed: '-' });
      }
      bar?.update(progress.batch, { loss: progress.loss.toFixed(4), speed: Math.round(progress.imagesPerSecond), started });
    },
    stop() {
      bar?.stop();
      bar = undefined;
      epoch = 0;
    },
  };
}

/** A bar for decoding an image folder, on a terminal only. */
export function decodeProgress(enabled: boolean): { update: (done: number, total: number) => void; stop: () => void } {
  if (!enabled) return { update() {}, stop() {} };
  let bar: cliProgress.SingleBar | undefined;
  return {
    update(done, total) {
      if (!bar) {
        bar = new cliProgress.SingleBar(
          {
            format: 'Decoding images [{bar}] {value}/{total} | ETA {eta_formatted}',
            hideCursor: true,
            clearOnComplete: true,
            stream: process.stdout,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, 0);
      }
      bar.update(done);
    },
    stop() {
      bar?.stop();
    },
  };
}
