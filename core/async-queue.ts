const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * An unbounded queue with an async "take what is queued" operation: the
 * building block of the in-process channels, which hand work over in batches
 * rather than item by item. Any number of consumers may wait at once.
 */
export class AsyncQueue<T> {
  #items: T[] = [];
  #waiters = new Set<() => void>();
  #closed = false;

  get size(): number {
    return this.#items.length;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The queued items, oldest first, without taking them. */
  peek(): readonly T[] {
    return this.#items;
  }

  push(item: T): void {
    if (this.#closed) return;
    this.#items.push(item);
    this.#notify();
  }

  /** Ends the queue: pending and future takes return what is left, then undefined. */
  close(): void {
    this.#closed = true;
    this.#notify();
  }

  /**
   * Waits until at least one item is queued, then returns up to `max` of them
   * in order. Returns [] when `signal` is aborted (even with items queued, so
   * that an abandoned take hands nothing out) or `maxWaitMs` passes first, and
   * undefined once the queue is closed and drained.
   */
  async take(
    max = Number.POSITIVE_INFINITY,
    options: { signal?: AbortSignal; maxWaitMs?: number } = {},
  ): Promise<T[] | undefined> {
    const { signal, maxWaitMs } = options;
    const deadline = maxWaitMs === undefined ? undefined : Date.now() + maxWaitMs;
    // Every wake-up re-checks from the top: another consumer may have taken what woke us.
    for (;;) {
      if (signal?.aborted) return [];
      if (this.#items.length > 0) return this.#splice(max);
      if (this.#closed) return undefined;
      const remainingMs = deadline === undefined ? undefined : deadline - Date.now();
      if (remainingMs !== undefined && remainingMs <= 0) return [];
      await this.#waitForPush(signal, remainingMs);
    }
  }

  #splice(max: number): T[] {
    if (max >= this.#items.length) {
      const all = this.#items;
      this.#items = [];
      return all;
    }
    return this.#items.splice(0, max);
  }

  #notify(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }

  #waitForPush(signal: AbortSignal | undefined, maxWaitMs: number | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = () => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener("abort", finish);
        this.#waiters.delete(finish);
        resolve();
      };
      this.#waiters.add(finish);
      signal?.addEventListener("abort", finish, { once: true });
      // setTimeout fires after 1 ms for delays past 2^31 - 1 ms, which would make the wait spin;
      // a longer finite wait is cut into timer-sized pieces by take's loop.
      if (maxWaitMs !== undefined && Number.isFinite(maxWaitMs)) {
        timer = setTimeout(finish, Math.min(maxWaitMs, MAX_TIMER_MS));
      }
    });
  }
}
