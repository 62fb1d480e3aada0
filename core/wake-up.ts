/**
 * Wakes every waiter at once (unlike a queue, where one taker would swallow
 * a notice that several were waiting for): for loops that re-check a
 * condition, such as "is there room for more work", whenever it may have
 * changed.
 */
export class WakeUp {
  readonly #waiters = new Set<() => void>();
  #closed = false;

  /** Wakes everyone waiting now. */
  notify(): void {
    const waiting = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiting) wake();
  }

  /** Resolves at the next notify(), after `maxWaitMs`, on abort, or at once once closed. */
  wait(options: { signal?: AbortSignal; maxWaitMs: number }): Promise<void> {
    if (this.#closed || options.signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", done);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, options.maxWaitMs);
      options.signal?.addEventListener("abort", done, { once: true });
      this.#waiters.add(done);
    });
  }

  /** Wakes everyone, for good. */
  close(): void {
    this.#closed = true;
    this.notify();
  }
}
