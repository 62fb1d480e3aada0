import { availableParallelism } from "node:os";

/** Tasks run at once per sidecar unless configured: 8 per core, at least 8. */
export const defaultSlots = (): number => Math.max(8, 8 * availableParallelism());

/** Counts how many tasks may run at once on this host; the lease loop waits for a free slot. */
export class Slots {
  #used = 0;
  #waiters = new Set<() => void>();

  constructor(readonly total: number) {
    if (!Number.isInteger(total) || total < 1)
      throw new RangeError(`slots must be a positive integer, got ${total}`);
  }

  get free(): number {
    return this.total - this.#used;
  }

  get used(): number {
    return this.#used;
  }

  take(count = 1): void {
    if (count > this.free) throw new Error(`taking ${count} slots but only ${this.free} are free`);
    this.#used += count;
  }

  release(count = 1): void {
    this.#used = Math.max(0, this.#used - count);
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }

  /** Resolves when at least one slot is free (at once if one is), or when `signal` aborts. */
  async waitForFree(signal: AbortSignal): Promise<void> {
    while (this.free === 0 && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener("abort", done);
          this.#waiters.delete(done);
          resolve();
        };
        this.#waiters.add(done);
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }

  /** Resolves when every slot is free again (all tasks finished). */
  async drained(): Promise<void> {
    while (this.#used > 0) await new Promise<void>((resolve) => this.#waiters.add(resolve));
  }
}
