/**
 * Bounds the server's image decoding: a few decodes at a time (each holds one of libuv's threads
 * until sharp finishes), a bounded number waiting (503 beyond it), and none started once the server
 * is closing. A process cannot exit while a decode runs, so shutdown then takes at most the decode
 * timeout, and requests that were still waiting get 503 at once instead of being decoded for nobody.
 */
import { Lenet5Error } from '../errors.js';

export class DecodeGate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private closing = false;

  constructor(private readonly limits: { concurrency: number; maxWaiting: number }) {}

  async run<T>(decode: () => Promise<T>): Promise<T> {
    if (this.active >= this.limits.concurrency) {
      if (this.waiting.length >= this.limits.maxWaiting) {
        throw new Lenet5Error(
          'ERR_LENET5_OVERLOADED',
          `The server has ${this.waiting.length} images waiting to be decoded (the limit is ${this.limits.maxWaiting}). Retry shortly.`,
        );
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    if (this.closing)
      throw new Lenet5Error('ERR_LENET5_OVERLOADED', 'The server is stopping. Retry on another instance or after it restarts.');
    this.active++;
    try {
      return await decode();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }

  /** From now on no decode starts; those waiting are refused. */
  close(): void {
    this.closing = true;
    for (const wake of this.waiting.splice(0)) wake();
  }
}
