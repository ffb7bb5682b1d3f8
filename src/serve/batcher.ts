/**
 * Dynamic batching for the HTTP server: requests that arrive while the model is busy, or in the
 * same turn of the event loop, share one forward pass. One batch runs at a time (a model runs one
 * call at a time), so a quiet server answers at once and a loaded one fills bigger batches.
 */
import { IMAGE_PIXELS } from '../data/dataset.js';
import { Lenet5Error } from '../errors.js';
import type { LeNet5 } from '../model.js';
import type { QuantizedLeNet5 } from '../quantize/model.js';

export interface ImagePrediction {
  class: number;
  probabilities: number[];
}

export interface BatcherStats {
  images: number;
  batches: number;
  largestBatch: number;
  queued: number;
}

interface Pending {
  pixels: Uint8Array;
  resolve: (prediction: ImagePrediction) => void;
  reject: (error: unknown) => void;
}

export class PredictBatcher {
  private readonly queue: Pending[] = [];
  private running = false;
  private scheduled = false;
  private readonly counts = { images: 0, batches: 0, largestBatch: 0 };

  constructor(
    private readonly model: LeNet5 | QuantizedLeNet5,
    private readonly limits: { maxBatch: number; maxQueue: number },
  ) {}

  /** Classifies one 28x28 image (784 bytes). Rejects with ERR_LENET5_OVERLOADED when the queue is full. */
  predict(pixels: Uint8Array): Promise<ImagePrediction> {
    if (this.queue.length >= this.limits.maxQueue) {
      return Promise.reject(
        new Lenet5Error(
          'ERR_LENET5_OVERLOADED',
          `The server has ${this.queue.length} images waiting (the limit is ${this.limits.maxQueue}). Retry shortly.`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ pixels, resolve, reject });
      this.schedule();
    });
  }

  get stats(): BatcherStats {
    return { ...this.counts, queued: this.queue.length };
  }

  /** Waits for this turn's other requests before running, so they join the batch. */
  private schedule(): void {
    if (this.scheduled || this.running) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.runBatch();
    });
  }

  private async runBatch(): Promise<void> {
    if (this.running || this.queue.length === 0) return;
    this.running = true;
    const batch = this.queue.splice(0, this.limits.maxBatch);
    const input = new Uint8Array(batch.length * IMAGE_PIXELS);
    batch.forEach((pending, i) => input.set(pending.pixels, i * IMAGE_PIXELS));
    try {
      const result = await this.model.predict(input);
      batch.forEach((pending, i) => pending.resolve({ class: result.classes[i], probabilities: Array.from(result.probabilities[i]) }));
      this.counts.images += batch.length;
      this.counts.batches++;
      this.counts.largestBatch = Math.max(this.counts.largestBatch, batch.length);
    } catch (error) {
      batch.forEach((pending) => pending.reject(error));
    } finally {
      this.running = false;
      if (this.queue.length > 0) this.schedule();
    }
  }
}
