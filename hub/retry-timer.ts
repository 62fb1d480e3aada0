import type { Logger } from "../core/logger.js";

/**
 * Wakes when the earliest known retry is due, and at least every `pollMs`
 * (retries scheduled by other hubs). One timer for all tasks; it keeps time
 * on the monotonic clock, and is told how soon a retry is due (measured on
 * Postgres's clock), so that a jump of this host's clock moves nothing.
 */
export class RetryTimer {
  #timer: NodeJS.Timeout | undefined;
  #wakeAtMs = Number.POSITIVE_INFINITY;
  #running = false;
  #again = false;
  #stopped = true;

  constructor(
    private readonly release: () => Promise<{
      nextRetryInMs: number | undefined;
      released: number;
      limit: number;
    }>,
    private readonly logger: Logger,
    private readonly pollMs = 1_000,
  ) {}

  start(): void {
    this.#stopped = false;
    this.#arm(performance.now() + this.pollMs);
  }

  /** A retry is due in `inMs`: wake then, if that is sooner than planned. */
  schedule(inMs: number | undefined): void {
    if (inMs === undefined || this.#stopped) return;
    const atMs = performance.now() + inMs;
    if (atMs < this.#wakeAtMs) this.#arm(atMs);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(atMs: number): void {
    clearTimeout(this.#timer);
    this.#wakeAtMs = atMs;
    this.#timer = setTimeout(() => void this.#fire(), Math.max(0, atMs - performance.now()));
    this.#timer.unref();
  }

  async #fire(): Promise<void> {
    this.#wakeAtMs = Number.POSITIVE_INFINITY;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    let next: number | undefined;
    try {
      do {
        this.#again = false;
        const result = await this.release();
        next = result.nextRetryInMs === undefined ? undefined : performance.now() + result.nextRetryInMs;
        if (result.released >= result.limit) this.#again = true;
      } while (this.#again && !this.#stopped);
    } catch (error) {
      this.logger.error({ err: error }, "releasing due retries failed; trying again shortly");
    } finally {
      this.#running = false;
    }
    if (this.#stopped) return;
    const poll = performance.now() + this.pollMs;
    this.#arm(next === undefined ? poll : Math.min(next, poll));
  }
}
